// Patch 003 (commit before the frame): a worker process killed at the worst instant of a send, against
// the emulator's contact, which must then decrypt every later message, and whose messages the restarted
// worker must decrypt, without a single retry receipt to heal the conversation.
//
// The kill is exact: the worker runs in a child process (fixtures/crash-session.js) told to stop writing
// at the first session-store commit of a send (as if it died there) or to stop sending frames, and is
// SIGKILLed once the emulator has seen what it was going to see. Without the patch the stanza leaves
// before the Signal state it advanced is committed, and the restarted worker reuses a chain counter the
// contact consumed (its next message is unreadable there) or has lost a new session (the contact's reply
// cannot be decrypted).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { startEmulator, tmpDir, until, sleep } from './emulator-helpers.js'
import { SessionChildren } from './child-session.js'

const CHILD = fileURLToPath(new URL('./fixtures/crash-session.js', import.meta.url))
const ACCOUNT = '+15550006001'

let emu
let children
after(async () => {
  await children?.killAll()
  await emu?.stop()
})

const inbox = async (contact) => (await emu.api('GET', `/contacts/${encodeURIComponent(contact)}/messages`)).body
const fromContact = (contact, text) => emu.api('POST', `/contacts/${encodeURIComponent(contact)}/messages`, { to: ACCOUNT, text })
const sendAndWait = async (child, contact, id, text) => {
  child.send({ cmd: 'send', id, phone: contact, text })
  const r = await child.waitFor((e) => e.id === id && (e.event === 'sent' || e.event === 'send_failed'), `send ${id}`)
  assert.equal(r.event, 'sent', JSON.stringify(r))
}
const readableAt = (contact, ids) => until(async () => {
  const got = await inbox(contact)
  return ids.every((id) => got.some((m) => m.id === id)) ? got : null
}, 15000, `${ids.join(',')} at ${contact}`)

let dataDir
before(async () => {
  emu = await startEmulator()
  children = new SessionChildren(CHILD, emu)
  dataDir = tmpDir('wa-commit-frame-')
  await children.pair(dataDir, ACCOUNT)
})

/**
 * One kill: the worker sends `setup` messages (and reads the contact's), then sends `victim` with `freeze`
 * armed and is killed after `settleMs`; a new worker process on the same data dir resends the victim if
 * the contact never got it (as the gateway's outbox does: it was never acked), then both sides write.
 */
async function killDuringSend ({ contact, prefix, setup, freeze, whileDown }) {
  let child = children.start(dataDir)
  await child.waitFor((e) => e.event === 'connected', 'connected')
  for (let n = 0; n < setup; n++) {
    await sendAndWait(child, contact, `${prefix}S${n}`, `setup ${n}`)
    await fromContact(contact, `reply ${n}`)
  }
  if (setup) await readableAt(contact, [`${prefix}S${setup - 1}`])
  await until(() => child.events.filter((e) => e.event === 'inbound').length >= setup, 10000, 'the contact\'s replies')
  child.send({ cmd: 'send', id: `${prefix}V`, phone: contact, text: 'victim', freeze })
  await sleep(1500) // the frame leaves now or never
  await child.kill()
  const victimArrived = (await inbox(contact)).some((m) => m.id === `${prefix}V`)
  // A message from the contact while the worker is down is decrypted first at the next login: a new
  // ratchet step that would hide a reused counter, and the test of a session the worker must still have.
  if (whileDown) await fromContact(contact, 'while the worker was down')

  child = children.start(dataDir)
  await child.waitFor((e) => e.event === 'connected', 'connected again')
  if (!victimArrived) await sendAndWait(child, contact, `${prefix}V`, 'victim')
  const after = []
  for (let n = 0; n < 4; n++) {
    await sendAndWait(child, contact, `${prefix}A${n}`, `after ${n}`)
    after.push(`${prefix}A${n}`)
    await fromContact(contact, `later ${n}`)
  }
  const got = await readableAt(contact, [`${prefix}V`, ...after])
  const unreadable = got.filter((m) => m.id.startsWith(prefix) && m.text === null).map((m) => `${m.id} (${m.error})`)
  const retried = got.filter((m) => m.id.startsWith(prefix) && m.retries > 0).map((m) => `${m.id} (${m.retries} retries)`)
  const wanted = [...(whileDown ? ['while the worker was down'] : []), 'later 0', 'later 1', 'later 2', 'later 3']
  const inbound = () => wanted.filter((text) => child.events.some((e) => e.event === 'inbound' && e.text === text))
  await until(() => inbound().length >= wanted.length, 15000, 'the contact\'s messages after the restart').catch(() => {})
  const stats = (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === contact)
  await child.kill()
  return { unreadable, retried, inbound: inbound(), wanted, victimArrived, stats }
}

const check = (r) => {
  assert.deepEqual(r.unreadable, [], 'messages the contact could not decrypt after the restart')
  assert.deepEqual(r.retried, [], 'messages the contact decrypted only after retry receipts')
  assert.deepEqual(r.inbound, r.wanted, 'the contact\'s messages the restarted worker decrypted')
  // The emulator's contacts heal a broken session with retry receipts (as real clients do): none was needed.
  for (const key of ['retry_receipts_sent', 'retry_receipts_received', 'messages_resent']) {
    assert.equal(r.stats[key], 0, `${key}: the conversation needed healing`)
  }
}

test('killed between encrypt and send on an established session: nothing reused, nothing unreadable', async () => {
  const r = await killDuringSend({ contact: '+15550006011', prefix: 'CBFEST', setup: 3, freeze: 'store', whileDown: false })
  assert.equal(r.victimArrived, false, 'with the commit before the frame, a send whose commit never ends sends nothing')
  check(r)
})

test('killed between encrypt and send of a first message (a new session): the contact\'s reply still decrypts', async () => {
  const r = await killDuringSend({ contact: '+15550006012', prefix: 'CBFNEW', setup: 0, freeze: 'store', whileDown: true })
  assert.equal(r.victimArrived, false)
  check(r)
})

test('killed after the commit, before the frame left: the skipped counter is harmless', async () => {
  const r = await killDuringSend({ contact: '+15550006013', prefix: 'CBFFRM', setup: 2, freeze: 'frames', whileDown: false })
  assert.equal(r.victimArrived, false)
  check(r)
})
