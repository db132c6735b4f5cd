// Small crypto toolbox for the emulator: Curve25519 (XEdDSA signatures via libsignal's curve),
// strict signature verification, HKDF-SHA256, AES-256-GCM.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import curve from 'libsignal/src/curve.js'

const KEY_TYPE = Buffer.from([5])

/** 33-byte "signal" form (0x05 prefix) of a 32-byte Curve25519 public key */
export const toSignalPub = (pub) => {
  const b = Buffer.from(pub)
  if (b.length === 33 && b[0] === 5) return b
  if (b.length !== 32) throw new Error(`bad public key length ${b.length}`)
  return Buffer.concat([KEY_TYPE, b])
}
/** 32-byte form (prefix stripped) */
export const toRawPub = (pub) => {
  const b = Buffer.from(pub)
  if (b.length === 33 && b[0] === 5) return b.subarray(1)
  if (b.length !== 32) throw new Error(`bad public key length ${b.length}`)
  return b
}

/** { public: 32 bytes, private: 32 bytes } */
export const generateKeyPair = () => {
  const { pubKey, privKey } = curve.generateKeyPair()
  return { public: Buffer.from(pubKey).subarray(1), private: Buffer.from(privKey) }
}

export const sharedKey = (privateKey, publicKey) =>
  Buffer.from(curve.calculateAgreement(toSignalPub(publicKey), Buffer.from(privateKey)))

export const sign = (privateKey, message) => Buffer.from(curve.calculateSignature(Buffer.from(privateKey), Buffer.from(message)))

/**
 * Strict XEdDSA verification: returns true only for a valid signature.
 * (libsignal's verifySignature returns false on a bad signature instead of throwing, which
 * Baileys rc14's Curve.verify treats as success; here a false result is a failure.)
 */
export const verifyStrict = (publicKey, message, signature) => {
  try {
    if (!signature || Buffer.from(signature).length !== 64) return false
    return curve.verifySignature(toSignalPub(publicKey), Buffer.from(message), Buffer.from(signature)) === true
  } catch {
    return false
  }
}

export const sha256 = (data) => createHash('sha256').update(data).digest()
export const hmacSha256 = (key, data) => createHmac('sha256', key).update(data).digest()

/** RFC 5869 HKDF with SHA-256 */
export const hkdf = (ikm, length, { salt, info = '' } = {}) => {
  const prk = hmacSha256(salt && salt.length ? Buffer.from(salt) : Buffer.alloc(32), Buffer.from(ikm))
  const infoBuf = Buffer.from(info)
  const blocks = []
  let prev = Buffer.alloc(0)
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    prev = hmacSha256(prk, Buffer.concat([prev, infoBuf, Buffer.from([i])]))
    blocks.push(prev)
  }
  return Buffer.concat(blocks).subarray(0, length)
}

export const aesGcmEncrypt = (plaintext, key, iv, aad) => {
  const c = createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(aad)
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
}

export const aesGcmDecrypt = (ciphertext, key, iv, aad) => {
  const d = createDecipheriv('aes-256-gcm', key, iv)
  d.setAAD(aad)
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16))
  return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()])
}

export const randomId = (bytes = 8) => randomBytes(bytes).toString('hex').toUpperCase()
export { randomBytes }
