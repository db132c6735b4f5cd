// A full disk stops the worker (src/storage.js): every store of the worker reports its failed write to the
// process's handler before anyone learns of it, and the worker process exits at start, and while it runs,
// when the data dir takes no write. On a real tmpfs mounted by the test (root only; skipped otherwise) and
// filled with a file until ENOSPC, as a disk fills up.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { proto } from 'baileys'
import { openAuthStore } from '../src/auth-store.js'
import { DecryptCache } from '../src/decrypt-cache.js'
import { EventJournal } from '../src/event-journal.js'
import { SentIds } from '../src/sent-ids.js'
import { SentMessages } from '../src/sent-messages.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'
import { onWriteFailure } from '../src/storage.js'

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url))
const mounts = []

/** A tmpfs of `bytes` at a new temp dir, or null (with the reason) when this process may not mount. */
function mountTmpfs (bytes, options = '') {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'wa-full-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700${options}`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (err) {
    fs.rmdirSync(dir)
    return { skip: `cannot mount a tmpfs here (${String(err.stderr || err.message).trim()}): needs root` }
  }
  mounts.push(dir)
  return { dir }
}

function unmount (dir) {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' })
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' }) // still busy (a child that has not died yet)
  }
  fs.rmdirSync(dir)
  mounts.splice(mounts.indexOf(dir), 1)
}

after(() => {
  for (const dir of [...mounts]) unmount(dir)
})

