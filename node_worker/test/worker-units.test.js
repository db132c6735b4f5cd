import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { proto } from 'baileys'
import { Backoff } from '../src/backoff.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { SentIds } from '../src/sent-ids.js'
import { SerialQueue } from '../src/serial.js'
import { WhatsAppSession } from '../src/session.js'
import { isE164, jidToPhone, phoneToJid } from '../src/phone.js'
import { readSettings, SettingsError } from '../src/settings.js'
import { makeRoutes } from '../src/server.js'
import { Readable } from 'node:stream'

test('backoff grows, is capped, jittered within 20%, and resets', () => {
  for (const r of [0, 0.5, 0.999]) {
    const b = new Backoff({ baseMs: 1000, maxMs: 30000, random: () => r })
    const delays = Array.from({ length: 8 }, () => b.next())
    for (let i = 1; i < 5; i++) assert.ok(delays[i] > delays[i - 1], `${delays}`)
    assert.ok(delays.every((d) => d <= 30000))
    assert.ok(delays[0] >= 800 && delays[0] <= 1200)
    b.reset()
    assert.equal(b.attempt, 0)
    assert.ok(b.next() <= 1200)
  }
})

test('settings: defaults, and bad values raise SettingsError', () => {
  const s = readSettings({ WA_DATA_DIR: '/tmp/x' })
  assert.equal(s.serverUrl, 'wss://web.whatsapp.com/ws/chat')
  assert.equal(s.socketPath, '/tmp/x/run/worker-0.sock')
  assert.equal(readSettings({ WA_DATA_DIR: '/tmp/x', WA_SHARD: '3' }).socketPath, '/tmp/x/run/worker-3.sock')
  assert.equal(s.sandboxRootKey, null)
  assert.ok(s.shutdownTimeoutMs < 15000)
  assert.throws(() => readSettings({ WA_SERVER_URL: 'not-a-url' }), SettingsError)
  assert.throws(() => readSettings({ WA_SERVER_URL: 'http://example.test/' }), SettingsError)
  assert.throws(() => readSettings({ WA_RECONNECT_BASE_MS: '-5' }), SettingsError)
})

test('phone numbers and jids', () => {
  assert.ok(isE164('+15550001111'))
  assert.ok(!isE164('15550001111'))
  assert.equal(phoneToJid('+15550001111'), '15550001111@s.whatsapp.net')
  assert.equal(jidToPhone('15550001111:3@s.whatsapp.net'), '+15550001111')
  assert.equal(jidToPhone('1234@lid'), null)
})

test('event journal: numbered, readable by several readers, long poll wakes on push', async () => {
  const j = new EventJournal({ capacity: 3 })
  j.push('a', {})
  j.push('b', {})
  assert.deepEqual(j.after(0).map((e) => e.type), ['a', 'b'])
  assert.deepEqual(j.after(1).map((e) => e.type), ['b'])
  const waiting = j.read(2, 5000)
  setTimeout(() => j.push('c', { id: 'X' }), 20)
  const got = await waiting
  assert.deepEqual(got.map((e) => [e.seq, e.type]), [[3, 'c']])
  j.push('d', {})
  assert.deepEqual(j.after(0).map((e) => e.seq), [2, 3, 4]) // capacity
  assert.deepEqual(await j.read(4, 10), [])
})

test('settings: log format, Baileys level and the not-on-WhatsApp TTL', () => {
  const s = readSettings({ WA_DATA_DIR: '/tmp/x' })
  assert.equal(s.notOnWhatsAppTtlMs, 60000)
  assert.ok(s.onWhatsAppTtlMs > s.notOnWhatsAppTtlMs)
  assert.equal(s.logFormat, 'auto')
  assert.equal(s.baileysLogLevel, 'warn')
  assert.equal(readSettings({ WA_NOT_ON_WHATSAPP_TTL_MS: '0' }).notOnWhatsAppTtlMs, 0)
  assert.equal(readSettings({ WA_BAILEYS_LOG_LEVEL: 'trace', WA_LOG_LEVEL: 'warning' }).logLevel, 'warn')
  assert.throws(() => readSettings({ WA_NOT_ON_WHATSAPP_TTL_MS: '1m' }), SettingsError)
  assert.throws(() => readSettings({ WA_LOG_FORMAT: 'xml' }), SettingsError)
  assert.throws(() => readSettings({ WA_BAILEYS_LOG_LEVEL: 'loud' }), SettingsError)
})

