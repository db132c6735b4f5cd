// A contact's vote on our poll opens with the secret of the poll we sent (src/session/poll-votes.js), whichever
// jid forms (phone number or LID) the voter's client put in the key; a vote that does not open, or on a poll we
// do not know, says why instead of vanishing. The votes are encrypted by the emulator's poll-crypto.js, the
// WhatsApp side; the poll is the protobuf as the worker stores it (encoded and decoded, sent-messages.js).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { proto } from 'baileys'
import { encryptPollVote, optionHash } from '../emulator/poll-crypto.js'
import { openVote, pollUpdateOf, POLL_UNKNOWN, UNDECRYPTABLE } from '../src/session/poll-votes.js'

const ME = { id: '15550001000:7@s.whatsapp.net', lid: '90000000001000:7@lid' }
const VOTER_PN = '15550001001@s.whatsapp.net'
const VOTER_LID = '90000000001001@lid'
const POLL_ID = '3EB0POLL0001'

// the poll as the worker keeps it: a stored proto.Message, decoded again
function poll ({ options = ['tea', 'coffee', 'water'], multiple = false, secret = randomBytes(32) } = {}) {
  const creation = { name: 'Drink?', options: options.map((optionName) => ({ optionName })), selectableOptionsCount: multiple ? 0 : 1 }
  const message = { [multiple ? 'pollCreationMessage' : 'pollCreationMessageV3']: creation, messageContextInfo: { messageSecret: secret } }
  return { message: proto.Message.decode(proto.Message.encode(message).finish()), secret }
}

// the vote message a contact's client sends, through the wire format too
function vote (names, { secret, creator = 'PHONE', voter = VOTER_PN, pollId = POLL_ID }) {
  const creatorJid = creator === 'PHONE' ? '15550001000@s.whatsapp.net' : creator
  const enc = encryptPollVote({ selectedOptions: names.map(optionHash) }, { secret: secret.toString('base64'), pollId, creator: creatorJid, voter })
  const message = { pollUpdateMessage: { pollCreationMessageKey: { remoteJid: creatorJid, fromMe: false, id: pollId }, vote: enc, senderTimestampMs: Date.now() } }
  return pollUpdateOf(proto.Message.decode(proto.Message.encode(message).finish()))
}

const who = { creators: [ME.id, ME.lid], voters: [VOTER_PN, VOTER_LID] }

test('a vote keyed by phone-number jids (Baileys, the emulator) opens to the option names, in the poll order', () => {
  const p = poll()
  assert.deepEqual(openVote(vote(['water', 'tea'], p), p.message, who), { options: ['tea', 'water'] })
})

test('a vote keyed by LIDs (a client in a LID-addressed chat) opens too', () => {
  const p = poll({ multiple: true })
  const update = vote(['coffee'], { ...p, creator: '90000000001000@lid', voter: VOTER_LID })
  assert.deepEqual(openVote(update, p.message, who), { options: ['coffee'] })
  const mixed = vote(['tea'], { ...p, creator: '90000000001000@lid', voter: VOTER_PN })
  assert.deepEqual(openVote(mixed, p.message, { creators: [ME.id, ME.lid], voters: [VOTER_LID, `${VOTER_PN}`] }), { options: ['tea'] })
})

test('an empty vote withdraws: options is an empty list, not an error', () => {
  const p = poll()
  assert.deepEqual(openVote(vote([], p), p.message, who), { options: [] })
})

test('a poll we do not keep, or a message that is no poll, is poll_unknown', () => {
  const p = poll()
  assert.deepEqual(openVote(vote(['tea'], p), undefined, who), { options: null, error: POLL_UNKNOWN })
  assert.deepEqual(openVote(vote(['tea'], p), proto.Message.fromObject({ conversation: 'hi' }), who), { options: null, error: POLL_UNKNOWN })
})

test('a vote under another secret, another voter or another poll id is undecryptable, never a guess', () => {
  const p = poll()
  assert.deepEqual(openVote(vote(['tea'], { secret: randomBytes(32) }), p.message, who), { options: null, error: UNDECRYPTABLE })
  assert.deepEqual(openVote(vote(['tea'], { ...p, voter: '15550009999@s.whatsapp.net' }), p.message, who), { options: null, error: UNDECRYPTABLE })
  const other = vote(['tea'], { ...p, pollId: 'OTHER' })
  other.pollCreationMessageKey.id = POLL_ID // the vote names our poll, but its key was made for another
  assert.deepEqual(openVote(other, p.message, who), { options: null, error: UNDECRYPTABLE })
  const cut = vote(['tea'], p)
  cut.vote.encPayload = cut.vote.encPayload.subarray(0, 4)
  assert.deepEqual(openVote(cut, p.message, who), { options: null, error: UNDECRYPTABLE })
})
