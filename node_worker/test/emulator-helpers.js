// Test helpers: run the emulator as a child process and drive the real Baileys client against it.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import makeWASocket, { useMultiFileAuthState, WA_CERT_DETAILS, Browsers } from 'baileys'
import pino from 'pino'

// Baileys leaves long timers behind (a 30 s pre-key upload race timer on every first login, the
// timeout of every query even when answered). In this test process such timers created by
// Baileys are unref'd so that they do not keep the test file alive after its last test.
const realSetTimeout = globalThis.setTimeout
globalThis.setTimeout = function (fn, ms, ...args) {
  const t = realSetTimeout(fn, ms, ...args)
  if (typeof ms === 'number' && ms >= 3000 && typeof t?.unref === 'function' && /node_modules[\\/]baileys[\\/]/.test(new Error().stack)) t.unref()
  return t
}

const here = path.dirname(fileURLToPath(import.meta.url))
export const EMULATOR_MAIN = path.join(here, '..', 'emulator', 'main.js')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Polls an async predicate until it returns something truthy; fails with `what` after timeoutMs.
export const until = async (predicate, timeoutMs, what) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await predicate()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

const createdDirs = []
process.on('exit', () => {
  for (const d of createdDirs) { try { fs.rmSync(d, { recursive: true, force: true }) } catch { /* best effort at exit */ } }
})
/** a temporary directory, removed when the test process exits */
export const tmpDir = (prefix = 'wa-emu-test-') => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  createdDirs.push(d)
  return d
}

// Every emulator this test process started, killed (SIGKILL) if the process exits with them still running,
// e.g. after a test timed out before its clean-up ran.
const liveEmulators = new Set()
process.on('exit', () => {
  for (const proc of liveEmulators) { try { proc.kill('SIGKILL') } catch { /* already dead */ } }
})

/**
 * starts `node emulator/main.js` on port 0 and resolves once it printed emulator.listening.
 * On any start failure (timeout, early exit, spawn error) the child is SIGKILLed and its exit awaited
 * before the promise rejects; the error carries the child's `pid`. The bound is a liveness bound, not a speed
 * check: a start costs ~1.5 CPU-s (the protobufs, the media host's RSA keys) and took over 15 s on a loaded
 * 2-core machine, where that bound failed whole files at once.
 */
export const startEmulator = async ({ env = {}, timeoutMs = 60000 } = {}) => {
  const proc = spawn(process.execPath, [EMULATOR_MAIN], {
    env: { ...process.env, WA_EMULATOR_PORT: '0', WA_EMULATOR_QR_REFS: '3', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  liveEmulators.add(proc)
  // resolves once the child is gone and its output read ('close'), or when it never started (spawn 'error')
  const exited = new Promise((resolve) => {
    proc.on('close', (code, signal) => { liveEmulators.delete(proc); resolve({ code, signal }) })
    proc.on('error', (err) => { if (proc.pid === undefined) { liveEmulators.delete(proc); resolve({ code: null, signal: null, error: err }) } })
  })
  const lines = []
  const stderr = []
  proc.stderr.on('data', (d) => stderr.push(d.toString()))
  const rl = readline.createInterface({ input: proc.stdout })
  let timer
  const listening = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`emulator did not start within ${timeoutMs} ms`)), timeoutMs)
    rl.on('line', (line) => {
      let ev
      try { ev = JSON.parse(line) } catch { ev = { unparsable: line } }
      lines.push(ev)
      if (ev.event === 'emulator.listening') resolve(ev)
    })
    exited.then(({ code, signal, error }) => reject(error || new Error(`emulator exited with ${code ?? signal}`)))
  })
  let info
  try {
    info = await listening
  } catch (err) {
    proc.kill('SIGKILL') // a no-op if it already exited
    await exited
    err.message += ` (pid ${proc.pid}; stderr: ${stderr.join('').trim() || 'empty'})`
    err.pid = proc.pid
    throw err
  } finally {
    clearTimeout(timer)
  }
  const base = `http://127.0.0.1:${info.port}`
  const emu = {
    proc,
    info,
    lines,
    stderr,
    port: info.port,
    base,
    wsUrl: `ws://127.0.0.1:${info.port}/ws/chat`,
    rootPublicKey: info.root_public_key,
    async api (method, p, body) {
      const res = await fetch(base + p, {
        method,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
      })
      const text = await res.text()
      let json
      try { json = JSON.parse(text) } catch { json = text }
      return { status: res.status, body: json }
    },
    async stop () {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited
      proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000)
      const r = await exited
      clearTimeout(t)
      return r
    }
  }
  return emu
}

/** makes Baileys trust the emulator's root key (test process only) */
export const trustEmulator = (emu) => {
  WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(emu.rootPublicKey, 'base64')
}

const silent = pino({ level: process.env.BAILEYS_LOG_LEVEL || 'silent' })

/**
 * A Baileys socket with a file auth state in authDir, plus recorded events.
 * Each call opens ONE socket; reconnecting (after 515 etc.) is the caller's job, like in an app.
 */
