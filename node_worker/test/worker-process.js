// The real worker process (src/main.js) for tests: started on a fresh data dir against the emulator (its
// root trusted, as the sandbox does), its internal API on its unix socket, its log lines kept, its RSS read
// from /proc, and its inspector for tests that must see what it holds once its garbage is collected.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { tmpDir, until } from './emulator-helpers.js'

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url))

/**
 * The worker with `env` added (WA_SANDBOX and the emulator's root key are set); `stop()` ends it. `dataDir`: the
 * data dir of a worker that ran before (a restart), else a fresh one.
 */
export function startWorker (emu, env = {}, { dataDir = tmpDir('wa-worker-') } = {}) {
  fs.mkdirSync(path.join(dataDir, 'run'), { recursive: true, mode: 0o700 })
  // the inspector (on a loopback port of its choosing) lets the memory test collect the worker's garbage
  const proc = spawn(process.execPath, ['--inspect=127.0.0.1:0', MAIN], {
    env: {
      ...process.env,
      WA_DATA_DIR: dataDir,
      WA_SERVER_URL: emu.wsUrl,
      WA_SANDBOX: 'true',
      WA_SANDBOX_ROOT_KEY: emu.rootPublicKey,
      WA_LOG_FORMAT: 'json',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines = []
  readline.createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l))
  readline.createInterface({ input: proc.stderr }).on('line', (l) => lines.push(l))
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
  const socketPath = path.join(dataDir, 'run', 'worker-0.sock')
  const call = (method, p, body) => new Promise((resolve, reject) => {
    const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
    const req = http.request({ socketPath, method, path: p, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end(payload)
  })
  return {
    proc,
    dataDir,
    lines,
    call,
    ready: () => until(() => {
      if (proc.exitCode !== null) throw new Error(`the worker exited: ${lines.join('\n').slice(-2000)}`)
      return lines.some((l) => l.includes('"worker.started"'))
    }, 15000, 'worker.started'),
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1]) * 1024,
    inspector: () => inspect(lines),
    async stop () {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000)
      await exited
      clearTimeout(t)
    }
  }
}

/**
 * Links a started worker as `phone` the way a user does: waits for it to start, POST /connect shows a QR, the
 * emulator's phone scans it, and the worker reports connected. The caller keeps `worker` so its after() stops it
 * even when linking fails.
 */
export async function linkWorker (worker, emu, phone) {
  await worker.ready()
  const connect = await worker.call('POST', '/connect', { wait_ms: 10000 })
  assert.equal(connect.body.state, 'qr', JSON.stringify(connect.body))
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: phone, qr: connect.body.qr })).status, 200)
  await until(async () => (await worker.call('GET', '/status')).body.state === 'connected', 20000, 'connected')
}

// The worker's inspector (Chrome DevTools protocol): `live()` collects its garbage and answers
// process.memoryUsage() then, i.e. what it holds, not what it has yet to free.
export async function inspect (lines) {
  const url = lines.map((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1]).find(Boolean)
  assert.ok(url, 'the worker\'s inspector URL')
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  let n = 0
  const waiting = new Map()
  ws.on('message', (data) => {
    const msg = JSON.parse(data)
    waiting.get(msg.id)?.(msg)
    waiting.delete(msg.id)
  })
  const call = (method, params = {}) => new Promise((resolve) => {
    const id = ++n
    waiting.set(id, resolve)
    ws.send(JSON.stringify({ id, method, params }))
  })
  return {
    async live () {
      await call('HeapProfiler.collectGarbage')
      const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })
      return JSON.parse(r.result.result.value)
    },
    close: () => ws.close()
  }
}
