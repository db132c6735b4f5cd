// What a group send carries (issue 26), through the real Baileys' generateWAMessage (the protobuf a member gets):
// mentions as contextInfo.mentionedJid, a reply's and a reaction's sender of a group message, the contents a group
// cannot take; group ids as the API takes them; the bounded metadata cache relayMessage reads.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateWAMessage } from 'baileys'
import { assertGroupContent, baileysContent, mentionsOf, parseContent, quotedMessage } from '../src/session/outbound-content.js'
import { GroupMetadataCache, isGroupId } from '../src/session/group-metadata.js'

const GROUP = '120363000000000001@g.us'
const onlyKnown = (names, known) => { for (const n of names) if (!known.includes(n)) throw new Error(`unknown ${n}`) }
const build = async (body) => {
  const content = parseContent(body, onlyKnown)
  const quoted = quotedMessage(content.quoted, GROUP)
  return (await generateWAMessage(GROUP, { ...baileysContent(content, GROUP), ...mentionsOf(content) }, { userJid: '15550000001@s.whatsapp.net', quoted, logger: undefined })).message
}

test('mentions become contextInfo.mentionedJid of the text, once each', async () => {
  const message = await build({ text: 'hi @15550000002 and @15550000003', mentions: ['+15550000002', '+15550000003', '+15550000002'] })
  assert.deepEqual(message.extendedTextMessage.contextInfo.mentionedJid, ['15550000002@s.whatsapp.net', '15550000003@s.whatsapp.net'])
  const plain = await build({ text: 'no one' })
  assert.equal(plain.extendedTextMessage?.contextInfo?.mentionedJid, undefined)
  assert.throws(() => parseContent({ location: { latitude: 1, longitude: 2 }, mentions: ['+15550000002'] }, onlyKnown), /mentions go with text or media/)
  assert.throws(() => parseContent({ text: 'x', mentions: [] }, onlyKnown), /mentions must be a list/)
  assert.throws(() => parseContent({ text: 'x', mentions: ['15550000002'] }, onlyKnown), /\+E\.164/)
})

test('a reply to, or a reaction on, a member\'s group message names that member', async () => {
  const reply = await build({ text: 'yes', quoted: { id: 'ABC123', from_me: false, text: 'shall we?', lid: null, participant: '+15550000004' } })
  const ctx = reply.extendedTextMessage.contextInfo
  assert.equal(ctx.stanzaId, 'ABC123')
  assert.equal(ctx.participant, '15550000004@s.whatsapp.net')
  const byLid = await build({ text: 'yes', quoted: { id: 'ABC124', from_me: false, text: '', lid: '987654321@lid', participant: '+15550000004' } })
  assert.equal(byLid.extendedTextMessage.contextInfo.participant, '987654321@lid')
  const reaction = await build({ reaction: { key: { id: 'ABC125', from_me: false, participant: '+15550000004' }, emoji: '👍' } })
  assert.deepEqual({ ...reaction.reactionMessage.key }, { remoteJid: GROUP, fromMe: false, id: 'ABC125', participant: '15550000004@s.whatsapp.net' })
  // the participant's jid as its message event named it (from_jid), a device suffix dropped
  const byJid = await build({ reaction: { key: { id: 'ABC126', from_me: false, participant: '123456789:3@lid' }, emoji: '👍' } })
  assert.equal(byJid.reactionMessage.key.participant, '123456789@lid')
  const replyByJid = await build({ text: 'ok', quoted: { id: 'ABC127', from_me: false, text: '', participant: '15550000004@s.whatsapp.net' } })
  assert.equal(replyByJid.extendedTextMessage.contextInfo.participant, '15550000004@s.whatsapp.net')
  assert.throws(() => parseContent({ text: 'x', quoted: { id: 'A', from_me: false, text: '', participant: '1@g.us' } }, onlyKnown), /participant/)
})

test('a group takes no read receipt or presence, and another\'s message needs its sender', () => {
  const content = (body) => parseContent(body, onlyKnown)
  assert.throws(() => assertGroupContent(content({ read: { ids: ['A1'] } })), /not a group/)
  assert.throws(() => assertGroupContent(content({ presence: { state: 'composing' } })), /not a group/)
  assert.throws(() => assertGroupContent(content({ reaction: { key: { id: 'A1', from_me: false }, emoji: '👍' } })), /participant/)
  assert.throws(() => assertGroupContent(content({ text: 'x', quoted: { id: 'A1', from_me: false, text: '' } })), /participant/)
  assert.doesNotThrow(() => assertGroupContent(content({ reaction: { key: { id: 'A1', from_me: true }, emoji: '👍' } })))
  assert.doesNotThrow(() => assertGroupContent(content({ text: 'x', quoted: { id: 'A1', from_me: false, text: '', participant: '+15550000004' } })))
})

test('group ids: digits@g.us or digits-digits@g.us, at most 64 characters', () => {
  for (const ok of ['120363000000000001@g.us', '15550000001-1600000000@g.us']) assert.ok(isGroupId(ok), ok)
  for (const bad of ['', 'x@g.us', '123@s.whatsapp.net', '123@g.us ', '-1@g.us', '1-@g.us', `${'1'.repeat(30)}-${'1'.repeat(30)}@g.us`, null, 7]) {
    assert.ok(!isGroupId(bad), String(bad))
  }
})

test('the metadata cache: whole metadata kept while fresh, bounded, a partial change forgets', () => {
  let now = 0
  const cache = new GroupMetadataCache({ maxEntries: 2, ttlMs: 1000, now: () => now })
  const meta = (id) => ({ id, addressingMode: 'pn', participants: [{ id: '15550000002@s.whatsapp.net' }] })
  cache.set(meta('1@g.us'))
  assert.equal(cache.get('1@g.us').id, '1@g.us')
  now = 1001
  assert.equal(cache.get('1@g.us'), undefined, 'a stale entry is asked again')
  cache.set(meta('1@g.us'))
  cache.set(meta('2@g.us'))
  cache.set(meta('3@g.us'))
  assert.equal(cache.size, 2)
  assert.equal(cache.get('1@g.us'), undefined, 'the oldest goes first')
  cache.refresh({ id: '2@g.us', subject: 'new' }) // a groups.update of a change: no participants
  assert.equal(cache.get('2@g.us'), undefined)
  cache.refresh(meta('2@g.us')) // groupFetchAllParticipating's whole metadata
  assert.ok(cache.get('2@g.us'))
})