export const openClient = async (emu, authDir, config = {}) => {
  const { state, saveCreds } = await useMultiFileAuthState(authDir)
  const rec = { updates: [], qrs: [], upserts: [], msgUpdates: [], receipts: [], closed: null, open: false, history: [] }
  const waiters = new Set()
  const notify = () => { for (const w of [...waiters]) w() }
  let saving = Promise.resolve()
  const sock = makeWASocket({
    waWebSocketUrl: emu.wsUrl,
    auth: state,
    logger: silent,
    browser: Browsers.macOS('Chrome'),
    qrTimeout: 3000,
    connectTimeoutMs: 5000,
    defaultQueryTimeoutMs: 8000,
    keepAliveIntervalMs: 30000,
    markOnlineOnConnect: false,
    ...config
  })
  sock.ev.on('creds.update', () => { saving = saving.then(() => saveCreds()).catch(() => {}) })
  sock.ev.on('connection.update', (u) => {
    rec.updates.push(u)
    if (u.qr) rec.qrs.push(u.qr)
    if (u.connection === 'open') rec.open = true
    if (u.connection === 'close') rec.closed = u.lastDisconnect
    notify()
  })
  sock.ev.on('messages.upsert', (u) => { rec.upserts.push(u); notify() })
  sock.ev.on('messages.update', (u) => { rec.msgUpdates.push(...u); notify() })
  sock.ev.on('message-receipt.update', (u) => { rec.receipts.push(...u); notify() })
  sock.ev.on('messaging-history.set', (h) => { rec.history.push(h); notify() })
  const waitFor = (predicate, timeoutMs = 10000, what = 'condition') => new Promise((resolve, reject) => {
    const check = () => {
      let v
      try { v = predicate(rec) } catch (err) { cleanup(); reject(err); return }
      if (v) { cleanup(); resolve(v) }
    }
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${what}`)) }, timeoutMs)
    const cleanup = () => { clearTimeout(timer); waiters.delete(check) }
    waiters.add(check)
    check()
  })
  return {
    sock,
    rec,
    state,
    waitFor,
    waitOpen: (ms) => waitFor((r) => (r.closed ? (() => { throw new Error(`closed before open: ${r.closed.error?.output?.statusCode} ${r.closed.error?.message}`) })() : r.open), ms, 'connection open'),
    waitClose: (ms) => waitFor((r) => r.closed, ms, 'connection close'),
    closeCode: () => rec.closed?.error?.output?.statusCode,
    flushCreds: () => saving,
    async end () {
      if (!rec.closed) {
        try { sock.end(undefined) } catch { /* already ended */ }
        await waitFor((r) => r.closed, 3000, 'close after end').catch(() => {})
      }
      await saving
    }
  }
}

/**
 * pairs a new device for `phone`: QR -> /phone/scan -> 515 -> reconnect -> open. Returns the open client.
 * With `settle` it also waits for the phone's history sync, which ends the first login: a device closed
 * before that waits (buffering its events) up to 20 s for one at its next login.
 * On failure every socket it opened is ended before the error is thrown.
 */
export const pairDevice = async (emu, phone, { authDir = tmpDir(), config = {}, settle = false } = {}) => {
  const opened = []
  try {
    const first = await openClient(emu, authDir, config)
    opened.push(first)
    const qr = await first.waitFor((r) => r.qrs[0], 10000, 'qr')
    const scan = await emu.api('POST', '/phone/scan', { phone_number: phone, qr })
    if (scan.status !== 200) throw new Error(`scan failed: ${scan.status} ${JSON.stringify(scan.body)}`)
    await first.waitClose(5000)
    const code = first.closeCode()
    if (code !== 515) throw new Error(`expected 515 after pairing, got ${code}`)
    await first.flushCreds()
    const client = await openClient(emu, authDir, config)
    opened.push(client)
    await client.waitOpen(10000)
    if (settle) await client.waitFor((r) => r.history.length > 0, 5000, 'history sync')
    return { client, authDir, scan: scan.body }
  } catch (err) {
    for (const c of opened) await c.end().catch(() => {})
    throw err
  }
}

// The highest status Baileys recorded for message `id` (updates and own upserts), -1 when none.
export const statusOf = (client, id) => {
  let best = -1
  for (const u of client.rec.msgUpdates) if (u.key.id === id && typeof u.update.status === 'number') best = Math.max(best, u.update.status)
  for (const up of client.rec.upserts) for (const m of up.messages) if (m.key.id === id && m.key.fromMe && typeof m.status === 'number') best = Math.max(best, m.status)
  return best
}

/** what `phone` received, as the emulator stored it */
export const inbox = async (emu, phone) => (await emu.api('GET', `/contacts/${encodeURIComponent(phone)}/messages`)).body
/** polls `phone`'s inbox until message `id` is there (and satisfies `accept`): a send is stored asynchronously */
export const inboxEntry = (emu, phone, id, accept = () => true) => until(async () => (await inbox(emu, phone))
  .find((m) => m.id === id && accept(m)), 5000, `message ${id} in the inbox of ${phone}`)
