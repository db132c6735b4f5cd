// "sent" means the server has it (src/server-acks.js): a send answers only on the server's ack. While the
// server takes nothing (a blackhole fault: frames go out and vanish), the send fails instead of claiming
// "sent"; sent again later with the same WhatsApp id, the contact gets it once. Real Baileys, emulator.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, until } from './emulator-helpers.js'
import { pairedSession } from './session-helpers.js'

const ACCOUNT = '+15550007101'
const CONTACT = '+15550007102'

let emu
let paired
let session
before(async () => {
  emu = await startEmulator()
  paired = await pairedSession(emu, ACCOUNT, {
    prefix: 'wa-ack-', env: { WA_SEND_ACK_TIMEOUT_MS: '1500', WA_LINK_PROBE_MS: '60000', WA_LINK_TIMEOUT_MS: '60000' }
  })
  session = paired.session
})
after(async () => {
  await paired?.stop()
  await emu?.stop()
})

const inbox = async () => (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body

test('a send answers "sent" only on the server ack; without one it fails and its retry arrives once', async () => {
  assert.deepEqual(await session.sendText(CONTACT, 'first', 'ACKTEST0000001'), { id: 'ACKTEST0000001', status: 'sent' })
  assert.equal((await emu.api('POST', '/faults', { kind: 'blackhole', seconds: 3, phone_number: ACCOUNT })).status, 200)
  await assert.rejects(session.sendText(CONTACT, 'lost in the hole', 'ACKTEST0000002'),
    (err) => err.code === 'whatsapp_timeout' && err.status === 504, 'no ack, no "sent"')
  const batch = await session.sendBatch([{ phone_number: CONTACT, text: 'batch in the hole', id: 'ACKTEST0000003' }])
  assert.equal(batch.results[0].error?.code, 'whatsapp_timeout')
  await until(async () => {
    try { return (await session.sendText(CONTACT, 'lost in the hole', 'ACKTEST0000002')).status === 'sent' } catch { return false }
  }, 20000, 'the retry acked after the blackhole')
  const got = await until(async () => {
    const m = await inbox()
    return m.some((x) => x.id === 'ACKTEST0000002') ? m : null
  }, 10000, 'the retried message at the contact')
  const copies = got.filter((m) => m.id === 'ACKTEST0000002')
  assert.equal(copies.length, 1)
  assert.equal(copies[0].text, 'lost in the hole')
})

test('a batch that repeats an id answers each message and rejects nothing unhandled (the worker lives on)', async () => {
  // The second relay of the same id supersedes the first one's wait while the batch is still relaying:
  // that rejection must reach the batch's answer, not the process (an unhandled rejection ends the worker).
  const unhandled = []
  const note = (err) => unhandled.push(err)
  process.on('unhandledRejection', note)
  try {
    const batch = await session.sendBatch([
      { phone_number: CONTACT, text: 'twice', id: 'ACKTEST0000010' },
      { phone_number: CONTACT, text: 'twice', id: 'ACKTEST0000010' },
      { phone_number: CONTACT, text: 'after', id: 'ACKTEST0000011' }
    ])
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(unhandled, [])
    assert.equal(batch.results.length, 3)
    assert.equal(batch.results[0].error?.code, 'superseded')
    assert.deepEqual(batch.results.slice(1).map((r) => r.status), ['sent', 'sent'])
  } finally {
    process.off('unhandledRejection', note)
  }
})
