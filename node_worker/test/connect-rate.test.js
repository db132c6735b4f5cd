// WA_CONNECT_RATE over a real shard (src/accounts.js, session/lifecycle.js, src/connect-pacer.js) against the
// emulator, whose GET /stats counts the dials it sees: a restart's burst of resumes, and a mass disconnect's
// reconnects, reach the server at the rate instead of all at once; one account alone dials at once.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { startEmulator, trustEmulator, tmpDir, until } from './emulator-helpers.js'
import { AccountHost } from '../src/accounts.js'
import { makeLogger } from '../lib/logger.js'
import { makeHandler } from '../src/server.js'
import { readSettings } from '../src/settings.js'

const RATE = 1 // dials per second
const NAMES = ['default', 'a1', 'a2', 'a3', 'a4']
// a paced shard dials at most RATE + 1 (the full bucket) in any second; one more for timers that fire late
const PEAK_BOUND = RATE + 2
// and its dials of N accounts span (N - 1) / RATE seconds (the first at once): at least N - 2 on a busy machine
const MIN_SPAN_MS = (NAMES.length - 2) * 1000 / RATE

let emu
let dataDir
let settings
let host
const quiet = makeLogger({ level: 'error', write: () => {} })

before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
  dataDir = tmpDir('wa-connect-rate-')
  const accounts = Object.fromEntries(NAMES.map((n) => [n, { shard: 0 }]))
  fs.writeFileSync(path.join(dataDir, 'accounts.json'), JSON.stringify({ accounts }))
  settings = readSettings({
    WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent',
    WA_CONNECT_RATE: String(RATE), WA_RECONNECT_BASE_MS: '300', WA_RECONNECT_STABLE_MS: '500'
  })
  host = new AccountHost({ settings, logger: quiet })
})
after(async () => {
  await host?.shutdown()
  await emu?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

const call = (handle, method, pathname, body) => {
  const req = Object.assign(Readable.from(body === undefined ? [] : [Buffer.from(JSON.stringify(body))]), { method, headers: {} })
  return handle(req, new URL(pathname, 'http://worker'))
}

const allConnected = (h) => NAMES.every((n) => h.get(n)?.session.state === 'connected')

// when the emulator accepted the WebSockets of the last `n` dials (its connection.opened records)
const dialTimes = (n) => emu.lines.filter((l) => l.event === 'connection.opened').slice(-n).map((l) => Date.parse(l.timestamp))
const span = (times) => Math.max(...times) - Math.min(...times)

test('a restart resumes six accounts at the rate; a mass disconnect reconnects them at the rate', async () => {
  const handle = makeHandler({ host })
  await host.resumeAll()
  for (const [i, name] of NAMES.entries()) {
    const started = await call(handle, 'POST', `/accounts/${name}/connect`, { wait_ms: 10000 })
    assert.equal(started.state, 'qr', JSON.stringify(started))
    const scan = await emu.api('POST', '/phone/scan', { phone_number: `+1555007${String(i).padStart(4, '0')}`, qr: started.qr })
    assert.equal(scan.status, 200, JSON.stringify(scan.body))
  }
  await until(() => allConnected(host), 60000, 'every account linked')
  await host.shutdown() // SIGTERM: the devices stay linked

  // a restart: a new shard resumes every account at once
  await emu.api('POST', '/stats/reset')
  host = new AccountHost({ settings, logger: quiet })
  const t0 = Date.now()
  await host.resumeAll()
  // the last account waits for its slot: connecting, and a send is told why and for how long
  const waiting = NAMES.map((n) => host.get(n).session).filter((s) => s.status().reconnect.scheduled)
  assert.ok(waiting.length >= 1, 'an account waits for its slot')
  const why = waiting.at(-1).lifecycle.notConnected()
  assert.equal(waiting.at(-1).state, 'connecting')
  assert.match(why.message, /its turn under WA_CONNECT_RATE in \d/)
  assert.ok(why.details.next_retry_ms > 0, JSON.stringify(why.details))
  await until(() => allConnected(host), 30000, 'every account resumed')
  const resumed = (await emu.api('GET', '/stats')).body
  assert.equal(resumed.connects_total, NAMES.length, JSON.stringify(resumed))
  assert.ok(resumed.peak_connects_per_s <= PEAK_BOUND, `resume peak ${resumed.peak_connects_per_s} > ${PEAK_BOUND}`)
  assert.ok(span(dialTimes(NAMES.length)) >= MIN_SPAN_MS, `the resumes' dials spanned ${span(dialTimes(NAMES.length))} ms`)
  assert.ok(Date.now() - t0 >= MIN_SPAN_MS, 'the last dial waited for its slot')

  // the server drops every connection at once (a restart of WhatsApp's edge): the reconnect timers fire
  // together and the pacer spreads their dials
  await emu.api('POST', '/stats/reset')
  const dropped = await emu.api('POST', '/faults', { kind: 'disconnect' })
  assert.equal(dropped.body.applied_to, NAMES.length, JSON.stringify(dropped.body))
  await until(async () => (await emu.api('GET', '/stats')).body.connections_logged_in === NAMES.length && allConnected(host), 30000, 'every account reconnected')
  const reconnected = (await emu.api('GET', '/stats')).body
  assert.ok(reconnected.connects_total >= NAMES.length, JSON.stringify(reconnected))
  assert.ok(reconnected.peak_connects_per_s <= PEAK_BOUND, `reconnect peak ${reconnected.peak_connects_per_s} > ${PEAK_BOUND}`)
  const redials = dialTimes(reconnected.connects_total)
  assert.ok(span(redials) >= MIN_SPAN_MS, `the reconnects' dials spanned ${span(redials)} ms`)

  // later, one account's link drops alone: the bucket has refilled and it dials once its backoff delay is over
  await until(() => host.pacer.backlogMs() === 0, 10000, 'the bucket refilled')
  const one = host.get('a3').session
  const opened = emu.lines.filter((l) => l.event === 'connection.opened').length
  const drop = Date.now()
  await emu.api('POST', '/faults', { kind: 'disconnect', phone_number: '+15550070003' })
  await until(() => emu.lines.filter((l) => l.event === 'connection.opened').length > opened, 10000, 'a3 dialled again')
  const waited = dialTimes(1)[0] - drop
  assert.ok(waited < one.backoff.history.at(-1) + 2000, `a3 dialled ${waited} ms after the drop (backoff ${one.backoff.history.at(-1)} ms)`)
  await until(() => one.state === 'connected', 10000, 'a3 reconnected')
})
