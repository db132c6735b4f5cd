// The emulator's conversation primitives, what a contact SENDS through the control API and how the real
// Baileys client gets it: a reply (contextInfo), a reaction (messages.reaction), an edit and a revoke
// (messages.update), a poll vote (pollUpdateMessage, opened with Baileys' own decryptPollVote), a location,
// chat presence (presence.update); and what WhatsApp would not let the contact do.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { decryptPollVote, getAggregateVotesInPollMessage, WAMessageStubType } from 'baileys'
import { startEmulator, trustEmulator, pairDevice, openClient, inboxEntry, until, sleep, tmpDir } from './emulator-helpers.js'
import path from 'node:path'
import { createHash } from 'node:crypto'

const ACCOUNT = '+15550009111'
const ACCOUNT_JID = '15550009111@s.whatsapp.net'
const CONTACT = '+15550009222'
const CONTACT_JID = '15550009222@s.whatsapp.net'
const EDIT_WINDOW_S = 3

describe('a contact does conversation actions that reach the real Baileys client', () => {
  let emu
  let client
  const reactions = []
  const presences = []
  // reactions and presences are not in the client's record: polled (client.waitFor wakes on its events only)
  const upserted = (id) => client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id), 10000, `upsert ${id}`)
  const updated = (id, accept) => client.waitFor((r) => r.msgUpdates.find((u) => u.key.id === id && accept(u.update)), 10000, `update of ${id}`)
  const contact = (body) => emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, ...body })
  const ok = async (body) => {
    const r = await contact(body)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body
  }
  const refused = async (body, status, code) => {
    const before = (await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.length
    const r = await contact(body)
    assert.equal(r.status, status, JSON.stringify(r.body))
    assert.equal(r.body.error.code, code)
    assert.equal((await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.length, before, 'nothing sent')
  }
  const fromAccount = async (content) => {
    const sent = await client.sock.sendMessage(CONTACT_JID, content)
    await inboxEntry(emu, CONTACT, sent.key.id)
    return sent
  }

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20', WA_EMULATOR_EDIT_WINDOW_SECONDS: String(EDIT_WINDOW_S) } })
    trustEmulator(emu)
    client = (await pairDevice(emu, ACCOUNT, { settle: true })).client
    client.sock.ev.on('messages.reaction', (r) => reactions.push(...r))
    client.sock.ev.on('presence.update', (p) => presences.push(p))
  })

  after(async () => {
    await client?.end()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('a reply quotes the account\'s message: stanzaId, participant and the quoted text', async () => {
    const own = await fromAccount({ text: 'how are you?' })
    const sent = await ok({ text: 'fine', reply_to: own.key.id })
    const msg = await upserted(sent.id)
    assert.equal(msg.message.extendedTextMessage.text, 'fine')
    const ctx = msg.message.extendedTextMessage.contextInfo
    assert.equal(ctx.stanzaId, own.key.id)
    assert.equal(ctx.participant, ACCOUNT_JID)
    assert.equal(ctx.quotedMessage.conversation, 'how are you?')
    const mine = await ok({ text: 'first' })
    const again = await upserted((await ok({ text: 'second', reply_to: mine.id })).id)
    assert.equal(again.message.extendedTextMessage.contextInfo.participant, CONTACT_JID, 'quoting itself')
  })

  test('a reaction reaches messages.reaction on the right message, from the account\'s view; "" removes', async () => {
    const own = await fromAccount({ text: 'react please' })
    const r = await ok({ reaction: { id: own.key.id, emoji: '😂' } })
    const got = await until(() => reactions.find((x) => x.reaction.key.id === r.id), 10000, 'the reaction')
    assert.equal(got.key.id, own.key.id)
    assert.equal(got.key.fromMe, true, 'Baileys sees it on its own message')
    assert.equal(got.reaction.text, '😂')
    assert.equal((await inboxEntry(emu, CONTACT, own.key.id)).reactions[CONTACT], '😂', 'the contact\'s phone shows its own reaction')
    const gone = await ok({ reaction: { id: own.key.id, emoji: '' } })
    assert.equal((await until(() => reactions.find((x) => x.reaction.key.id === gone.id), 10000, 'the removal')).reaction.text, '')
    const mine = await ok({ text: 'on my own' })
    const r2 = await ok({ reaction: { id: mine.id, emoji: '👍' } })
    const got2 = await until(() => reactions.find((x) => x.reaction.key.id === r2.id), 10000, 'the second reaction')
    assert.equal(got2.key.id, mine.id)
    assert.equal(got2.key.fromMe, false)
  })

  test('an edit of its own message reaches messages.update with the new text; the sent view keeps the history', async () => {
    const mine = await ok({ text: 'helo' })
    await upserted(mine.id)
    await ok({ edit: { id: mine.id, text: 'hello' } })
    const u = await updated(mine.id, (x) => x.message?.editedMessage)
    assert.equal(u.update.message.editedMessage.message.conversation, 'hello')
    assert.equal(u.key.remoteJid, CONTACT_JID)
    const view = (await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.find((e) => e.id === mine.id)
    assert.deepEqual([view.text, view.edits], ['hello', ['helo', 'hello']])
  })

  test('a revoke of its own message reaches messages.update as REVOKE', async () => {
    const mine = await ok({ text: 'regret' })
    await upserted(mine.id)
    await ok({ revoke: { id: mine.id } })
    const u = await updated(mine.id, (x) => x.messageStubType === WAMessageStubType.REVOKE)
    assert.equal(u.update.message, null)
    assert.equal((await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.find((e) => e.id === mine.id).revoked, true)
    await refused({ edit: { id: mine.id, text: 'too late' } }, 409, 'revoked')
  })

  test('what WhatsApp would not let a contact do is refused and nothing is sent', async () => {
    const own = await fromAccount({ text: 'the account\'s' })
    await refused({ edit: { id: own.key.id, text: 'x' } }, 409, 'not_own_message')
    await refused({ revoke: { id: own.key.id } }, 409, 'not_own_message')
    await refused({ reaction: { id: 'NOSUCHID', emoji: '👍' } }, 404, 'message_unknown')
    await refused({ reply_to: 'NOSUCHID', text: 'x' }, 404, 'message_unknown')
    await refused({ poll_vote: { id: own.key.id, options: ['a'] } }, 409, 'not_a_poll')
    await refused({ reaction: { id: own.key.id, emoji: '👍' }, revoke: { id: own.key.id } }, 400, 'invalid_action')
    await refused({ reaction: { id: own.key.id } }, 400, 'invalid_action')
    await refused({ reaction: { id: own.key.id, emoji: '👍' }, text: 'x' }, 400, 'invalid_text')
    await refused({ reply_to: own.key.id }, 400, 'invalid_text')
    await refused({ location: { latitude: 91, longitude: 0 } }, 400, 'invalid_location')
  })

  test('an edit past the edit window is refused', async () => {
    const mine = await ok({ text: 'soon old' })
    await sleep((EDIT_WINDOW_S + 1) * 1000 - (Date.now() - mine.timestamp * 1000) + 50)
    await refused({ edit: { id: mine.id, text: 'new' } }, 409, 'edit_window_expired')
  })

  test('a poll vote, encrypted as WhatsApp does: Baileys\' decryptPollVote opens it and the aggregate names the voter', async () => {
    const poll = await fromAccount({ poll: { name: 'When?', values: ['mon', 'tue', 'wed'], selectableCount: 0 } })
    const vote = await ok({ poll_vote: { id: poll.key.id, options: ['tue', 'wed'] } })
    const msg = await upserted(vote.id)
    const upd = msg.message.pollUpdateMessage
    assert.equal(upd.pollCreationMessageKey.id, poll.key.id)
    const decrypted = decryptPollVote(upd.vote, {
      pollEncKey: poll.message.messageContextInfo.messageSecret,
      pollCreatorJid: ACCOUNT_JID,
      pollMsgId: poll.key.id,
      voterJid: CONTACT_JID
    })
    const agg = getAggregateVotesInPollMessage({ message: poll.message, pollUpdates: [{ pollUpdateMessageKey: msg.key, vote: decrypted }] }, ACCOUNT_JID)
    // the aggregate names the voter by the vote's key (getKeyAuthor), the contact's LID in Baileys 7 (the vote itself is
    // bound to the phone-number jids of a chat addressed by phone number)
    const lid = (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === CONTACT).lid
    const voter = agg[1].voters[0]
    assert.ok([CONTACT_JID, lid].includes(voter), voter)
    assert.deepEqual(agg.map((o) => [o.name, o.voters]), [['mon', []], ['tue', [voter]], ['wed', [voter]]])
    assert.throws(() => decryptPollVote(upd.vote, { pollEncKey: poll.message.messageContextInfo.messageSecret, pollCreatorJid: ACCOUNT_JID, pollMsgId: poll.key.id, voterJid: ACCOUNT_JID }), 'bound to its voter')
    assert.deepEqual((await inboxEntry(emu, CONTACT, poll.key.id)).poll.votes, { [CONTACT]: ['tue', 'wed'] })
    const single = await fromAccount({ poll: { name: 'One?', values: ['yes', 'no'], selectableCount: 1 } })
    await refused({ poll_vote: { id: single.key.id, options: ['yes', 'no'] } }, 400, 'invalid_action')
    await refused({ poll_vote: { id: single.key.id, options: ['maybe'] } }, 400, 'invalid_action')
  })

  test('a location reaches Baileys as a locationMessage', async () => {
    const sent = await ok({ location: { latitude: -33.8568, longitude: 151.2153, name: 'Opera House', address: 'Sydney' } })
    const loc = (await upserted(sent.id)).message.locationMessage
    assert.deepEqual([loc.degreesLatitude, loc.degreesLongitude, loc.name, loc.address], [-33.8568, 151.2153, 'Opera House', 'Sydney'])
  })

  test('contact cards (from a name and number, or a vCard) and polls reach Baileys as WhatsApp\'s apps send them', async () => {
    const one = (await upserted((await ok({ contacts: [{ name: 'Ann Lee', phone_number: '+15550001234' }] })).id)).message.contactMessage
    assert.equal(one.displayName, 'Ann Lee')
    assert.equal(one.vcard, 'BEGIN:VCARD\nVERSION:3.0\nFN:Ann Lee\nTEL;type=CELL;waid=15550001234:+15550001234\nEND:VCARD')
    const card = 'BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nEND:VCARD'
    const two = (await upserted((await ok({ contacts: [{ name: 'Ann', phone_number: '+15550001234' }, { name: 'Bob', vcard: card }] })).id)).message.contactsArrayMessage
    assert.deepEqual(two.contacts.map((c) => [c.displayName, c.vcard.includes('FN:Ann'), c.vcard === card]), [['Ann', true, false], ['Bob', false, true]])
    const single = (await upserted((await ok({ poll: { question: 'Tea?', options: ['yes', 'no'] } })).id)).message
    assert.deepEqual([single.pollCreationMessageV3.name, single.pollCreationMessageV3.options.map((o) => o.optionName), single.pollCreationMessageV3.selectableOptionsCount], ['Tea?', ['yes', 'no'], 1])
    assert.equal(single.messageContextInfo.messageSecret.length, 32, 'the secret its votes are encrypted with')
    const multi = await ok({ poll: { question: 'Which?', options: ['a', 'b', 'c'], multiple: true } })
    assert.equal((await upserted(multi.id)).message.pollCreationMessage.selectableOptionsCount, 0)
    const view = (await emu.api('GET', `/contacts/${CONTACT}/sent`)).body.find((e) => e.id === multi.id)
    assert.deepEqual(view.poll, { question: 'Which?', options: ['a', 'b', 'c'], multiple: true, votes: {} })
    assert.equal(view.poll_secret, undefined)
    await refused({ poll: { question: 'One?', options: ['only'] } }, 400, 'invalid_poll')
    await refused({ poll: { question: 'Many?', options: Array.from({ length: 13 }, (_, i) => `o${i}`) } }, 400, 'invalid_poll')
    await refused({ poll: { question: 'Twice?', options: ['a', 'a'] } }, 400, 'invalid_poll')
    await refused({ contacts: [] }, 400, 'invalid_contacts')
    await refused({ contacts: [{ name: 'X', phone_number: 'nope' }] }, 400, 'invalid_contacts')
    await refused({ contacts: [{ name: 'X', vcard: 'not a card' }] }, 400, 'invalid_contacts')
  })

  test('raw: any Message a test names (a type the gateway may not know) reaches Baileys as given', async () => {
    const sent = await ok({ raw: { interactiveMessage: { body: { text: 'pick one' } } } })
    assert.equal((await upserted(sent.id)).message.interactiveMessage.body.text, 'pick one')
    await refused({ raw: { notAMessageField: 1 } }, 400, 'invalid_raw')
    await refused({ raw: { imageMessage: 'not an object' } }, 400, 'invalid_raw')
    await refused({ raw: 'hello' }, 400, 'invalid_action')
  })

  test('a contact writing by LID: its reaction still lands on the account\'s message, its edit on its own', async () => {
    const LID_CONTACT = '+15550009333'
    const lid = (await emu.api('POST', '/contacts', { phone_number: LID_CONTACT, addressing: 'lid' })).body.lid
    const own = { ...(await client.sock.sendMessage(`${LID_CONTACT.slice(1)}@s.whatsapp.net`, { text: 'to a lid contact' })).key }
    await inboxEntry(emu, LID_CONTACT, own.id)
    const post = async (body) => (await emu.api('POST', `/contacts/${LID_CONTACT}/messages`, { to: ACCOUNT, ...body })).body
    const r = await post({ reaction: { id: own.id, emoji: '🔥' } })
    const got = await until(() => reactions.find((x) => x.reaction.key.id === r.id), 10000, 'the reaction')
    assert.deepEqual([got.key.id, got.key.fromMe, got.reaction.text], [own.id, true, '🔥'])
    const mine = await post({ text: 'by lid' })
    assert.equal((await upserted(mine.id)).key.remoteJid, lid)
    await post({ edit: { id: mine.id, text: 'by lid, edited' } })
    const u = await updated(mine.id, (x) => x.message?.editedMessage)
    assert.equal(u.key.remoteJid, lid)
    assert.equal(u.update.message.editedMessage.message.conversation, 'by lid, edited')
  })

  test('presence: composing, recording, paused, unavailable and available reach presence.update', async () => {
    // Baileys reports paused as "available" (handlePresenceUpdate)
    const expected = { composing: 'composing', recording: 'recording', paused: 'available', unavailable: 'unavailable', available: 'available' }
    for (const [state, seen] of Object.entries(expected)) {
      const from = presences.length
      const r = await emu.api('POST', `/contacts/${CONTACT}/presence`, { to: ACCOUNT, state })
      assert.deepEqual(r.body, { state, delivered_to: 1 })
      const p = await until(() => presences.slice(from).find((x) => x.id === CONTACT_JID), 5000, `presence ${state}`)
      assert.equal(p.presences[CONTACT_JID].lastKnownPresence, seen)
    }
    const bad = await emu.api('POST', `/contacts/${CONTACT}/presence`, { to: ACCOUNT, state: 'typing' })
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid_state'])
    const nobody = await emu.api('POST', `/contacts/${CONTACT}/presence`, { to: '+15550000000', state: 'composing' })
    assert.deepEqual([nobody.status, nobody.body.error.code], [409, 'no_linked_device'])
  })
})

describe('conversation state across an emulator restart (a state file)', () => {
  test('reactions and edits stay on the entries, and a vote on a poll from before the restart still opens', async () => {
    const dir = tmpDir()
    const env = { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json'), WA_EMULATOR_RECEIPT_DELAY_MS: '20' }
    const authDir = tmpDir()
    let emu = await startEmulator({ env })
    let client
    try {
      trustEmulator(emu)
      client = (await pairDevice(emu, ACCOUNT, { authDir, settle: true })).client
      const poll = await client.sock.sendMessage(CONTACT_JID, { poll: { name: 'Still?', values: ['yes', 'no'], selectableCount: 1 } })
      const own = { ...(await client.sock.sendMessage(CONTACT_JID, { text: 'keep me' })).key }
      await inboxEntry(emu, CONTACT, own.id)
      await client.sock.sendMessage(CONTACT_JID, { react: { text: '👍', key: own } })
      await client.sock.sendMessage(CONTACT_JID, { text: 'kept', edit: own })
      await inboxEntry(emu, CONTACT, own.id, (e) => e.reactions[ACCOUNT] && e.edits.length)
      await client.end()
      assert.equal((await emu.stop()).code, 0)
      emu = await startEmulator({ env })
      trustEmulator(emu)
      const entry = await inboxEntry(emu, CONTACT, own.id)
      assert.deepEqual([entry.text, entry.edits, entry.reactions], ['kept', ['keep me', 'kept'], { [ACCOUNT]: '👍' }])
      client = await openClient(emu, authDir)
      await client.waitOpen(10000)
      const vote = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, poll_vote: { id: poll.key.id, options: ['no'] } })
      assert.equal(vote.status, 200, JSON.stringify(vote.body))
      const msg = await client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === vote.body.id), 10000, 'the vote')
      const got = decryptPollVote(msg.message.pollUpdateMessage.vote, { pollEncKey: poll.message.messageContextInfo.messageSecret, pollCreatorJid: ACCOUNT_JID, pollMsgId: poll.key.id, voterJid: CONTACT_JID })
      assert.deepEqual(got.selectedOptions.map((h) => Buffer.from(h).toString('hex')), [createHash('sha256').update('no').digest('hex')])
    } finally {
      await client?.end()
      await emu.stop()
    }
  })
})
