// session/outbound-content.js without a connection: the stanza attributes a stored protobuf is relayed with are
// the ones Baileys' own sendMessage adds for its kind (edit="1" for an edit, edit="7" for a revoke, a <meta
// polltype="creation"/> for a poll), read back from protobufs Baileys made; a reply's contextInfo names the quoted
// message and its sender (by LID when given); the checks keep what they take and say what they refuse.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateWAMessage, proto } from 'baileys'
import { baileysContent, describe, parseContent, quotedMessage, relayOptions } from '../src/session/outbound-content.js'

const JID = '15550000002@s.whatsapp.net'
const ME = '15550000001:3@s.whatsapp.net'
const onlyKnown = (names, known, where) => {
  for (const name of names) if (!known.includes(name)) throw Object.assign(new Error(`unknown ${where} ${name}`), { code: 'unknown_field' })
}
const secret = Buffer.alloc(32, 7).toString('base64')
// the protobuf Baileys makes for a checked content, as send.js makes it
const made = async (body) => {
  const content = parseContent(body, onlyKnown)
  const quoted = quotedMessage(content.quoted, JID)
  return (await generateWAMessage(JID, baileysContent(content, JID), { userJid: ME, messageId: 'ID1', quoted, logger: undefined })).message
}

test('relayed like Baileys\' sendMessage: edit="1" for an edit, edit="7" for a revoke, a poll meta node; nothing for the rest', async () => {
  const edit = await made({ edit: { key: { id: 'A1' }, text: 'new' } })
  assert.equal(edit.protocolMessage.type, proto.Message.ProtocolMessage.Type.MESSAGE_EDIT)
  assert.deepEqual(relayOptions(edit), { additionalAttributes: { edit: '1' } })
  const revoke = await made({ revoke: { key: { id: 'A1', from_me: true } } })
  assert.deepEqual(relayOptions(revoke), { additionalAttributes: { edit: '7' } })
  for (const selectable of [0, 1]) {
    const poll = await made({ poll: { name: 'Q', values: ['a', 'b'], selectable_count: selectable, secret } })
    assert.deepEqual(relayOptions(poll), { additionalNodes: [{ tag: 'meta', attrs: { polltype: 'creation' } }] })
    assert.equal(Buffer.from(poll.messageContextInfo.messageSecret).toString('base64'), secret)
  }
  for (const body of [{ text: 'hi' }, { reaction: { key: { id: 'A1', from_me: false }, emoji: '👍' } }, { location: { latitude: 1, longitude: 2 } }]) {
    assert.deepEqual(relayOptions(await made(body)), {}, JSON.stringify(body))
  }
})

test('a reply\'s contextInfo: the quoted id, its text, and its sender (us, the contact, or the contact\'s LID)', async () => {
  const ctx = async (quoted) => (await made({ text: 'reply', quoted })).extendedTextMessage.contextInfo
  const theirs = await ctx({ id: 'Q1', from_me: false, text: 'question', lid: null })
  assert.deepEqual([theirs.stanzaId, theirs.participant, theirs.quotedMessage.conversation, theirs.remoteJid], ['Q1', JID, 'question', undefined])
  const byLid = await ctx({ id: 'Q2', from_me: false, text: '', lid: '123456789@lid' })
  assert.equal(byLid.participant, '123456789@lid')
  const ours = await ctx({ id: 'Q3', from_me: true, text: 'mine', lid: null })
  assert.equal(ours.participant, '15550000001@s.whatsapp.net')
  const place = await made({ location: { latitude: 1, longitude: 2 }, quoted: { id: 'Q4', from_me: false, text: '', lid: null } })
  assert.equal(place.locationMessage.contextInfo.stanzaId, 'Q4')
})

test('the checks keep exactly what they take, and a log line sees kinds and sizes only', () => {
  const poll = parseContent({ poll: { name: 'Lunch?', values: ['a', 'b'], selectable_count: 0, secret } }, onlyKnown)
  assert.ok(Object.isFrozen(poll))
  assert.deepEqual(poll, { poll: { name: 'Lunch?', values: ['a', 'b'], selectable_count: 0, secret } })
  assert.deepEqual(parseContent({ read: { ids: ['A', 'B', 'A'] } }, onlyKnown), { read: { ids: ['A', 'B'] } })
  const said = JSON.stringify([
    describe(poll),
    describe(parseContent({ text: 'secret words', quoted: { id: 'Q', from_me: true, text: 'more words', lid: null } }, onlyKnown)),
    describe(parseContent({ reaction: { key: { id: 'A', from_me: true }, emoji: '🙈' } }, onlyKnown)),
    describe(parseContent({ contacts: { display_name: 'Bea', vcards: ['BEGIN:VCARD\nFN:Bea\nEND:VCARD'] } }, onlyKnown))
  ])
  for (const hidden of ['Lunch', secret, 'secret words', 'more words', '🙈', 'Bea', 'VCARD']) assert.ok(!said.includes(hidden), hidden)
  // lengths in characters as the gateway counts them (an emoji is one, two UTF-16 units)
  assert.equal(parseContent({ poll: { name: '🍕'.repeat(255), values: ['a', 'b'], selectable_count: 1, secret } }, onlyKnown).poll.name.length, 510)
  assert.throws(() => parseContent({ poll: { name: '🍕'.repeat(256), values: ['a', 'b'], selectable_count: 1, secret } }, onlyKnown), { code: 'invalid_message' })
  assert.equal(parseContent({ reaction: { key: { id: 'A', from_me: true }, emoji: '👍'.repeat(20) } }, onlyKnown).reaction.emoji.length, 40)
  assert.throws(() => parseContent({ text: 'x', quoted: { id: 'Q', from_me: true, text: '', lid: null, extra: 1 } }, onlyKnown), { code: 'unknown_field' })
  assert.throws(() => parseContent({ presence: { state: 'composing' }, quoted: { id: 'Q', from_me: true, text: '', lid: null } }, onlyKnown), { code: 'invalid_message' })
  assert.throws(() => parseContent({ read: { ids: Array.from({ length: 1001 }, (_, i) => `ID${i}`) } }, onlyKnown), { code: 'invalid_message' })
})
