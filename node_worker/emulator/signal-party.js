// A simulated Signal endpoint (the primary device, device 0, of a phone number) built on the
// real libsignal package with an in-memory store that can be serialised into the state file.
import libsignal from 'libsignal'
import queueJob from 'libsignal/src/queue_job.js'
import { generateKeyPair, sign, toRawPub, toSignalPub } from './crypto.js'

const b64 = (b) => Buffer.from(b).toString('base64')
const unb64 = (s) => Buffer.from(s, 'base64')
/** a copy of `sig` with one bit flipped: a signature that no longer verifies */
const flipBit = (sig) => { const bad = Buffer.from(sig); bad[0] ^= 0x01; return bad }

export class SignalParty {
  /** creates fresh keys: identity, registration id, signed prekey; one-time prekeys are generated on demand */
  static create () {
    const p = new SignalParty()
    p.identity = generateKeyPair()
    p.registrationId = libsignal.keyhelper.generateRegistrationId()
    const spk = generateKeyPair()
    p.signedPreKey = { keyId: 1, keyPair: spk, signature: sign(p.identity.private, toSignalPub(spk.public)) }
    p.preKeys = new Map() // id -> keyPair (given out, not yet used)
    p.nextPreKeyId = 1
    p.sessions = new Map() // address string -> serialised SessionRecord
    p.identities = new Map() // address string -> identity key (33 bytes)
    return p
  }

  static fromJSON (j) {
    const p = new SignalParty()
    p.identity = { public: unb64(j.identity.public), private: unb64(j.identity.private) }
    p.registrationId = j.registrationId
    p.signedPreKey = {
      keyId: j.signedPreKey.keyId,
      keyPair: { public: unb64(j.signedPreKey.public), private: unb64(j.signedPreKey.private) },
      signature: unb64(j.signedPreKey.signature)
    }
    p.preKeys = new Map(Object.entries(j.preKeys || {}).map(([id, kp]) => [Number(id), { public: unb64(kp.public), private: unb64(kp.private) }]))
    p.nextPreKeyId = j.nextPreKeyId || 1
    p.sessions = new Map(Object.entries(j.sessions || {}))
    p.identities = new Map(Object.entries(j.identities || {}).map(([k, v]) => [k, unb64(v)]))
    return p
  }

  toJSON () {
    return {
      identity: { public: b64(this.identity.public), private: b64(this.identity.private) },
      registrationId: this.registrationId,
      signedPreKey: {
        keyId: this.signedPreKey.keyId,
        public: b64(this.signedPreKey.keyPair.public),
        private: b64(this.signedPreKey.keyPair.private),
        signature: b64(this.signedPreKey.signature)
      },
      preKeys: Object.fromEntries([...this.preKeys].map(([id, kp]) => [id, { public: b64(kp.public), private: b64(kp.private) }])),
      nextPreKeyId: this.nextPreKeyId,
      sessions: Object.fromEntries(this.sessions),
      identities: Object.fromEntries([...this.identities].map(([k, v]) => [k, b64(v)]))
    }
  }

  /**
   * hands out a bundle with a FRESH one-time prekey (each call generates a new one); `badSignature`:
   * its signed pre-key signature has one bit flipped (a contact's `signed_prekey_signature: "bad"`)
   */
  takeBundle ({ badSignature = false } = {}) {
    const id = this.nextPreKeyId
    this.nextPreKeyId = (this.nextPreKeyId % 0xfffffe) + 1
    const kp = generateKeyPair()
    this.preKeys.set(id, kp)
    // keep the store bounded: forget the oldest unused prekeys beyond 500
    while (this.preKeys.size > 500) this.preKeys.delete(this.preKeys.keys().next().value)
    return {
      registrationId: this.registrationId,
      identityKey: this.identity.public,
      signedPreKey: { keyId: this.signedPreKey.keyId, publicKey: this.signedPreKey.keyPair.public, signature: badSignature ? flipBit(this.signedPreKey.signature) : this.signedPreKey.signature },
      preKey: { keyId: id, publicKey: kp.public }
    }
  }

  storage () {
    return {
      getOurIdentity: () => ({ privKey: Buffer.from(this.identity.private), pubKey: toSignalPub(this.identity.public) }),
      getOurRegistrationId: () => this.registrationId,
      isTrustedIdentity: () => true, // trust on first use, like WhatsApp clients
      loadIdentityKey: (id) => this.identities.get(id),
      saveIdentity: (id, key) => { this.identities.set(id, Buffer.from(key)); return true },
      loadSession: (id) => {
        const s = this.sessions.get(id)
        return s ? libsignal.SessionRecord.deserialize(s) : undefined
      },
      storeSession: (id, record) => { this.sessions.set(id, record.serialize()) },
      loadPreKey: (id) => {
        const kp = this.preKeys.get(Number(id))
        return kp ? { privKey: Buffer.from(kp.private), pubKey: toSignalPub(kp.public) } : undefined
      },
      removePreKey: (id) => { this.preKeys.delete(Number(id)) },
      loadSignedPreKey: (id) => {
        if (Number(id) !== this.signedPreKey.keyId) return undefined
        return { privKey: Buffer.from(this.signedPreKey.keyPair.private), pubKey: toSignalPub(this.signedPreKey.keyPair.public) }
      }
    }
  }

