// A contact's message that cannot be decrypted is never silent (src/undecryptable.js): after Baileys'
// retry receipts and the contact's resends all failed, one durable `message.undecryptable` event; a
// message whose resend decrypts produces none. Real Baileys against the emulator (a `garble` fault damages
// every copy of a contact's next message, resends included).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, until, sleep } from './emulator-helpers.js'
import { pairedSession } from './session-helpers.js'

const ACCOUNT = '+15550007201'
const CONTACT = '+15550007202'
const AFTER_MS = 1500

let emu
let paired
let session
let journal
before(async () => {
  emu = await startEmulator()
  paired = await pairedSession(emu, ACCOUNT, { prefix: 'wa-undecryptable-', env: { WA_UNDECRYPTABLE_AFTER_MS: String(AFTER_MS) } })
  ;({ session, journal } = paired)
})
after(async () => {
  await paired?.stop()
  await emu?.stop()
})

const write = async (text) => {
  const res = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: ACCOUNT, text })
  assert.equal(res.status, 200)
  return res.body.id
}
const events = (type) => journal.after(0).filter((e) => e.type === type)

test('a message no copy of which decrypts ends as one message.undecryptable event; the next is a message', async () => {
  await session.sendText(CONTACT, 'hello', 'UNDECRYPT00001') // a session both ways first
  await write('before')
  await until(() => events('message').some((e) => e.text === 'before'), 10000, 'the first message')
  assert.equal((await emu.api('POST', '/faults', { kind: 'garble', phone_number: CONTACT, messages: 1 })).status, 200)
  const bad = await write('garbled')
  const reported = await until(() => events('message.undecryptable').find((e) => e.id === bad), 30000, 'message.undecryptable')
  assert.equal(reported.from, CONTACT)
  assert.ok(reported.attempts >= 2, `the retries happened first (${reported.attempts} failed copies)`)
  assert.equal(typeof reported.error, 'string')
  const good = await write('after')
  await until(() => events('message').some((e) => e.id === good && e.text === 'after'), 10000, 'the next message')
  assert.equal(events('message').filter((e) => e.id === bad).length, 0)
  assert.equal(events('message.undecryptable').length, 1)
})

test('a message whose resend decrypts is a message, never undecryptable', async () => {
  // The contact's session rolled back: its next message fails once, its resend (on a rebuilt session) decrypts.
  const snap = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/session`, { action: 'snapshot', peer: ACCOUNT })
  assert.equal(snap.status, 200, JSON.stringify(snap.body))
  await session.sendText(CONTACT, 'move the ratchet', 'UNDECRYPT00002')
  await write('moves it too')
  await until(() => events('message').some((e) => e.text === 'moves it too'), 10000, 'a message on the new state')
  assert.equal((await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/session`, { action: 'rollback', peer: ACCOUNT })).status, 200)
  const healed = await write('healed by a retry')
  await until(() => events('message').some((e) => e.id === healed), 15000, 'the resent copy')
  await sleep(AFTER_MS + 500)
  assert.equal(events('message.undecryptable').filter((e) => e.id === healed).length, 0)
  assert.ok(session.undecryptable.stats.healed >= 1, 'its failed copy was seen, then healed')
})

test('the wait for readable copies is bounded: past maxWaiting the oldest is reported at once', async () => {
  const { UndecryptableMessages } = await import('../src/undecryptable.js')
  const reported = []
  const waiting = new UndecryptableMessages({ afterMs: 60000, maxWaiting: 3, report: (msg) => reported.push(msg.key.id) })
  const stub = (id) => ({ key: { remoteJid: '1@s.whatsapp.net', id }, messageStubParameters: ['Bad MAC'] })
  for (const id of ['A', 'B', 'C', 'D', 'E']) waiting.failed(stub(id))
  assert.deepEqual(reported, ['A', 'B'])
  assert.equal(waiting.waiting, 3)
  waiting.stop()
})
