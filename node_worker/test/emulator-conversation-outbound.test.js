// The emulator's conversation primitives, what a contact's phone RECEIVES from the real Baileys client:
// replies (quoted id), reactions, edits (and the edit window), revokes (only one's own), locations,
// contact cards, polls, read receipts and chat presence, each as the contact's inbox shows it.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { proto } from 'baileys'
import { startEmulator, trustEmulator, pairDevice, inboxEntry, inbox, until, sleep } from './emulator-helpers.js'

const ACCOUNT = '+15550008111'
const CONTACT = '+15550008222'
const CONTACT_JID = '15550008222@s.whatsapp.net'
const EDIT_WINDOW_S = 3 // WA_EMULATOR_EDIT_WINDOW_SECONDS: short, so that the expiry is testable

describe('a contact receives conversation actions from the real Baileys client', () => {
  let emu
  let client
  const upserted = (id) => client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id), 10000, `upsert ${id}`)
  const fromContact = async (text) => {
    const r = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return upserted(r.body.id)
  }
  const send = (content, options) => client.sock.sendMessage(CONTACT_JID, content, options)
  const entry = (id, accept) => inboxEntry(emu, CONTACT, id, accept)
  const sentEntry = async (id, accept = () => true) => until(async () => (await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.find((e) => e.id === id && accept(e)), 5000, `sent entry ${id}`)

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20', WA_EMULATOR_EDIT_WINDOW_SECONDS: String(EDIT_WINDOW_S) } })
    trustEmulator(emu)
    client = (await pairDevice(emu, ACCOUNT, { settle: true })).client
  })

  after(async () => {
    await client?.end()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('a reply to the contact\'s message and to the account\'s own: quoted_id names each', async () => {
    const theirs = await fromContact('question?')
    const reply = await send({ text: 'answer' }, { quoted: theirs })
    const got = await entry(reply.key.id)
    assert.equal(got.text, 'answer')
    assert.equal(got.quoted_id, theirs.key.id)
    const own = await send({ text: 'first' })
    const second = await send({ text: 'and more' }, { quoted: own })
    assert.equal((await entry(second.key.id)).quoted_id, own.key.id)
    assert.equal((await entry(own.key.id)).quoted_id, null, 'a plain message quotes nothing')
  })

  test('reactions: on the account\'s message and on the contact\'s, replaced, and removed by ""', async () => {
    const own = await send({ text: 'react to me' })
    await entry(own.key.id)
    const r1 = await send({ react: { text: '👍', key: own.key } })
    assert.deepEqual((await entry(own.key.id, (e) => e.reactions[ACCOUNT])).reactions, { [ACCOUNT]: '👍' })
    assert.deepEqual((await entry(r1.key.id)).action, { type: 'reaction', target_id: own.key.id, emoji: '👍', applied: true, refused: null })
    await send({ react: { text: '❤️', key: own.key } })
    assert.deepEqual((await entry(own.key.id, (e) => e.reactions[ACCOUNT] === '❤️')).reactions, { [ACCOUNT]: '❤️' })
    await send({ react: { text: '', key: own.key } })
    assert.deepEqual((await entry(own.key.id, (e) => !e.reactions[ACCOUNT])).reactions, {})
    const theirs = await fromContact('nice?')
    await send({ react: { text: '🎉', key: theirs.key } })
    assert.deepEqual((await sentEntry(theirs.key.id, (e) => e.reactions[ACCOUNT])).reactions, { [ACCOUNT]: '🎉' })
  })

  test('an edit within the window replaces the text and keeps the history; an edit of the contact\'s message is refused', async () => {
    const own = await send({ text: 'teh first' })
    await entry(own.key.id)
    await send({ text: 'the first', edit: own.key })
    const edited = await entry(own.key.id, (e) => e.edits.length)
    assert.equal(edited.text, 'the first')
    assert.deepEqual(edited.edits, ['teh first', 'the first'])
    await send({ text: 'the first!', edit: own.key })
    assert.deepEqual((await entry(own.key.id, (e) => e.edits.length === 3)).edits, ['teh first', 'the first', 'the first!'])
    const theirs = await fromContact('mine')
    const forged = await send({ text: 'not yours', edit: { ...theirs.key, fromMe: true } })
    assert.deepEqual((await entry(forged.key.id)).action, { type: 'edit', target_id: theirs.key.id, applied: false, refused: 'unknown_message' })
    const other = await send({ text: 'not yours', edit: theirs.key })
    assert.equal((await entry(other.key.id)).action.refused, 'not_own_message')
    assert.equal((await sentEntry(theirs.key.id)).text, 'mine', 'the contact\'s message is unchanged')
  })

  test('an edit sent again under the same id (a retry after a crash) is a duplicate: never applied twice', async () => {
    const own = { ...(await send({ text: 'draft' })).key }
    await entry(own.id)
    const edit = (text) => ({ protocolMessage: { key: own, type: proto.Message.ProtocolMessage.Type.MESSAGE_EDIT, editedMessage: { conversation: text }, timestampMs: Date.now() } })
    const editId = await client.sock.relayMessage(CONTACT_JID, edit('final'), {})
    await entry(own.id, (e) => e.text === 'final')
    await client.sock.relayMessage(CONTACT_JID, edit('other words'), { messageId: editId })
    const dup = await entry(editId, (e) => e.duplicate_count === 1)
    assert.equal(dup.action.applied, true)
    const after = await entry(own.id)
    assert.deepEqual([after.text, after.edits], ['final', ['draft', 'final']])
  })

  test('an edit past WhatsApp\'s edit window is refused and the text stays', async () => {
    const own = await send({ text: 'old words' })
    const first = await entry(own.key.id)
    await sleep((EDIT_WINDOW_S + 1) * 1000 - (Date.now() - first.timestamp * 1000) + 50)
    const late = await send({ text: 'new words', edit: own.key })
    assert.deepEqual((await entry(late.key.id)).action, { type: 'edit', target_id: own.key.id, applied: false, refused: 'edit_window_expired' })
    const after = await entry(own.key.id)
    assert.equal(after.text, 'old words')
    assert.deepEqual(after.edits, [])
  })

  test('a revoke of the account\'s own message marks it revoked; of the contact\'s message it is refused', async () => {
    // Baileys' own revoke event replaces the key of the message object it returned: keep a copy
    const own = { ...(await send({ text: 'oops' })).key }
    await entry(own.id)
    const rev = await send({ delete: own })
    assert.equal((await entry(own.id, (e) => e.revoked)).revoked, true)
    assert.deepEqual((await entry(rev.key.id)).action, { type: 'revoke', target_id: own.id, applied: true, refused: null })
    const theirs = await fromContact('keep this')
    const bad = await send({ delete: theirs.key })
    assert.equal((await entry(bad.key.id)).action.refused, 'not_own_message')
    assert.equal((await sentEntry(theirs.key.id)).revoked, false)
  })

  test('a location, one contact card and several: as the phone shows them', async () => {
    const loc = await send({ location: { degreesLatitude: 52.52, degreesLongitude: 13.405, name: 'Alexanderplatz', address: 'Berlin' } })
    assert.deepEqual((await entry(loc.key.id)).location, { latitude: 52.52, longitude: 13.405, name: 'Alexanderplatz', address: 'Berlin' })
    const vcard = (n, p) => `BEGIN:VCARD\nVERSION:3.0\nFN:${n}\nTEL;type=CELL;waid=${p}:+${p}\nEND:VCARD`
    const one = await send({ contacts: { displayName: 'Ann', contacts: [{ displayName: 'Ann', vcard: vcard('Ann', '15550001') }] } })
    const got = await entry(one.key.id)
    assert.equal(got.kind, 'contactMessage')
    assert.deepEqual(got.contacts, [{ name: 'Ann', vcard: vcard('Ann', '15550001') }])
    assert.deepEqual(got.vcards, [vcard('Ann', '15550001')])
    const two = await send({ contacts: { displayName: '2 contacts', contacts: [{ displayName: 'Ann', vcard: vcard('Ann', '1') }, { displayName: 'Bob', vcard: vcard('Bob', '2') }] } })
    assert.deepEqual((await entry(two.key.id)).contacts.map((c) => c.name), ['Ann', 'Bob'])
  })

  test('polls: single choice (V3) and multiple choice', async () => {
    const single = await send({ poll: { name: 'Lunch?', values: ['pizza', 'sushi'], selectableCount: 1 } })
    const s = await entry(single.key.id)
    assert.equal(s.kind, 'pollCreationMessageV3')
    assert.deepEqual(s.poll, { question: 'Lunch?', options: ['pizza', 'sushi'], multiple: false, votes: {} })
    assert.equal(s.poll_secret, undefined, 'the secret is not shown')
    const multi = await send({ poll: { name: 'Days?', values: ['mon', 'tue', 'wed'], selectableCount: 0 } })
    assert.deepEqual((await entry(multi.key.id)).poll, { question: 'Days?', options: ['mon', 'tue', 'wed'], multiple: true, votes: {} })
  })

  test('readMessages: the contact sees the read receipt for its message', async () => {
    const theirs = await fromContact('did you read this?')
    await client.sock.readMessages([theirs.key])
    const receipts = await until(async () => {
      const r = (await emu.api('GET', `/contacts/${CONTACT}/receipts-received`)).body.filter((x) => x.id === theirs.key.id && x.type === 'read')
      return r.length && r
    }, 5000, 'the read receipt')
    assert.equal(receipts[0].from, ACCOUNT)
  })

  test('sendPresenceUpdate: composing, recording, paused in the chat; available and unavailable', async () => {
    const presence = async (state) => until(async () => {
      const p = (await emu.api('GET', `/contacts/${CONTACT}/presence`)).body.find((x) => x.from === ACCOUNT)
      return p?.state === state && p
    }, 5000, `presence ${state}`)
    for (const state of ['composing', 'recording', 'paused']) {
      await client.sock.sendPresenceUpdate(state, CONTACT_JID)
      assert.equal((await presence(state)).chat_state, state)
    }
    client.sock.authState.creds.me.name = client.sock.authState.creds.me.name || 'Gateway' // Baileys sends availability only with a name
    await client.sock.sendPresenceUpdate('unavailable')
    assert.equal((await presence('unavailable')).availability, 'unavailable')
    await client.sock.sendPresenceUpdate('available')
    await presence('available')
    await client.sock.sendPresenceUpdate('composing', CONTACT_JID)
    await presence('composing')
    assert.deepEqual((await emu.api('GET', '/contacts/+15550008999/presence')).body, [], 'nothing sent to a stranger')
    assert.ok((await inbox(emu, CONTACT)).length > 0)
  })
})