/** Writes a file into `dir` until the file system refuses even one more byte; returns its path. */
function fill (dir) {
  const file = path.join(dir, 'filler')
  const fd = fs.openSync(file, 'w')
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const buf = Buffer.alloc(size, 0x5a)
      for (;;) {
        try {
          fs.writeSync(fd, buf)
        } catch (err) {
          if (err.code !== 'ENOSPC') throw err
          break
        }
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return file
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('every store of the worker reports a failed write to the handler before its caller hears of it', async (t) => {
  const { dir, skip } = mountTmpfs(4 * 1024 * 1024)
  if (skip) return t.skip(skip)
  const reported = []
  onWriteFailure((err, where) => reported.push({ code: err.code, where: path.relative(dir, where) }))
  try {
    const auth = await openAuthStore(path.join(dir, 'session'))
    const decrypted = await DecryptCache.open({ dir: path.join(dir, 'decrypted') })
    const sent = await SentMessages.open({ dir: path.join(dir, 'sent-messages'), maxAgeMs: 3600e3, maxEntries: 100 })
    const journal = await EventJournal.open({ dir: path.join(dir, 'events'), capacity: 100 })
    const sentIds = new SentIds({ file: path.join(dir, 'sent-ids.txt') })
    await auth.state.keys.set({ session: { 'a@s.whatsapp.net.0': Buffer.alloc(100, 1) } })
    const before = await journal.push('message', { id: 'm1', text: 'before' }, 'in:m1')
    const filler = fill(dir)

    // Records big enough that no page's slack takes them: each store must fail, and say so first.
    const big = Buffer.alloc(64 * 1024, 7)
    const outcomes = []
    const attempt = (what, write) => write().then(
      () => outcomes.push(`${what} ok`),
      () => outcomes.push(`${what} rejected after ${reported.length} report(s)`))
    await attempt('auth', () => auth.state.keys.set({ session: { 'b@s.whatsapp.net.0': big } }))
    await attempt('decrypted', () => decrypted.put('k', big))
    const message = proto.Message.fromObject({ conversation: 'x'.repeat(64 * 1024) })
    await attempt('sent', () => sent.put('3EB0AA', 'b@s.whatsapp.net', message))
    await attempt('events', () => journal.push('message', { id: 'm2', text: 'y'.repeat(64 * 1024) }, 'in:m2'))
    sentIds.add('3EB0' + 'A'.repeat(4000)) // not an id the file keeps, but a write that needs a page
    assert.deepEqual(outcomes, [
      'auth rejected after 1 report(s)', 'decrypted rejected after 2 report(s)',
      'sent rejected after 3 report(s)', 'events rejected after 4 report(s)'
    ])
    assert.deepEqual(reported.map((r) => r.code), ['ENOSPC', 'ENOSPC', 'ENOSPC', 'ENOSPC', 'ENOSPC'])
    assert.deepEqual(reported.map((r) => r.where), ['session', 'decrypted', 'sent-messages', 'events', 'sent-ids.txt'])
    // Read-only from then on (without a handler that ends the process), also once space is back.
    fs.rmSync(filler)
    await assert.rejects(auth.state.keys.set({ session: { 'c@s.whatsapp.net.0': Buffer.alloc(10) } }), /read-only/)

    // Reopened (what a restarted worker does): what was acknowledged is there, the failed write is not,
    // and writes work again.
    for (const store of [auth, decrypted, sent, journal]) await store.close()
    const again = await openAuthStore(path.join(dir, 'session'))
    const keys = await again.state.keys.get('session', ['a@s.whatsapp.net.0', 'b@s.whatsapp.net.0'])
    assert.equal(keys['a@s.whatsapp.net.0'].length, 100)
    assert.equal(keys['b@s.whatsapp.net.0'], null)
    await again.state.keys.set({ session: { 'd@s.whatsapp.net.0': big } })
    await again.close()
    const events = await EventJournal.open({ dir: path.join(dir, 'events'), capacity: 100 })
    assert.deepEqual(events.events.map((e) => e.seq), [before.seq])
    await events.close()
  } finally {
    onWriteFailure(null)
    unmount(dir)
  }
})

/** The worker process (src/main.js) with its data dir in `dataDir`: exit code and log records. */
function startWorker (dataDir, env = {}) {
  const runDir = fs.mkdtempSync(path.join(tmpdir(), 'wa-full-run-'))
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      WA_DATA_DIR: dataDir,
      WA_RUN_DIR: runDir,
      WA_LOG_FORMAT: 'json',
      WA_SERVER_URL: 'ws://127.0.0.1:9/ws/chat',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const records = []
  let text = ''
  child.stdout.on('data', (chunk) => {
    text += chunk
    let nl
    while ((nl = text.indexOf('\n')) >= 0) {
      const line = text.slice(0, nl)
      text = text.slice(nl + 1)
      try { records.push(JSON.parse(line)) } catch { /* not a record */ }
    }
  })
  child.stderr.resume()
  // 'close', not 'exit': only then has every line the worker wrote been read
  const exited = new Promise((resolve) => child.on('close', (code, signal) => {
    fs.rmSync(runDir, { recursive: true, force: true })
    resolve({ code, signal })
  }))
  return { child, records, exited }
}

async function within (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

test('a worker on a full data dir exits at start, before it listens or dials WhatsApp', async (t) => {
  const { dir, skip } = mountTmpfs(2 * 1024 * 1024)
  if (skip) return t.skip(skip)
  try {
    fill(dir)
    const worker = startWorker(dir)
    const { code } = await within(worker.exited, 20000, 'the worker exits').catch((err) => {
      worker.child.kill('SIGKILL')
      throw err
    })
    assert.equal(code, 1)
    const events = worker.records.map((r) => r.event)
    assert.ok(events.includes('worker.storage_unwritable'), events.join(', '))
    assert.ok(!events.includes('worker.started'), 'it started its internal API on a full disk')
  } finally {
    unmount(dir)
  }
})

test('a running worker whose data dir fills up exits within its probe interval', async (t) => {
  const { dir, skip } = mountTmpfs(4 * 1024 * 1024)
  if (skip) return t.skip(skip)
  const worker = startWorker(dir, { WA_STORAGE_PROBE_MS: '200' })
  try {
    const started = Date.now()
    while (!worker.records.some((r) => r.event === 'worker.started')) {
      assert.ok(Date.now() - started < 20000, 'the worker did not start')
      await sleep(50)
    }
    await sleep(500)
    assert.equal(worker.child.exitCode, null, 'it exited while the disk had space')
    const filled = Date.now()
    fill(dir)
    const { code } = await within(worker.exited, 5000, 'the worker exits once the disk is full')
    assert.equal(code, 1)
    assert.ok(worker.records.some((r) => r.event === 'worker.storage_unwritable'))
    // a few 200 ms probe intervals, on a busy machine
    assert.ok(Date.now() - filled < 4000, `took ${Date.now() - filled} ms`)
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.storage-probe')), [], 'a probe file was left')
  } finally {
    worker.child.kill('SIGKILL')
    await worker.exited
    unmount(dir)
  }
})

test('a session store the full disk keeps from opening stops the worker instead of failing the session', async (t) => {
  // Out of inodes this time: the stores that do not exist yet cannot be created (ENOSPC from mkdir/open).
  const { dir, skip } = mountTmpfs(4 * 1024 * 1024, ',nr_inodes=64')
  if (skip) return t.skip(skip)
  const reported = []
  onWriteFailure((err, where) => reported.push({ code: err.code, where: path.relative(dir, where) }))
  try {
    const settings = readSettings({ WA_DATA_DIR: dir, WA_LOG_FORMAT: 'json' })
    const auth = await openAuthStore(settings.sessionDir) // a linked device's store exists
    await auth.close()
    for (let n = 0; ; n++) {
      try {
        fs.writeFileSync(path.join(dir, `inode-${n}`), '')
      } catch (err) {
        if (err.code !== 'ENOSPC') throw err
        break
      }
    }
    const journal = await EventJournal.open({ dir: null, capacity: 10 })
    const session = new WhatsAppSession({ settings, logger: makeLogger({ level: 'error', write: () => {} }), journal })
    await session.stores.openStore().catch(() => {})
    // In the worker the report ends the process there: the session never turns `failed` (which would wait
    // for an operator's POST /connect even after space came back).
    assert.deepEqual(reported, [{ code: 'ENOSPC', where: 'session' }])
  } finally {
    onWriteFailure(null)
    unmount(dir)
  }
})
