// What Baileys learns of contacts becomes `contact.updated` events (issue 27): the worker's own session (src/session.js)
// paired against the emulator, with the real Baileys socket. The emulator has no app-state sync, where WhatsApp sends
// the phone's address book (contactAction: contacts.upsert) and LID <-> number pairs (lid-mapping.update), so those
// events are emitted on the real socket's own emitter as its app-state code emits them (Utils/sync-action-utils.js),
// and go through Baileys' event machinery (its buffer, ev.process) to the worker as they would.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, until } from './emulator-helpers.js'
import { pairedSession } from './session-helpers.js'

const ACCOUNT = '+15550008801'

let emu
let paired
let session
before(async () => {
  emu = await startEmulator()
  paired = await pairedSession(emu, ACCOUNT, { prefix: 'wa-contacts-' })
  session = paired.session
})
after(async () => {
  await paired?.stop()
  await emu?.stop()
})

const journaled = (type) => paired.journal.events.filter((e) => e.type === type)
const number = (i) => `+1555009${String(i).padStart(4, '0')}`
const pn = (i) => `${number(i).slice(1)}@s.whatsapp.net`
const lid = (i) => `${90000000 + i}@lid`

test('the address book (contacts.upsert, 450 contacts) is contact.updated events of at most 200, names and LIDs kept', async () => {
  const before = journaled('contact.updated').length
  const book = Array.from({ length: 450 }, (_, i) => ({ id: pn(i), name: `Friend ${i}`, lid: lid(i), phoneNumber: pn(i) }))
  book.push({ id: '120363000000000001@g.us', name: 'a group' }, { id: 'status@broadcast' }) // no contacts
  session.sock.ev.emit('contacts.upsert', book)
  const events = await until(() => { const e = journaled('contact.updated').slice(before); return e.length === 3 && e }, 10000, 'three events')
  assert.deepEqual(events.map((e) => e.contacts.length), [200, 200, 50])
  assert.ok(events.every((e) => e.source === 'contacts'))
  const all = events.flatMap((e) => e.contacts)
  assert.deepEqual(all[7], { phone_number: number(7), lid: lid(7), name: 'Friend 7' }) // no push_name key: unknown
  assert.deepEqual(all.map((c) => c.phone_number), Array.from({ length: 450 }, (_, i) => number(i)))
})

test('a LID <-> number pair (lid-mapping.update) is a contact.updated of source lid_mapping; a LID\'s push name then has its number', async () => {
  const before = journaled('contact.updated').length
  session.sock.ev.emit('lid-mapping.update', { lid: lid(900), pn: pn(900) })
  const [pair] = await until(() => { const e = journaled('contact.updated').slice(before); return e.length === 1 && e }, 10000, 'the pair')
  assert.deepEqual(pair.contacts, [{ phone_number: number(900), lid: lid(900) }])
  assert.equal(pair.source, 'lid_mapping')
  // Baileys stored it too (its own listener): the LID's push name, which names only the LID, is resolved to the number
  await until(async () => (await session.sock.signalRepository.lidMapping.getPNForLID(lid(900)))?.replace(/:0@/, '@') === pn(900), 5000, 'the mapping stored')
  session.sock.ev.emit('contacts.update', [{ id: lid(900), notify: 'Nine Hundred' }, { id: pn(901), imgUrl: 'changed' }])
  const [named] = await until(() => { const e = journaled('contact.updated').slice(before + 1); return e.length === 1 && e }, 10000, 'the push name')
  assert.deepEqual(named.contacts, [{ phone_number: number(900), lid: lid(900), push_name: 'Nine Hundred' }]) // the picture change: nothing
})

test('an append upsert the receipt hook never saw (history\'s kind of upsert) is no live message', async () => {
  const key = { remoteJid: pn(950), fromMe: false, id: 'HISTORYLIKE000001' }
  session.sock.ev.emit('messages.upsert', { type: 'append', messages: [{ key, message: { conversation: 'old' }, messageTimestamp: 1700000000 }] })
  session.sock.ev.emit('lid-mapping.update', { lid: lid(951), pn: pn(951) }) // a marker: handled after the upsert
  await until(() => journaled('contact.updated').some((e) => e.contacts[0].lid === lid(951)), 10000, 'the marker')
  assert.equal(journaled('message').filter((e) => e.id === key.id).length, 0)
})
