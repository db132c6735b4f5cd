// Server side (responder) of Noise_XX_25519_AESGCM_SHA256 as spoken by WhatsApp Web.
//   -> e                     (clientHello.ephemeral)
//   <- e, ee, s, es          (serverHello: ephemeral, encrypted static, encrypted cert chain)
//   -> s, se                 (clientFinish: encrypted static, encrypted ClientPayload)
// Transport keys: HKDF(empty, salt=ck) -> [k1, k2]; the client writes with k1, the server with k2.
import { aesGcmDecrypt, aesGcmEncrypt, generateKeyPair, hkdf, sha256, sharedKey } from './crypto.js'
import { WA_INTRO } from './frame.js'

const NOISE_MODE = Buffer.from('Noise_XX_25519_AESGCM_SHA256\0\0\0\0')

const iv = (counter) => {
  const b = Buffer.alloc(12)
  b.writeUInt32BE(counter, 8)
  return b
}

export class NoiseResponder {
  /**
   * @param {{ staticKeyPair: {public: Buffer, private: Buffer}, certChain: Buffer, intro?: Buffer }} opts
   */
  constructor ({ staticKeyPair, certChain, intro = WA_INTRO }) {
    this.static = staticKeyPair
    this.certChain = certChain
    this.h = NOISE_MODE.length === 32 ? Buffer.from(NOISE_MODE) : sha256(NOISE_MODE)
    this.ck = Buffer.from(this.h)
    this.key = Buffer.from(this.h)
    this.counter = 0
    this.transport = null
    this.mixHash(intro)
  }

  mixHash (data) { this.h = sha256(Buffer.concat([this.h, data])) }

  mixKey (ikm) {
    const out = hkdf(ikm, 64, { salt: this.ck })
    this.ck = out.subarray(0, 32)
    this.key = out.subarray(32)
    this.counter = 0
  }

  encryptHs (plaintext) {
    const ct = aesGcmEncrypt(plaintext, this.key, iv(this.counter++), this.h)
    this.mixHash(ct)
    return ct
  }

  decryptHs (ciphertext) {
    const pt = aesGcmDecrypt(ciphertext, this.key, iv(this.counter++), this.h)
    this.mixHash(ciphertext)
    return pt
  }

  /** returns { ephemeral, static, payload } for the serverHello */
  respondToHello (clientEphemeral) {
    if (!clientEphemeral || clientEphemeral.length !== 32) throw new Error('bad client ephemeral')
    this.clientEphemeral = Buffer.from(clientEphemeral)
    this.mixHash(this.clientEphemeral)
    this.ephemeral = generateKeyPair()
    this.mixHash(this.ephemeral.public)
    this.mixKey(sharedKey(this.ephemeral.private, this.clientEphemeral)) // ee
    const encStatic = this.encryptHs(this.static.public)
    this.mixKey(sharedKey(this.static.private, this.clientEphemeral)) // es
    const encPayload = this.encryptHs(this.certChain)
    return { ephemeral: this.ephemeral.public, static: encStatic, payload: encPayload }
  }

  /** processes clientFinish; returns { clientStatic, payload } and switches to transport mode */
  processFinish (encStatic, encPayload) {
    const clientStatic = this.decryptHs(Buffer.from(encStatic))
    if (clientStatic.length !== 32) throw new Error('bad client static key')
    this.mixKey(sharedKey(this.ephemeral.private, clientStatic)) // se
    const payload = this.decryptHs(Buffer.from(encPayload))
    const keys = hkdf(Buffer.alloc(0), 64, { salt: this.ck })
    this.transport = {
      dec: keys.subarray(0, 32), // client writes with the first half
      enc: keys.subarray(32),
      readCounter: 0,
      writeCounter: 0
    }
    return { clientStatic, payload }
  }

  encrypt (plaintext) {
    const t = this.transport
    return aesGcmEncrypt(plaintext, t.enc, iv(t.writeCounter++), Buffer.alloc(0))
  }

  decrypt (ciphertext) {
    const t = this.transport
    return aesGcmDecrypt(ciphertext, t.dec, iv(t.readCounter++), Buffer.alloc(0))
  }
}