  static address (name, deviceId) { return new libsignal.ProtocolAddress(name, deviceId) }

  hasSession (addr) {
    const s = this.sessions.get(addr.toString())
    if (!s) return false
    return libsignal.SessionRecord.deserialize(s).haveOpenSession()
  }

  /** the registration id the open session with `addr` was built for; undefined without one */
  remoteRegistrationId (addr) {
    const s = this.sessions.get(addr.toString())
    if (!s) return undefined
    const open = libsignal.SessionRecord.deserialize(s).getOpenSession()
    return typeof open?.registrationId === 'number' ? open.registrationId : undefined
  }

  /** serialised sessions whose address names `name` (a phone number): for snapshots in tests */
  sessionsOf (name) {
    return new Map([...this.sessions].filter(([addr]) => addr.startsWith(`${name}.`)))
  }

  /** replaces the sessions with `name` by `saved` (a sessionsOf result; empty = forget them) */
  restoreSessionsOf (name, saved) {
    for (const addr of this.sessionsOf(name).keys()) this.sessions.delete(addr)
    for (const [addr, s] of saved) this.sessions.set(addr, s)
  }

  /** creates an outgoing session from a remote bundle ({registrationId, identityKey, signedPreKey, preKey?}; 32-byte keys) */
  async initSession (addr, bundle) {
    const builder = new libsignal.SessionBuilder(this.storage(), addr)
    await builder.initOutgoing({
      registrationId: bundle.registrationId,
      identityKey: toSignalPub(bundle.identityKey),
      signedPreKey: { keyId: bundle.signedPreKey.keyId, publicKey: toSignalPub(bundle.signedPreKey.publicKey), signature: bundle.signedPreKey.signature },
      ...(bundle.preKey ? { preKey: { keyId: bundle.preKey.keyId, publicKey: toSignalPub(bundle.preKey.publicKey) } } : {})
    })
  }

  /** returns { type: 'pkmsg'|'msg', ciphertext: Buffer } */
  async encrypt (addr, plaintext) {
    const cipher = new libsignal.SessionCipher(this.storage(), addr)
    const { type, body } = await cipher.encrypt(Buffer.from(plaintext))
    return { type: type === 3 ? 'pkmsg' : 'msg', ciphertext: Buffer.from(body, 'binary') }
  }

  async decrypt (addr, type, ciphertext) {
    const cipher = new libsignal.SessionCipher(this.storage(), addr)
    const data = Buffer.from(ciphertext)
    if (type === 'pkmsg') return Buffer.from(await cipher.decryptPreKeyWhisperMessage(data))
    if (type === 'msg') return this.decryptWhisper(cipher, addr, data)
    throw new Error(`unsupported enc type ${type}`)
  }

  /**
   * A `msg` decrypted as the libsignal that phones run (Java/Rust) does it: the open session first,
   * then the older ones, each tried on a fresh copy so that a failed attempt leaves nothing behind,
   * and an older session that decrypts becomes the open one (promoted). libsignal-node's own
   * decryptWhisperMessage tries them in place and stores, with the session that succeeded, the
   * ratchet steps its failed attempts made on the others: when both sides had started a session at
   * once, the phone's open session was corrupted and every later message it sent was unreadable.
   * Same errors as libsignal-node ('No session record', 'No matching sessions found for message').
   */
  decryptWhisper (cipher, addr, data) {
    const id = addr.toString()
    return queueJob(id, async () => { // the bucket of libsignal's own jobs on this address (encrypt, session builds)
      const saved = this.sessions.get(id)
      if (!saved) throw new libsignal.SessionError('No session record')
      const first = libsignal.SessionRecord.deserialize(saved)
      const open = first.getOpenSession()
      const order = [...(open ? [open] : []), ...first.getSessions().filter((x) => x !== open)].map((x) => x.indexInfo.baseKey.toString('base64'))
      for (const key of order) {
        const record = libsignal.SessionRecord.deserialize(saved)
        const session = record.sessions[key]
        try {
          const plaintext = await cipher.doDecryptWhisperMessage(data, session)
          session.indexInfo.used = Date.now()
          if (record.isClosed(session)) {
            const current = record.getOpenSession()
            if (current) record.closeSession(current)
            record.openSession(session)
          }
          this.sessions.set(id, record.serialize())
          return Buffer.from(plaintext)
        } catch {
          // the next session; this attempt's changes are dropped with its copy of the record
        }
      }
      throw new libsignal.SessionError('No matching sessions found for message')
    })
  }

  get identityPublic () { return toRawPub(this.identity.public) }
}
