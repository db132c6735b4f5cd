// The worker sends a conversation (issue 25, item 1): POST /send and /send/batch take a reply (`quoted`), a
// reaction, an edit, a revoke, a location, contact cards, a poll (the gateway's secret as its messageSecret), a
// read receipt and a chat presence, each as the contract's "Gateway -> worker" section says. The real worker
// process (src/main.js, the real Baileys) against the emulator: what the contact's phone shows is checked
// (GET /contacts/{phone}/messages, receipts-received, presence), not what the worker says it did.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { startEmulator, inbox, inboxEntry, tmpDir, until } from './emulator-helpers.js'
import { linkWorker, startWorker } from './worker-process.js'
import fs from 'node:fs'
import path from 'node:path'

const ACCOUNT = '+15550007601'
const CONTACT = '+15550007602'

let emu
let worker
let stateFile
let mediaDir
let n = 0
const nextId = (tag) => `CONV${tag}${String(++n).padStart(4, '0')}${randomBytes(4).toString('hex').toUpperCase()}`

before(async () => {
  const dir = tmpDir('wa-conv-send-emu-')
  // the state file shows what the contact's phone keeps of a poll: its secret, never shown by the control API
  stateFile = path.join(dir, 'state.json')
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: dir, WA_EMULATOR_STATE_FILE: stateFile, WA_EMULATOR_RECEIPT_DELAY_MS: '20', WA_EMULATOR_LOG_LEVEL: 'debug' } })
  // a short ack timeout: the resend test makes one send go unanswered (a black hole)
  const media = (await emu.api('GET', '/media')).body
  mediaDir = tmpDir('wa-conv-send-media-')
  worker = startWorker(emu, { WA_SEND_ACK_TIMEOUT_MS: '1500', WA_SANDBOX_MEDIA_CA: media.ca_file, WA_MEDIA_DIR: mediaDir })
  await linkWorker(worker, emu, ACCOUNT)
})

after(async () => {
  await worker?.stop()
  await emu?.stop()
})

// a send of `content` to the contact under a fresh id; asserts it was sent and answers the id
async function send (tag, content) {
  const id = nextId(tag)
  const r = await worker.call('POST', '/send', { phone_number: CONTACT, id, ...content })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body, { id, status: 'sent' })
  return id
}
const entry = (id, accept) => inboxEntry(emu, CONTACT, id, accept)
// the contact writes to the account; resolves with the WhatsApp id once the worker has it
async function contactWrites (text) {
  const sent = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  await until(async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events.some((e) => e.type === 'message' && e.id === sent.body.id),
    10000, `the message event of ${sent.body.id}`)
  return sent.body.id
}
const secret = () => randomBytes(32).toString('base64')
// a file in the gateway's media store (service/media/store.py: <sha256[:2]>/<sha256[2:]>), named by its sha256
const stored = (bytes) => {
  const sha = createHash('sha256').update(bytes).digest('hex')
  fs.mkdirSync(path.join(mediaDir, sha.slice(0, 2)), { recursive: true })
  fs.writeFileSync(path.join(mediaDir, sha.slice(0, 2), sha.slice(2)), bytes)
  return sha
}

// the poll secret the contact's phone received with poll `id` (the emulator's saved state)
const receivedSecret = (id) => until(() => {
  if (!fs.existsSync(stateFile)) return undefined
  const users = JSON.parse(fs.readFileSync(stateFile, 'utf8')).users
  const contact = users.find((u) => `+${u.phone}` === CONTACT)
  return contact?.inbox.find((e) => e.id === id)?.poll_secret
}, 5000, `the saved poll ${id}`)

test('a poll: the contact sees its question and options, single or multiple choice, with the gateway\'s secret', async () => {
  const key = secret()
  const single = await send('POLL', { poll: { name: 'Lunch?', values: ['pizza', 'sushi'], selectable_count: 1, secret: key } })
  assert.deepEqual((await entry(single)).poll, { question: 'Lunch?', options: ['pizza', 'sushi'], multiple: false, votes: {} })
  // the votes are encrypted with the poll's messageSecret: it must be the one the gateway keeps
  assert.equal(await receivedSecret(single), key)
  const multi = await send('POLL', { poll: { name: 'Days?', values: ['mon', 'tue', 'wed'], selectable_count: 0, secret: secret() } })
  assert.deepEqual((await entry(multi)).poll, { question: 'Days?', options: ['mon', 'tue', 'wed'], multiple: true, votes: {} })
  // the contact can vote on it (its phone knows the poll)
  const vote = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, poll_vote: { id: single, options: ['sushi'] } })
  assert.equal(vote.status, 200, JSON.stringify(vote.body))
})