test('lifecycle queue: operations run one at a time, in order, and a failure does not block the next', async () => {
  const q = new SerialQueue()
  const trace = []
  const op = (name, ms, fail = false) => q.run(name, async () => {
    trace.push(`${name}+`)
    assert.equal(q.running, name)
    await new Promise((resolve) => setTimeout(resolve, ms))
    trace.push(`${name}-`)
    if (fail) throw new Error(name)
    return name
  })
  const results = await Promise.allSettled([op('connect', 30), op('disconnect', 5, true), op('reconnect', 1)])
  assert.deepEqual(trace, ['connect+', 'connect-', 'disconnect+', 'disconnect-', 'reconnect+', 'reconnect-'])
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  assert.equal(q.running, null)
})

test('sent ids: bounded, kept across a restart, cleared on logout', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-sent-'))
  try {
    const file = path.join(dir, 'sent-ids.txt')
    const ids = new SentIds({ file, capacity: 3 })
    for (const id of ['AAAA1111', 'BBBB2222', 'CCCC3333', 'DDDD4444']) ids.add(id)
    assert.ok(!ids.has('AAAA1111') && ids.has('DDDD4444'))
    const again = new SentIds({ file, capacity: 3 })
    assert.deepEqual([...again.ids], ['BBBB2222', 'CCCC3333', 'DDDD4444'])
    for (let i = 0; i < 20; i++) again.add(`ID${i}xxxxx`)
    assert.ok(fs.readFileSync(file, 'utf8').split('\n').length <= 3 * 2 + 1) // compacted
    again.clear()
    assert.ok(!fs.existsSync(file))
    assert.ok(!new SentIds({ file, capacity: 3 }).has('ID19xxxxx'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

const makeSession = (dir) => {
  const lines = []
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  const journal = new EventJournal({ capacity: 100 })
  const session = new WhatsAppSession({ settings: readSettings({ WA_DATA_DIR: dir }), logger, journal })
  return { session, journal, lines }
}

test('message.status only for ids this worker sent: not for the phone\'s messages or history sync', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-status-'))
  try {
    const { session, journal } = makeSession(dir)
    session.sentIds.add('OURS0001')
    const { DELIVERY_ACK, SERVER_ACK, READ } = proto.WebMessageInfo.Status
    // The shapes Baileys emits: history sync and our own sends come as fromMe upserts of type 'append'.
    session.inbound.onUpsert({ type: 'append', messages: [
      { key: { id: 'PHONE0001', fromMe: true, remoteJid: '15550002222@s.whatsapp.net' }, status: READ },
      { key: { id: 'OURS0001', fromMe: true, remoteJid: '15550002222@s.whatsapp.net' }, status: SERVER_ACK }
    ] })
    session.inbound.onUpsert({ type: 'notify', messages: [{ key: { id: 'PHONE0002', fromMe: true }, status: DELIVERY_ACK }] })
    session.statuses.onMessagesUpdate([
      { key: { id: 'PHONE0001', fromMe: true }, update: { status: READ } },
      { key: { id: 'OURS0001', fromMe: true }, update: { status: DELIVERY_ACK } },
      { key: { id: 'OURS0001', fromMe: false }, update: { status: READ } }
    ])
    assert.deepEqual(journal.after(0).map((e) => [e.type, e.id, e.status]), [
      ['message.status', 'OURS0001', 'sent'], ['message.status', 'OURS0001', 'delivered']
    ])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('409 not_connected says why: reconnecting (attempt, next try, last error), connecting, stopped', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-409-'))
  try {
    const { session } = makeSession(dir)
    assert.match(session.lifecycle.notConnected().message, /not connected \(state: stopped\); POST \/connect first/)
    session.state = 'connecting'
    session.lastError = 'Connection Terminated (428)'
    session.backoff.next()
    session.reconnectAt = Date.now() + 2500
    session.reconnectTimer = setTimeout(() => {}, 0)
    const err = session.lifecycle.notConnected()
    clearTimeout(session.reconnectTimer)
    assert.equal(err.status, 409)
    assert.equal(err.code, 'not_connected')
    assert.match(err.message, /^WhatsApp is reconnecting \(attempt 1, next try in 2\.\d s; last error: Connection Terminated \(428\)\); retry later\.$/)
    assert.equal(err.details.attempt, 1)
    assert.equal(err.details.last_error, 'Connection Terminated (428)')
    assert.ok(err.details.next_retry_ms > 2000 && err.details.next_retry_ms <= 2500)
    assert.ok(Date.parse(err.details.next_retry_at) > Date.now())
    session.reconnectTimer = null
    assert.match(session.lifecycle.notConnected().message, /^WhatsApp is connecting \(attempt 1\); last error/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('event journal: a reader of an earlier boot is answered at once, not after its long poll', async () => {
  const j = new EventJournal({ capacity: 10 })
  j.push('session.status', {})
  const started = Date.now()
  assert.deepEqual(await j.read(7, 5000), []) // ahead of this boot's numbering
  assert.deepEqual((await j.read(0, 5000, 'another-boot')).map((e) => e.seq), [1])
  assert.deepEqual(await j.read(1, 5000, 'another-boot'), [])
  assert.ok(Date.now() - started < 1000)
  const same = j.read(1, 5000, j.bootId)
  setTimeout(() => j.push('message', {}), 20)
  assert.deepEqual((await same).map((e) => e.seq), [2])
})

test('event journal on disk: unacknowledged events survive a restart with their numbers; acked ones do not come back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-events-'))
  try {
    let j = await EventJournal.open({ dir: path.join(dir, 'events'), capacity: 100 })
    await j.push('message', { id: 'A', text: 'one' }, 'in:a')
    await j.push('message', { id: 'B', text: 'two' }, 'in:b')
    await j.push('message.status', { id: 'C', status: 'delivered' }, 'status:c')
    assert.equal((await j.push('message', { id: 'A', text: 'one' }, 'in:a')).seq, 1) // a repeat is the same event
    await j.ack(1)
    await j.close() // the state on disk is what a kill -9 leaves: every push and ack was fsync'ed
    j = await EventJournal.open({ dir: path.join(dir, 'events'), capacity: 100 })
    assert.deepEqual(j.after(0).map((e) => [e.seq, e.event_id]), [[2, 'in:b'], [3, 'status:c']])
    assert.equal(j.acked, 1)
    assert.equal((await j.push('session.status', { state: 'connected' })).seq, 4) // numbering goes on
    await j.ack(4)
    await j.close()
    j = await EventJournal.open({ dir: path.join(dir, 'events'), capacity: 100 })
    assert.deepEqual(j.after(0), [])
    assert.equal((await j.push('session.status', { state: 'connecting' })).seq, 5) // never back to a used number
    assert.equal(fs.statSync(path.join(dir, 'events')).mode & 0o777, 0o700)
    await j.close()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('event journal: past its capacity the oldest unacknowledged events go, with an error logged', async () => {
  const lines = []
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  const j = await EventJournal.open({ dir: null, capacity: 2, logger })
  for (const id of ['a', 'b', 'c']) await j.push('message', { id }, id)
  assert.deepEqual(j.after(0).map((e) => e.id), ['b', 'c'])
  assert.ok(lines.some((l) => JSON.parse(l).event === 'events.dropped_unacknowledged'))
})

test('internal API: POST /events/ack forgets what the gateway stored, and refuses nonsense', async () => {
  const j = new EventJournal({ capacity: 10 })
  await j.push('message', { id: 'A' }, 'a')
  await j.push('message', { id: 'B' }, 'b')
  const ack = makeRoutes()['POST /events/ack']
  const account = { name: 'default', session: {}, journal: j }
  const request = (body) => Object.assign(Readable.from([Buffer.from(JSON.stringify(body))]), { headers: {} })
  const acked = await ack(request({ upto: 1, boot_id: j.bootId }), null, account)
  assert.deepEqual([acked.acked, acked.pending], [1, 1])
  assert.deepEqual(j.after(0).map((e) => e.id), ['B'])
  await assert.rejects(ack(request({ upto: 'x' }), null, account), (e) => e.code === 'invalid_upto')
  await assert.rejects(ack(request({ upto: 2, boot_id: 'old' }), null, account), (e) => e.code === 'stale_boot')
  assert.equal(j.after(0).length, 1)
})
