// Signal sender keys (the group cipher), written from the protocol, not from a client's code, so that an
// emulated phone checks what a client's group messages really carry: a client bug in the chain, the
// keys or the signature makes the phone fail instead of agreeing with the same bug.
//
//   SenderKeyDistributionMessage (SKDM): version byte 0x33 + proto {id, iteration, chainKey, signingKey (33 bytes)}
//   SenderKeyMessage (skmsg):            version byte 0x33 + proto {id, iteration, ciphertext} + 64-byte XEdDSA
//                                        signature by the signing key over everything before it
//   chain: message key seed = HMAC-SHA256(chainKey, 0x01), next chainKey = HMAC-SHA256(chainKey, 0x02);
//   message key = HKDF-SHA256(seed, salt 32 zero bytes, info "WhisperGroup", 48 bytes) = iv (16) + AES-256-CBC key (32)
// States are plain JSON (base64), kept on the emulated user and saved with the state file.
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomInt } from 'node:crypto'
import { proto } from './wa.js'
import { generateKeyPair, hkdf, hmacSha256, sign, toSignalPub, verifyStrict } from './crypto.js'

const VERSION = Buffer.from([0x33])
const SIGNATURE_LENGTH = 64
const MAX_FORWARD = 2000 // iterations a message may skip ahead (as clients bound it)
const MAX_SKIPPED = 2000 // message keys kept for messages that arrive out of order
const MAX_STATES = 5 // key ids kept per sender (a sender that rotated its key)

const VERIFIED_KEEP = 1024 // signatures remembered as good (the oldest forgotten first)

const b64 = (b) => Buffer.from(b).toString('base64')
const unb64 = (s) => Buffer.from(s, 'base64')

const messageKeyOf = (chainKey) => {
  const material = hkdf(hmacSha256(chainKey, Buffer.from([0x01])), 48, { salt: Buffer.alloc(32), info: 'WhisperGroup' })
  return { iv: material.subarray(0, 16), key: material.subarray(16, 48) }
}
const nextChainKey = (chainKey) => hmacSha256(chainKey, Buffer.from([0x02]))

// A group message reaches every member phone as the same skmsg, and each checks its signature (pure-JS XEdDSA,
// about 14 ms: 50 members were 0.7 s per message). The check's answer depends only on the signing key, the
// signed body and the signature, so a good answer is remembered under a hash of all three and the next member
// holding the same key for the same bytes reuses it. Only good answers are kept: a bad signature is checked
// again, and refused, for every member, and a member holding another signing key for that sender checks its own.
const verified = new Set()
export const signatureChecks = { computed: 0 } // how many were really computed (tests)

const verifiedSignature = (signingPublic, body, signature) => {
  const id = createHash('sha256').update(signingPublic).update(signature).update(body).digest('base64')
  if (verified.has(id)) return true
  signatureChecks.computed++
  if (!verifyStrict(signingPublic, body, signature)) return false
  verified.add(id)
  if (verified.size > VERIFIED_KEEP) verified.delete(verified.values().next().value)
  return true
}

/** a fresh own sender key for one group: what a phone creates before its first message there (or after a removal) */
export const newOwnSenderKey = () => {
  const signing = generateKeyPair()
  return { keyId: randomInt(1, 0x7fffffff), iteration: 0, chainKey: b64(randomBytes(32)), signingPublic: b64(signing.public), signingPrivate: b64(signing.private) }
}

/** the serialized SKDM of an own sender key at its current iteration */
export const distributionMessage = (own) => Buffer.concat([VERSION, Buffer.from(proto.SenderKeyDistributionMessage.encode({
  id: own.keyId,
  iteration: own.iteration,
  chainKey: unb64(own.chainKey),
  signingKey: toSignalPub(unb64(own.signingPublic))
}).finish())])

/** encrypts padded plaintext with an own sender key (advancing it); returns the skmsg bytes */
export const groupEncrypt = (own, plaintext) => {
  const chainKey = unb64(own.chainKey)
  const { iv, key } = messageKeyOf(chainKey)
  const c = createCipheriv('aes-256-cbc', key, iv)
  const ciphertext = Buffer.concat([c.update(Buffer.from(plaintext)), c.final()])
  const body = Buffer.concat([VERSION, Buffer.from(proto.SenderKeyMessage.encode({ id: own.keyId, iteration: own.iteration, ciphertext }).finish())])
  own.iteration += 1
  own.chainKey = b64(nextChainKey(chainKey))
  return Buffer.concat([body, sign(unb64(own.signingPrivate), body)])
}

/**
 * a received SKDM (bytes) into `record` ({states: {keyId: state}}, created when null); returns the record.
 * Throws on a malformed one (wrong version, missing chain key or signing key).
 */
export const processDistribution = (record, bytes) => {
  const b = Buffer.from(bytes)
  if (b.length < 2 || (b[0] >> 4) !== 3) throw new Error('unsupported sender key distribution version')
  const m = proto.SenderKeyDistributionMessage.decode(b.subarray(1))
  if (!m.chainKey?.length || m.chainKey.length !== 32 || m.signingKey?.length !== 33) throw new Error('incomplete sender key distribution message')
  const out = record || { states: {} }
  out.states[m.id] = { iteration: m.iteration || 0, chainKey: b64(m.chainKey), signingPublic: b64(m.signingKey), skipped: {} }
  const ids = Object.keys(out.states)
  for (const id of ids.slice(0, Math.max(0, ids.length - MAX_STATES))) delete out.states[id]
  return out
}

/**
 * decrypts an skmsg with a sender's record (updated in place): the signature is verified with the
 * distributed signing key before anything else; throws 'No sender key' / 'Invalid signature' /
 * 'old counter' / 'Bad padding' errors as a client would fail
 */
export const groupDecrypt = (record, bytes) => {
  const b = Buffer.from(bytes)
  if (b.length < 1 + SIGNATURE_LENGTH || (b[0] >> 4) !== 3) throw new Error('unsupported sender key message version')
  const body = b.subarray(0, b.length - SIGNATURE_LENGTH)
  const m = proto.SenderKeyMessage.decode(body.subarray(1))
  const state = record?.states?.[m.id]
  if (!state) throw new Error(`No sender key for key id ${m.id}`)
  if (!verifiedSignature(unb64(state.signingPublic), body, b.subarray(b.length - SIGNATURE_LENGTH))) throw new Error('Invalid sender key message signature')
  const n = m.iteration || 0
  let key
  if (n < state.iteration) {
    const seed = state.skipped[n]
    if (!seed) throw new Error(`Received message with old counter: ${state.iteration}, ${n}`)
    delete state.skipped[n]
    key = messageKeyOf(unb64(seed))
  } else {
    if (n - state.iteration > MAX_FORWARD) throw new Error('sender key message too far in the future')
    let chain = unb64(state.chainKey)
    for (let i = state.iteration; i < n; i++) {
      state.skipped[i] = b64(chain)
      chain = nextChainKey(chain)
    }
    const kept = Object.keys(state.skipped)
    for (const k of kept.slice(0, Math.max(0, kept.length - MAX_SKIPPED))) delete state.skipped[k]
    key = messageKeyOf(chain)
    state.iteration = n + 1
    state.chainKey = b64(nextChainKey(chain))
  }
  const d = createDecipheriv('aes-256-cbc', key.key, key.iv)
  return Buffer.concat([d.update(Buffer.from(m.ciphertext)), d.final()])
}
