// The log contract of the worker and the emulator: record shape, level names, one write(2) per
// record of at most 4096 bytes, and nothing secret in any record.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { test } from 'node:test'
import libsignal from 'libsignal'
import { makeLogger as makeEmulatorLogger } from '../emulator/log.js'
import { fitRecord, MAX_RECORD_BYTES, renderConsole, scrubString, writeLine } from '../lib/log-record.js'
import { makeBaileysLogger, makeLogger, routeConsole } from '../lib/logger.js'

const capture = (options = {}) => {
  const lines = []
  const log = makeLogger({ level: 'debug', ...options, write: (line) => lines.push(line) })
  return { log, lines, records: () => lines.map((l) => JSON.parse(l)) }
}

const forms = (buf) => [buf.toString('hex'), buf.toString('base64'), buf.toString('base64').replace(/=+$/, '')]
const assertNoneOf = (text, secrets) => {
  for (const secret of secrets) {
    for (const form of forms(secret)) assert.ok(!text.includes(form), `leaked ${form.slice(0, 12)}… in ${text.slice(0, 300)}`)
  }
}

test('records carry timestamp, level, event and program first, in contract level names', () => {
  const { log, records } = capture()
  log.debug('a.debug')
  log.info({ n: 1 }, 'a.info')
  log.warn('a.warn')
  log.error({ err: new Error('x') }, 'a.error')
  log.fatal('a.fatal')
  log.trace('a.trace') // below debug: not printed
  const got = records()
  assert.deepEqual(got.map((r) => [r.level, r.event]), [
    ['debug', 'a.debug'], ['info', 'a.info'], ['warning', 'a.warn'], ['error', 'a.error'], ['critical', 'a.fatal']
  ])
  for (const r of got) {
    assert.deepEqual(Object.keys(r).slice(0, 4), ['timestamp', 'level', 'event', 'program'])
    assert.equal(r.program, 'worker')
    assert.match(r.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  }
  assert.equal(got[1].n, 1)
})

test('levels: WA_LOG_LEVEL filters, Baileys has its own level and never goes below the worker\'s', () => {
  const { log, records } = capture({ level: 'info' })
  log.debug('hidden.debug')
  const baileys = makeBaileysLogger(log, 'trace')
  assert.equal(baileys.level, 'info') // Baileys reads this: no trace dumps are built for nothing
  baileys.trace({ xml: '<iq/>' }, 'xml send')
  baileys.info('connected to WA')
  const { log: verbose, records: verboseRecords } = capture({ level: 'debug' })
  const chatty = makeBaileysLogger(verbose, 'trace')
  assert.equal(chatty.level, 'trace')
  chatty.child({ class: 'baileys' }).trace({ xml: "<iq id='1' type='set'>\n  0123456789abcdef0123456789abcdef\n</iq>", msg: 'xml send' })
  assert.deepEqual(records().map((r) => [r.level, r.event, r.msg]), [['info', 'baileys.log', 'connected to WA']])
  const [trace] = verboseRecords()
  assert.equal(trace.level, 'debug')
  assert.equal(trace.event, 'baileys.log')
  assert.equal(trace.module, 'baileys')
  assert.equal(trace.xml, "<iq id='1' type='set'>") // the tag, not the payload
})

test('expected conditions are info: Baileys\' 515 stream error after pairing', () => {
  const { log, records } = capture({ level: 'info' })
  const baileys = makeBaileysLogger(log, 'warn')
  baileys.error({ fullErrorNode: { tag: 'stream:error', attrs: { code: '515' } } }, 'stream errored out')
  baileys.error({ fullErrorNode: { tag: 'stream:error', attrs: { code: '503' } } }, 'stream errored out')
  assert.deepEqual(records().map((r) => [r.level, r.fullErrorNode.attrs.code]), [['error', '503']])
})

test('bytes, key material and message bodies never reach a record', () => {
  const { log, lines, records } = capture()
  const priv = randomBytes(32)
  const root = randomBytes(32)
  const adv = randomBytes(32)
  log.info({
    buf: Buffer.from(priv),
    u8: new Uint8Array(randomBytes(20)),
    ab: randomBytes(24).buffer,
    keys: { private: priv.toString('base64'), rootKey: root.toString('hex'), advSecretKey: adv.toString('base64') },
    message: { conversation: 'the secret body', extendedTextMessage: { text: 'another body' } },
    blob: `prefix ${root.toString('base64')} suffix`,
    hex: `x=${adv.toString('hex')}`
  }, 'test.redaction')
  const err = new Error('failed')
  err.data = { privKey: priv }
  log.error({ err }, 'test.error')
  const text = lines.join('\n')
  assertNoneOf(text, [priv, root, adv])
  assert.ok(!text.includes('secret body') && !text.includes('another body'))
  const [r, e] = records()
  assert.equal(r.buf, '[32 bytes]')
  assert.equal(r.u8, '[20 bytes]')
  assert.equal(r.ab, '[24 bytes]')
  assert.equal(r.keys.private, '[redacted]')
  assert.equal(r.message.conversation, '[15 chars]')
  assert.match(r.blob, /^prefix \[base64 44 chars\] suffix$/)
  assert.equal(e.err.message, 'failed')
  assert.equal(e.err.data, undefined)
})

test('scrubbing keeps ids, jids and paths readable', () => {
  for (const keep of ['3EB0C43F0A29A8AC84C1B7', '3EB0' + 'A1B2C3D4E5F6A7B8C9D0'.repeat(2), '15550001111:3@s.whatsapp.net',
    'file:///work/main/node_worker/node_modules/baileys/lib/Socket/socket.js:795:18', 'makeCacheableSignalKeyStore']) {
    assert.equal(scrubString(keep), keep)
  }
  assert.equal(scrubString(randomBytes(16).toString('hex')), '[hex 16 bytes]')
})

test('console.* (libsignal\'s session dumps) goes through the logger with the keys removed', () => {
  const { log, lines, records } = capture()
  const saved = Object.fromEntries(['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir', 'dirxml', 'table', 'assert'].map((m) => [m, console[m]]))
  const keys = Array.from({ length: 6 }, () => randomBytes(32))
  try {
    routeConsole(log)
    const b64 = (k) => k.toString('base64')
    const entry = libsignal.SessionRecord.createEntry().constructor.deserialize({
      registrationId: 7,
      currentRatchet: {
        ephemeralKeyPair: { pubKey: b64(keys[0]), privKey: b64(keys[1]) },
        lastRemoteEphemeralKey: b64(keys[2]),
        previousCounter: 0,
        rootKey: b64(keys[3])
      },
      indexInfo: { baseKey: b64(keys[4]), baseKeyType: 1, closed: -1, used: 1, created: 1, remoteIdentityKey: b64(keys[5]) },
      _chains: {}
    })
    const record = new libsignal.SessionRecord()
    record.closeSession(entry) // console.info("Closing session:", entry), as in every sandbox run
    console.warn('Session already closed', { privKey: keys[1] })
  } finally {
    Object.assign(console, saved)
  }
  assertNoneOf(lines.join('\n'), keys)
  assert.deepEqual(records().map((r) => [r.level, r.event, r.words, r.args]), [
    ['debug', 'libsignal.console', 'Closing session:', ['SessionEntry']],
    ['warning', 'worker.console', 'Session already closed', ['Object']]
  ])
})

test('a record is at most 4096 bytes with the newline: long strings are cut, and it says so', () => {
  const { log, lines } = capture()
  log.info({ a: 'x'.repeat(100000), b: 'é€😀'.repeat(3000), c: 'short' }, 'test.big')
  log.info({ many: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'y'.repeat(200)])) }, 'test.wide')
  for (const line of lines) {
    assert.ok(Buffer.byteLength(line) + 1 <= MAX_RECORD_BYTES, `${Buffer.byteLength(line)} bytes`)
    const r = JSON.parse(line)
    assert.equal(r.truncated, true)
    for (const value of Object.values(r)) if (typeof value === 'string') assert.ok(value.isWellFormed())
  }
  const big = JSON.parse(lines[0])
  assert.ok(big.a.endsWith('…') && big.b.endsWith('…'))
  assert.equal(big.c, 'short')
  // Nothing left to cut: the contract keys remain.
  const record = { timestamp: 't', level: 'info', event: 'e.e', program: 'worker' }
  for (let i = 0; i < 2000; i++) record[`f${i}`] = i
  assert.deepEqual(Object.keys(JSON.parse(fitRecord(record))), ['timestamp', 'level', 'event', 'program', 'truncated'])
})