test('a reply quotes the contact\'s message or ours, as a text, a location or media', async () => {
  const theirs = await contactWrites('shall we meet?')
  const reply = await send('REPLY', { text: 'yes, at 5', quoted: { id: theirs, from_me: false, text: 'shall we meet?', lid: null } })
  const got = await entry(reply)
  assert.equal(got.text, 'yes, at 5')
  assert.equal(got.quoted_id, theirs)
  const ours = await send('TEXT', { text: 'the plan' })
  const onOurs = await send('REPLY', { location: { latitude: 52.52, longitude: 13.405 }, quoted: { id: ours, from_me: true, text: 'the plan', lid: null } })
  assert.equal((await entry(onOurs)).quoted_id, ours)
  const doc = await send('REPLY', { media: { kind: 'document', sha256: stored(randomBytes(300)), mimetype: 'application/octet-stream', filename: 'a.bin' }, quoted: { id: theirs, from_me: false, text: '', lid: null } })
  assert.equal((await entry(doc)).quoted_id, theirs)
  const plain = await send('TEXT', { text: 'no quote' })
  assert.equal((await entry(plain)).quoted_id, null)
})

test('a reaction lands on the message it names, the contact\'s or ours, and "" removes it', async () => {
  const ours = await send('TEXT', { text: 'react to this' })
  await entry(ours)
  await send('REACT', { reaction: { key: { id: ours, from_me: true }, emoji: '👍' } })
  await entry(ours, (e) => e.reactions[ACCOUNT] === '👍')
  const theirs = await contactWrites('and to mine')
  await send('REACT', { reaction: { key: { id: theirs, from_me: false }, emoji: '❤️' } })
  // the contact's own message: what its phone shows of it is in its sent messages
  await until(async () => (await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.find((e) => e.id === theirs)?.reactions[ACCOUNT] === '❤️', 5000, 'the reaction on the contact\'s message')
  await send('REACT', { reaction: { key: { id: ours, from_me: true }, emoji: '' } })
  await entry(ours, (e) => !(ACCOUNT in e.reactions))
})

test('an edit replaces our text at the contact; a revoke marks our message revoked', async () => {
  const ours = await send('TEXT', { text: 'see you at 5' })
  await entry(ours)
  const edit = await send('EDIT', { edit: { key: { id: ours }, text: 'see you at 6' } })
  const edited = await entry(ours, (e) => e.text === 'see you at 6')
  assert.deepEqual(edited.edits, ['see you at 5', 'see you at 6'])
  assert.equal((await entry(edit)).action.applied, true)
  const revoke = await send('REVOKE', { revoke: { key: { id: ours, from_me: true } } })
  await entry(ours, (e) => e.revoked === true)
  assert.equal((await entry(revoke)).action.applied, true)
})

test('a location and contact cards arrive as the contact\'s phone shows them', async () => {
  const place = await send('LOC', { location: { latitude: 38.7223, longitude: -9.1393, name: 'Rossio', address: 'Lisboa' } })
  assert.deepEqual((await entry(place)).location, { latitude: 38.7223, longitude: -9.1393, name: 'Rossio', address: 'Lisboa' })
  const card = (name, phone) => `BEGIN:VCARD\nVERSION:3.0\nFN:${name}\nTEL;type=CELL;waid=${phone}:+${phone}\nEND:VCARD`
  const one = await send('CARD', { contacts: { display_name: 'Bea', vcards: [card('Bea', '15550007699')] } })
  const got = await entry(one)
  assert.deepEqual(got.contacts, [{ name: 'Bea', vcard: card('Bea', '15550007699') }])
  const two = await send('CARD', { contacts: { display_name: '2 contacts', vcards: [card('Bea', '15550007699'), card('Caio', '15550007698')] } })
  const gotTwo = await entry(two)
  assert.deepEqual(gotTwo.contacts.map((c) => c.name), ['Bea', 'Caio'])
  assert.deepEqual(gotTwo.vcards, [card('Bea', '15550007699'), card('Caio', '15550007698')])
})

test('read: the contact gets a read receipt for every id; presence: it sees us typing, recording, paused', async () => {
  const a = await contactWrites('one')
  const b = await contactWrites('two')
  await send('READ', { read: { ids: [a, b] } })
  const receipts = await until(async () => {
    const got = (await emu.api('GET', `/contacts/${CONTACT}/receipts-received`)).body.filter((r) => r.type === 'read' && r.from === ACCOUNT)
    return [a, b].every((id) => got.some((r) => r.id === id)) && got
  }, 5000, 'the read receipts')
  assert.ok(receipts)
  const presence = async () => (await emu.api('GET', `/contacts/${CONTACT}/presence`)).body.find((p) => p.from === ACCOUNT)
  for (const state of ['composing', 'recording', 'paused']) {
    await send('PRES', { presence: { state } })
    await until(async () => (await presence())?.chat_state === state, 5000, `presence ${state}`)
  }
  // availability needs the account's push name, which the emulator's phone never gives (no app state sync)
  const online = await worker.call('POST', '/send', { phone_number: CONTACT, id: nextId('PRES'), presence: { state: 'available' } })
  assert.equal(online.status, 422, JSON.stringify(online.body))
  assert.equal(online.body.error.code, 'invalid_message')
})

test('a resend of an edit\'s id goes out with its first content, never a second one', async () => {
  const ours = await send('TEXT', { text: 'version 1' })
  await entry(ours)
  const id = nextId('EDIT')
  // the first try reaches no one: the account's connection is a black hole for a moment, the ack never comes
  assert.equal((await emu.api('POST', '/faults', { kind: 'blackhole', seconds: 2.5, phone_number: ACCOUNT })).status, 200)
  const first = await worker.call('POST', '/send', { phone_number: CONTACT, id, edit: { key: { id: ours }, text: 'version 2' } })
  assert.equal(first.status, 504, JSON.stringify(first.body))
  await until(async () => !(await emu.api('GET', '/')).body.blackholes?.length, 5000, 'the black hole ends')
  // the gateway sends the same id again (after a crash, say), even with another text: the stored edit goes
  const again = await worker.call('POST', '/send', { phone_number: CONTACT, id, edit: { key: { id: ours }, text: 'version 3' } })
  assert.equal(again.status, 200, JSON.stringify(again.body))
  const got = await entry(ours, (e) => e.edits.length > 1)
  assert.deepEqual(got.edits, ['version 1', 'version 2'])
  assert.equal(got.text, 'version 2')
})

test('a batch may mix messages and chat actions; they leave in its order, and a refused presence fails alone', async () => {
  const text = nextId('BTXT')
  const pres = nextId('BPRS')
  const react = nextId('BRCT')
  const r = await worker.call('POST', '/send/batch', {
    messages: [
      { phone_number: CONTACT, id: text, text: 'batch text' },
      { phone_number: CONTACT, id: pres, presence: { state: 'composing' } },
      { phone_number: CONTACT, id: react, reaction: { key: { id: text, from_me: true }, emoji: '🎉' } }
    ]
  })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body.results, [{ id: text, status: 'sent' }, { id: pres, status: 'sent' }, { id: react, status: 'sent' }])
  // the reaction came after its message (else the contact's phone refuses it as on an unknown message)
  await entry(text, (e) => e.reactions[ACCOUNT] === '🎉')
  assert.equal((await entry(react)).action.applied, true)
  // on the wire too: the emulator (debug log) took the text, then the chat state, then the reaction
  const at = (pred) => emu.lines.findIndex(pred)
  const textAt = at((l) => l.event === 'message.delivered_to_phone' && l.id === text)
  const reactAt = at((l) => l.event === 'message.delivered_to_phone' && l.id === react)
  const typingAt = emu.lines.findLastIndex((l, i) => i < reactAt && l.event === 'chatstate.received' && l.state === 'composing')
  assert.ok(textAt >= 0 && textAt < typingAt && typingAt < reactAt, JSON.stringify({ textAt, typingAt, reactAt }))
  // a presence WhatsApp cannot take (availability without a push name) fails alone: the text after it still goes
  const online = nextId('BPRS')
  const after = nextId('BTXT')
  const mixed = await worker.call('POST', '/send/batch', {
    messages: [{ phone_number: CONTACT, id: online, presence: { state: 'unavailable' } }, { phone_number: CONTACT, id: after, text: 'after it' }]
  })
  assert.equal(mixed.status, 200, JSON.stringify(mixed.body))
  assert.equal(mixed.body.results[0].error.code, 'invalid_message')
  assert.deepEqual(mixed.body.results[1], { id: after, status: 'sent' })
  await entry(after)
})

