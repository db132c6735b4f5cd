// The worker receives a conversation (issue 25, item 2): a contact's reply carries the WhatsApp id of the
// message it quotes, a location, contact cards and a poll become `message` events of their kind with their
// fields, and a message type the gateway does not know is an `unsupported` message with its raw type name,
// never dropped. The real worker process (src/main.js, the real Baileys) against the emulator's contacts.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { linkWorker, startWorker } from './worker-process.js'
const ACCOUNT = '+15550007501'
const CONTACT = '+15550007502'

let emu
let worker

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-conv-emu-') } })
  worker = startWorker(emu, {})
  await linkWorker(worker, emu, ACCOUNT)
})

after(async () => {
  await worker?.stop()
  await emu?.stop()
})

const events = async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events
// the contact does `body` (the emulator's POST /contacts/{phone}/messages); resolves with the worker's message event
async function contactSends (body) {
  const sent = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, ...body })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  return until(async () => (await events()).find((e) => e.type === 'message' && e.id === sent.body.id), 10000, `the message event of ${sent.body.id}`)
}

test('a reply carries the WhatsApp id of the message it quotes; a plain text carries null', async () => {
  const first = await contactSends({ text: 'first' })
  assert.equal(first.quoted_id, null)
  assert.equal(first.kind, 'text')
  const reply = await contactSends({ text: 'about that', reply_to: first.id })
  assert.equal(reply.kind, 'text')
  assert.equal(reply.text, 'about that')
  assert.equal(reply.quoted_id, first.id)
  assert.equal(reply.from, CONTACT)
})

test('a location is a message of kind location with its coordinates, name and address', async () => {
  const e = await contactSends({ location: { latitude: 38.7223, longitude: -9.1393, name: 'Rossio', address: 'Praça D. Pedro IV, Lisboa' } })
  assert.equal(e.kind, 'location')
  assert.deepEqual(e.location, { latitude: 38.7223, longitude: -9.1393, name: 'Rossio', address: 'Praça D. Pedro IV, Lisboa' })
  assert.equal(e.text, null)
})

test('contact cards, one or several, are a message of kind contacts with each name and vCard', async () => {
  const one = await contactSends({ contacts: [{ name: 'Bea', phone_number: '+15550007599' }] })
  assert.equal(one.kind, 'contacts')
  assert.equal(one.contacts.length, 1)
  assert.equal(one.contacts[0].name, 'Bea')
  assert.match(one.contacts[0].vcard, /^BEGIN:VCARD[\s\S]*waid=15550007599[\s\S]*END:VCARD$/)
  const two = await contactSends({ contacts: [{ name: 'Bea', phone_number: '+15550007599' }, { name: 'Caio', phone_number: '+15550007598' }] })
  assert.deepEqual(two.contacts.map((c) => c.name), ['Bea', 'Caio'])
  assert.match(two.contacts[1].vcard, /waid=15550007598/)
})

test('a poll, single or multiple choice, is a message of kind poll with its question and options', async () => {
  const single = await contactSends({ poll: { question: 'Tea?', options: ['yes', 'no'] } })
  assert.equal(single.kind, 'poll')
  assert.deepEqual(single.poll, { question: 'Tea?', options: ['yes', 'no'], multiple: false })
  const multi = await contactSends({ poll: { question: 'Which days?', options: ['mon', 'tue', 'wed'], multiple: true } })
  assert.deepEqual(multi.poll, { question: 'Which days?', options: ['mon', 'tue', 'wed'], multiple: true })
})

test('a message type the gateway does not know is delivered as unsupported with its raw type name', async () => {
  const e = await contactSends({ raw: { interactiveMessage: { body: { text: 'pick one' } } } })
  assert.equal(e.kind, 'unsupported')
  assert.equal(e.raw_type, 'interactiveMessage')
  assert.equal(e.from, CONTACT)
  const text = await contactSends({ text: 'plain' })
  assert.equal(text.raw_type, undefined, 'only an unsupported message names its raw type')
})

// the contact acts on a message (reaction, edit, revoke): resolves with the worker's event of `type` for it
async function contactActs (type, body) {
  const sent = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, ...body })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  return until(async () => (await events()).find((e) => e.type === type && e.id === sent.body.id), 10000, `the ${type} event of ${sent.body.id}`)
}

test('a reaction is a message.reaction naming the message it is on (the contact\'s or ours), "" when removed, never a message', async () => {
  const theirs = await contactSends({ text: 'react to me' })
  const on = await contactActs('message.reaction', { reaction: { id: theirs.id, emoji: '👍' } })
  assert.deepEqual([on.target_id, on.target_direction, on.emoji, on.from, on.from_jid], [theirs.id, 'in', '👍', CONTACT, theirs.from_jid])
  const ours = await worker.call('POST', '/send', { phone_number: CONTACT, text: 'our question', id: 'OURREACT0001' })
  assert.equal(ours.status, 200, JSON.stringify(ours.body))
  const onOurs = await contactActs('message.reaction', { reaction: { id: 'OURREACT0001', emoji: '❤️' } })
  assert.deepEqual([onOurs.target_id, onOurs.target_direction, onOurs.emoji], ['OURREACT0001', 'out', '❤️'])
  const off = await contactActs('message.reaction', { reaction: { id: theirs.id, emoji: '' } })
  assert.equal(off.emoji, '')
  const all = await events()
  assert.ok(!all.some((e) => e.type === 'message' && [on.id, onOurs.id, off.id].includes(e.id)), 'a reaction is no message')
})

test('an edit is a message.edited with the new text and the id of the message it changes; a revoke a message.revoked', async () => {
  const original = await contactSends({ text: 'see you at 5' })
  const edited = await contactActs('message.edited', { edit: { id: original.id, text: 'see you at 6' } })
  assert.deepEqual([edited.target_id, edited.target_direction, edited.text, edited.from], [original.id, 'in', 'see you at 6', CONTACT])
  const revoked = await contactActs('message.revoked', { revoke: { id: original.id } })
  assert.deepEqual([revoked.target_id, revoked.target_direction, revoked.from], [original.id, 'in', CONTACT])
  const all = await events()
  assert.ok(!all.some((e) => e.type === 'message' && [edited.id, revoked.id].includes(e.id)), 'no message for either')
  assert.equal(all.filter((e) => e.type === 'message.edited' && e.id === edited.id).length, 1, 'journaled once (receipt hook and upsert)')
})

test('a contact typing, recording or going away is a presence event with its state and identity', async () => {
  // Baileys reports paused as available (handlePresenceUpdate)
  for (const [state, seen] of [['composing', 'composing'], ['recording', 'recording'], ['paused', 'available'], ['unavailable', 'unavailable']]) {
    const from = (await events()).length
    const r = await emu.api('POST', `/contacts/${CONTACT}/presence`, { to: ACCOUNT, state })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const e = await until(async () => (await events()).slice(from).find((x) => x.type === 'presence'), 5000, `presence ${state}`)
    assert.deepEqual([e.state, e.from, e.from_jid], [seen, CONTACT, '15550007502@s.whatsapp.net'])
  }
})