test('console format: one readable line per record, same cap', () => {
  const { log, lines } = capture({ format: 'console' })
  log.warn({ state: 'qr', last_error: 'two words', n: 3 }, 'session.state')
  log.info({ text: 'hidden', long: 'z'.repeat(9000) }, 'test.long')
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z warning {2}\[worker\] session\.state state=qr last_error="two words" n=3$/)
  assert.ok(!lines[1].includes('hidden') && !lines[1].includes('\n'))
  assert.ok(Buffer.byteLength(lines[1]) < MAX_RECORD_BYTES)
  assert.equal(renderConsole({ timestamp: 't', level: 'critical', event: 'x.y', program: 'emulator' }), 't critical [emulator] x.y')
})

test('one write(2) per record: a full pipe (EAGAIN) is retried, never split', (t) => {
  const calls = []
  let busy = 1
  t.mock.method(fs, 'writeSync', (fd, buf, offset, length) => {
    if (busy-- > 0) { const e = new Error('EAGAIN'); e.code = 'EAGAIN'; throw e }
    calls.push(Buffer.from(buf.subarray(offset, offset + length)).toString())
    return length
  })
  const log = makeLogger({ level: 'info' })
  log.info({ a: 'x'.repeat(10000) }, 'test.one')
  log.info('test.two')
  writeLine(1, 'plain')
  assert.equal(calls.length, 3)
  for (const chunk of calls) {
    assert.ok(chunk.endsWith('\n') && chunk.indexOf('\n') === chunk.length - 1)
    assert.ok(Buffer.byteLength(chunk) <= MAX_RECORD_BYTES)
  }
  assert.equal(JSON.parse(calls[0]).event, 'test.one')
})

