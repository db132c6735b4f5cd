// The emulator's own test PKI: root (trusted by the client through WA_CERT_DETAILS.PUBLIC_KEY)
// -> intermediate (issuerSerial 0 = root) -> leaf (the Noise static key of this server), and the
// spoiled chains of CERT_MODES that a client must refuse.
import fs from 'node:fs'
import path from 'node:path'
import { proto } from './wa.js'
import { generateKeyPair, sign, verifyStrict } from './crypto.js'

export const ROOT_SERIAL = 0
const INTERMEDIATE_SERIAL = 1
const LEAF_SERIAL = 2

export const encodeKeyPairJson = (kp) => ({
  public: Buffer.from(kp.public).toString('base64'),
  private: Buffer.from(kp.private).toString('base64')
})
export const decodeKeyPairJson = (j) => {
  const kp = { public: Buffer.from(j.public, 'base64'), private: Buffer.from(j.private, 'base64') }
  if (kp.public.length !== 32 || kp.private.length !== 32) throw new Error('root key file: keys must be 32 bytes')
  return kp
}

/** crash-safe write: temp file + fsync + rename (+ fsync of the directory) */
export const writeFileAtomic = (file, data, mode = 0o600) => {
  const dir = path.dirname(file)
  fs.mkdirSync(dir, { recursive: true })
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`)
  const fd = fs.openSync(tmp, 'w', mode)
  try {
    fs.writeSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  try {
    const dfd = fs.openSync(dir, 'r')
    try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
  } catch { /* directory fsync is best effort on some platforms */ }
}

/** loads the root key pair from file, creating the file when it does not exist; in memory when file is falsy */
export const loadOrCreateRootKey = (file) => {
  if (!file) return generateKeyPair()
  if (fs.existsSync(file)) {
    return decodeKeyPairJson(JSON.parse(fs.readFileSync(file, 'utf8')))
  }
  const kp = generateKeyPair()
  writeFileAtomic(file, JSON.stringify({ type: 'wa-emulator-root-key', ...encodeKeyPairJson(kp) }, null, 2) + '\n')
  return kp
}

const certificate = (issuerKeyPair, details) => {
  const detailsBytes = Buffer.from(proto.CertChain.NoiseCertificate.Details.encode(details).finish())
  return { details: detailsBytes, signature: sign(issuerKeyPair.private, detailsBytes) }
}

// What the emulator can present in its serverHello (WA_EMULATOR_CERT_MODE, POST /cert-mode). Every mode
// but `valid` must be refused by a client that authenticates the server strictly.
export const CERT_MODES = Object.freeze({
  valid: 'a chain from the emulator\'s root for its Noise static key',
  other_root: 'the same chain signed by another root (an unknown server)',
  leaf_mismatch: 'a valid chain whose leaf key is not the emulator\'s Noise static key',
  expired: 'the leaf certificate expired a day ago',
  not_yet_valid: 'the leaf certificate becomes valid in a day',
  bad_signature: 'the leaf signature has one bit flipped',
  wrong_issuer: 'the leaf names an issuer serial that is not the intermediate\'s'
})

/**
 * Builds the encoded CertChain for a server static key.
 * The intermediate key pair is generated per call (kept in memory only). `mode` (one of CERT_MODES)
 * spoils the chain on purpose; `intermediate` / `leaf` override single Details fields (tests).
 */
export const makeCertChain = (rootKeyPair, serverStaticPublic, {
  validSeconds = 7 * 24 * 3600, mode = 'valid', nowSeconds = Math.floor(Date.now() / 1000), intermediate: iOver = {}, leaf: lOver = {}
} = {}) => {
  if (!Object.hasOwn(CERT_MODES, mode)) throw new Error(`unknown certificate mode ${mode}`)
  const now = nowSeconds
  const day = 24 * 3600
  const signingRoot = mode === 'other_root' ? generateKeyPair() : rootKeyPair
  const intermediateKeyPair = generateKeyPair()
  const intermediate = certificate(signingRoot, {
    serial: INTERMEDIATE_SERIAL,
    issuerSerial: ROOT_SERIAL,
    key: intermediateKeyPair.public,
    notBefore: now - 60,
    notAfter: now + validSeconds,
    ...iOver
  })
  const leaf = certificate(intermediateKeyPair, {
    serial: LEAF_SERIAL,
    issuerSerial: mode === 'wrong_issuer' ? INTERMEDIATE_SERIAL + 40 : INTERMEDIATE_SERIAL,
    key: mode === 'leaf_mismatch' ? generateKeyPair().public : Buffer.from(serverStaticPublic),
    notBefore: mode === 'expired' ? now - 2 * day : mode === 'not_yet_valid' ? now + day : now - 60,
    notAfter: mode === 'expired' ? now - day : mode === 'not_yet_valid' ? now + 2 * day : now + validSeconds,
    ...lOver
  })
  if (mode === 'bad_signature') leaf.signature[17] ^= 0x01
  return Buffer.from(proto.CertChain.encode({ intermediate, leaf }).finish())
}

/** strict verification of an encoded chain against a root public key (used by tests and self-checks) */
export const verifyCertChain = (chainBytes, rootPublic, expectedLeafKey) => {
  const { intermediate, leaf } = proto.CertChain.decode(chainBytes)
  if (!intermediate?.details || !intermediate?.signature || !leaf?.details || !leaf?.signature) return false
  const iDetails = proto.CertChain.NoiseCertificate.Details.decode(intermediate.details)
  const lDetails = proto.CertChain.NoiseCertificate.Details.decode(leaf.details)
  if ((iDetails.issuerSerial || 0) !== ROOT_SERIAL) return false
  if ((lDetails.issuerSerial || 0) !== (iDetails.serial || 0)) return false
  if (!verifyStrict(rootPublic, intermediate.details, intermediate.signature)) return false
  if (!verifyStrict(iDetails.key, leaf.details, leaf.signature)) return false
  if (expectedLeafKey && !Buffer.from(lDetails.key).equals(Buffer.from(expectedLeafKey))) return false
  return true
}
