// A worker session in a child process that a test kills (SIGKILL) at a chosen instant, talking JSON lines:
// commands on its stdin, events on its stdout (fixtures/crash-session.js, fixtures/placeholder-session.js).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { until } from './emulator-helpers.js'

/** Starts and tracks such children; `killAll()` in the test file's after/afterEach leaves none behind. */
export class SessionChildren {
  #live = new Set()

  constructor (script, emu) {
    this.script = script
    this.emu = emu
  }

  /** a child on `dataDir` (a "worker process": a second one on the same dir is a restart); `env` adds to it */
  start (dataDir, env = {}) {
    const proc = spawn(process.execPath, [this.script], {
      env: { ...process.env, WA_DATA_DIR: dataDir, WA_SERVER_URL: this.emu.wsUrl, WA_SANDBOX: 'true', WA_SANDBOX_ROOT_KEY: this.emu.rootPublicKey, ...env },
      stdio: ['pipe', 'pipe', 'pipe']
    })
    const events = []
    const stderr = []
    readline.createInterface({ input: proc.stdout }).on('line', (l) => { try { events.push(JSON.parse(l)) } catch { /* not an event line */ } })
    proc.stderr.on('data', (d) => { stderr.push(String(d)); if (process.env.DEBUG_CHILD) process.stderr.write(d) })
    const exited = new Promise((resolve) => proc.on('exit', resolve))
    const live = this.#live
    const child = {
      proc,
      events,
      send: (cmd) => proc.stdin.write(JSON.stringify(cmd) + '\n'),
      waitFor: (pred, what, ms = 20000) => until(() => {
        if (proc.exitCode !== null) throw new Error(`worker exited: ${stderr.join('').slice(-1500)}`)
        return events.find(pred)
      }, ms, what),
      async kill () { proc.kill('SIGKILL'); await exited; live.delete(child) }
    }
    live.add(child)
    return child
  }

  /** pairs `phone` on a fresh `dataDir` through the emulator's phone, then kills the child: a linked data dir */
  async pair (dataDir, phone) {
    const child = this.start(dataDir)
    const { qr } = await child.waitFor((e) => e.event === 'qr', 'qr')
    assert.equal((await this.emu.api('POST', '/phone/scan', { phone_number: phone, qr })).status, 200)
    await child.waitFor((e) => e.event === 'connected', 'connected')
    await child.kill()
  }

  async killAll () {
    for (const child of [...this.#live]) await child.kill()
  }
}