test('the emulator writes the same contract, program "emulator"', () => {
  const lines = []
  const log = makeEmulatorLogger({ level: 'info', write: (l) => lines.push(l) })
  log.trace('node.recv', { tag: 'iq' })
  log.debug('hidden.debug')
  log.info('emulator.listening', { port: 1 })
  log.child({ conn: 3 }).warn('frame.invalid', { key: randomBytes(32) })
  log.error('api.failed', { error: 'x' })
  const records = lines.map((l) => JSON.parse(l))
  assert.deepEqual(records.map((r) => [r.level, r.event, r.program]), [
    ['info', 'emulator.listening', 'emulator'], ['warning', 'frame.invalid', 'emulator'], ['error', 'api.failed', 'emulator']
  ])
  assert.equal(records[1].conn, 3)
  assert.equal(records[1].key, '[32 bytes]')
})

test('the worker process: a crash is one critical record, and nothing bypasses the logger', async () => {
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const os = await import('node:os')
  const path = await import('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-crash-'))
  try {
    // The socket path is a directory: the worker cannot start (not a configuration error), it crashes.
    fs.mkdirSync(path.join(dir, 'run', 'worker-0.sock'), { recursive: true })
    const env = { PATH: process.env.PATH, WA_DATA_DIR: dir, WA_LOG_LEVEL: 'debug', WA_SERVER_URL: 'ws://127.0.0.1:9/ws/chat' }
    const run = promisify(execFile)(process.execPath, ['src/main.js'], { env, timeout: 20000 })
    const err = await run.then(() => null, (e) => e)
    assert.equal(err?.code, 1)
    assert.equal(err.stderr, '')
    const records = err.stdout.trim().split('\n').map((line) => JSON.parse(line))
    const crash = records.at(-1)
    assert.equal(crash.event, 'worker.crashed')
    assert.equal(crash.level, 'critical')
    assert.equal(crash.program, 'worker')
    assert.equal(crash.err.code, 'ERR_FS_EISDIR') // the error (and its stack, when it has one) in one record
    // Process warnings and console output are records too.
    const script = `
      import { makeLogger, routeConsole, routeWarnings } from './lib/logger.js'
      const log = makeLogger({ level: 'debug' })
      routeConsole(log); routeWarnings(log)
      console.log('Opening session:', { privKey: Buffer.alloc(32, 7) })
      process.emitWarning('something old', 'DeprecationWarning')
      setTimeout(() => {}, 50)`
    const out = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20000 })
    assert.equal(out.stderr, '')
    const lines = out.stdout.trim().split('\n').map((line) => JSON.parse(line))
    assert.deepEqual(lines.map((r) => r.event), ['worker.console', 'process.warning'])
    assert.ok(!out.stdout.includes('07070707') && !out.stdout.includes('07 07 07'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
