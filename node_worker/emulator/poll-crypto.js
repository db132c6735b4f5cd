// Poll votes as WhatsApp encrypts them (Baileys' decryptPollVote in Utils/process-message.js is the other
// side): the key is HMAC-SHA256(key = HMAC-SHA256(key = 32 zero bytes, the poll's messageSecret),
// pollId || creatorJid || voterJid || "Poll Vote" || 0x01), the vote (PollVoteMessage: the SHA-256 of each
// chosen option's name) is AES-256-GCM with a 12-byte IV and "pollId\0voterJid" as additional data, the
// tag after the ciphertext. A vote is bound to its poll, creator and voter: nobody else's key opens it.
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { proto } from './wa.js'

const hmac = (key, data) => createHmac('sha256', key).update(data).digest()

/** an option's hash, as a vote names it */
export const optionHash = (name) => createHash('sha256').update(Buffer.from(name)).digest()

const voteKey = ({ secret, pollId, creator, voter }) => {
  const key0 = hmac(Buffer.alloc(32), Buffer.from(secret, 'base64'))
  return hmac(key0, Buffer.concat([pollId, creator, voter, 'Poll Vote'].map((s) => Buffer.from(s)).concat([Buffer.from([1])])))
}

/** {encPayload, encIv} of a PollVoteMessage object; secret: the poll's messageSecret in base64 */
export const encryptPollVote = (vote, ctx) => {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', voteKey(ctx), iv)
  cipher.setAAD(Buffer.from(`${ctx.pollId}\u0000${ctx.voter}`))
  const body = Buffer.concat([cipher.update(proto.Message.PollVoteMessage.encode(vote).finish()), cipher.final()])
  return { encPayload: Buffer.concat([body, cipher.getAuthTag()]), encIv: iv }
}

