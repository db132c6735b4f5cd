import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Backoff } from '../src/backoff.js'
import { EventJournal } from '../src/events.js'
import { isE164, jidToPhone, phoneToJid } from '../src/phone.js'
import { readSettings, SettingsError } from '../src/settings.js'

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
  assert.equal(s.socketPath, '/tmp/x/run/worker.sock')
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
