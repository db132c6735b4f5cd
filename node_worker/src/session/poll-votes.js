// A contact's vote on a poll this account sent (issue 25, item 2). WhatsApp sends a vote as a
// pollUpdateMessage whose choice is encrypted under a key derived from the poll's messageSecret, its id, the
// poll creator's jid and the voter's jid (Baileys' decryptPollVote, Utils/process-message.js); rc14 delivers it
// still encrypted. Only the sender of the poll holds the secret: the worker keeps it in the protobuf it sent
// (sent-messages.js), so a vote opens here, or says why not, and is never dropped.
//
// Which form of each jid went into the key depends on how the chat is addressed: Baileys (getKeyAuthor) and
// older WhatsApp clients use phone-number jids, whatsmeow and current clients the LID one when the chat is by LID
// (msgsecret.go: the modification sender as the message came, its own LID when it votes). So every candidate pair
// (creator: our PN or LID; voter: the chat's jid, its other form) is tried: AES-GCM's tag tells the right one,
// and a wrong key never yields a vote.
import { createHash } from 'node:crypto'
import { decryptPollVote, jidNormalizedUser } from 'baileys'
import { unwrap } from './media-info.js'

export const POLL_UNKNOWN = 'poll_unknown' // not a poll this worker sent (or no longer keeps)
export const UNDECRYPTABLE = 'undecryptable' // no candidate key opens it

const creationOf = (m) => m?.pollCreationMessage ?? m?.pollCreationMessageV2 ?? m?.pollCreationMessageV3 ?? null

/** The pollUpdateMessage of `message` (a proto.Message), or null. */
export const pollUpdateOf = (message) => unwrap(message)?.pollUpdateMessage ?? null

const hashOf = (name) => createHash('sha256').update(Buffer.from(name)).digest('hex')
const normalized = (jid) => {
  try { return jid ? jidNormalizedUser(jid) : null } catch { return null }
}
const distinct = (jids) => [...new Set(jids.map(normalized).filter(Boolean))]

/**
 * The options a vote selects: {options: [names, in the poll's order]} ([] withdraws the vote), or
 * {options: null, error: POLL_UNKNOWN | UNDECRYPTABLE}.
 * update: the pollUpdateMessage; poll: the proto.Message we sent under its pollCreationMessageKey id (or
 * undefined); creators: our own jids (PN and LID); voters: the voter's jids (the chat's, its other form).
 */
export function openVote (update, poll, { creators, voters }) {
  const creation = creationOf(poll)
  const secret = poll?.messageContextInfo?.messageSecret
  const pollId = update?.pollCreationMessageKey?.id
  if (!creation || !secret?.length || !pollId) return { options: null, error: POLL_UNKNOWN }
  const vote = update.vote
  if (!vote?.encPayload?.length || !vote?.encIv?.length) return { options: null, error: UNDECRYPTABLE }
  for (const pollCreatorJid of distinct(creators)) {
    for (const voterJid of distinct(voters)) {
      let opened
      try {
        opened = decryptPollVote(vote, { pollCreatorJid, pollMsgId: pollId, pollEncKey: secret, voterJid })
      } catch { continue } // not this pair's key (the GCM tag does not match)
      const chosen = new Set((opened.selectedOptions ?? []).map((h) => Buffer.from(h).toString('hex')))
      const names = (creation.options ?? []).map((o) => o?.optionName).filter((n) => typeof n === 'string')
      return { options: names.filter((n) => chosen.has(hashOf(n))) }
    }
  }
  return { options: null, error: UNDECRYPTABLE }
}