test('bad contents are 400 and nothing is sent', async () => {
  const before = (await inbox(emu, CONTACT)).length
  const key = secret()
  const bad = [
    [{ text: 'a', poll: { name: 'q', values: ['a', 'b'], selectable_count: 1, secret: key } }, 'invalid_message'],
    [{}, 'invalid_message'],
    [{ poll: { name: 'q', values: ['only'], selectable_count: 1, secret: key } }, 'invalid_message'],
    [{ poll: { name: 'q', values: Array.from({ length: 13 }, (_, i) => `o${i}`), selectable_count: 0, secret: key } }, 'invalid_message'],
    [{ poll: { name: 'q', values: ['a', 'a'], selectable_count: 1, secret: key } }, 'invalid_message'],
    [{ poll: { name: 'q', values: ['a', 'b'], selectable_count: 2, secret: key } }, 'invalid_message'],
    [{ poll: { name: 'q', values: ['a', 'b'], selectable_count: 1, secret: 'c2hvcnQ=' } }, 'invalid_message'],
    [{ poll: { name: 'q', values: ['a', 'b'], selectable_count: 1, secret: key, extra: 1 } }, 'unknown_field'],
    [{ reaction: { key: { id: 'ABC', from_me: 'yes' }, emoji: '👍' } }, 'invalid_message'],
    [{ reaction: { key: { id: 'ABC', from_me: true }, emoji: 42 } }, 'invalid_message'],
    [{ reaction: { key: { id: 'ABC', from_me: true }, emoji: '👍' }, quoted: { id: 'X', from_me: true, text: '', lid: null } }, 'invalid_message'],
    [{ edit: { key: { id: 'ABC' }, text: '  ' } }, 'invalid_message'],
    [{ edit: { key: { id: 'ABC', from_me: true }, text: 'x' } }, 'unknown_field'],
    [{ revoke: { key: { id: 'ABC', from_me: false } } }, 'invalid_message'],
    [{ location: { latitude: 91, longitude: 0 } }, 'invalid_message'],
    [{ location: { latitude: 0, longitude: '10' } }, 'invalid_message'],
    [{ contacts: { display_name: 'A', vcards: [] } }, 'invalid_message'],
    [{ contacts: { display_name: 'A', vcards: ['not a card'] } }, 'invalid_message'],
    [{ read: { ids: [] } }, 'invalid_message'],
    [{ read: { ids: ['has space'] } }, 'invalid_message'],
    [{ presence: { state: 'typing' } }, 'invalid_message'],
    [{ text: 'hi', quoted: { id: 'X', from_me: false, text: 'q', lid: 'not-a-lid' } }, 'invalid_message'],
    [{ text: 'hi', quoted: { id: 'X', from_me: false } }, 'invalid_message']
  ]
  for (const [content, code] of bad) {
    const r = await worker.call('POST', '/send', { phone_number: CONTACT, id: nextId('BAD'), ...content })
    assert.equal(r.status, 400, `${JSON.stringify(content)}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, code, JSON.stringify(content))
  }
  // in a batch, one bad item refuses the whole batch before anything leaves
  const batch = await worker.call('POST', '/send/batch', {
    messages: [{ phone_number: CONTACT, id: nextId('BAD'), text: 'fine' }, { phone_number: CONTACT, id: nextId('BAD'), presence: { state: 'shouting' } }]
  })
  assert.equal(batch.status, 400, JSON.stringify(batch.body))
  assert.equal((await inbox(emu, CONTACT)).length, before)
})
