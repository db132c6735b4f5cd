// WhatsApp's media encryption, as Baileys (Utils/messages-media.js: getMediaKeys, encryptedStream) and
// whatsmeow (upload.go, download.go) do it: a random 32-byte media key, HKDF-SHA256 (no salt) to 112
// bytes with the type's info string -> IV (0-16), AES-256-CBC key (16-48), MAC key (48-80); the file is
// the AES-CBC (PKCS#7) ciphertext followed by the first 10 bytes of HMAC-SHA256(macKey, IV || ciphertext).
// fileSha256 is of the plaintext, fileEncSha256 of ciphertext || MAC. Node's crypto only.
// The media-retry payloads (ServerErrorReceipt, MediaRetryNotification) are AES-256-GCM under
// HKDF(mediaKey, info "WhatsApp Media Retry Notification") with the message id as additional data.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

const MAC_LENGTH = 10
const RETRY_INFO = 'WhatsApp Media Retry Notification'

// Baileys' MEDIA_HKDF_KEY_MAPPING for the kinds a chat message carries: "WhatsApp <word> Keys"
export const MEDIA_HKDF_INFO = Object.freeze({
  image: 'Image',
  sticker: 'Image',
  video: 'Video',
  gif: 'Video',
  ptv: 'Video',
  audio: 'Audio',
  ptt: 'Audio',
  document: 'Document',
  'md-msg-hist': 'History' // a history-sync blob (history.js)
})

export class MediaVerifyError extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}

export const sha256 = (data) => createHash('sha256').update(data).digest()

/** the IV, cipher key and MAC key of `mediaKey` for a media kind (throws on an unknown kind) */
export const mediaKeys = (mediaKey, kind) => {
  const word = MEDIA_HKDF_INFO[kind]
  if (!word) throw new Error(`no media key info for kind ${kind}`)
  if (!mediaKey || Buffer.from(mediaKey).length !== 32) throw new Error('a media key is 32 bytes')
  const expanded = Buffer.from(hkdfSync('sha256', Buffer.from(mediaKey), Buffer.alloc(0), `WhatsApp ${word} Keys`, 112))
  return { iv: expanded.subarray(0, 16), cipherKey: expanded.subarray(16, 48), macKey: expanded.subarray(48, 80) }
}

const macOf = (macKey, iv, ciphertext) => createHmac('sha256', macKey).update(iv).update(ciphertext).digest().subarray(0, MAC_LENGTH)

/**
 * encrypts `plaintext` as a WhatsApp media file; a given `mediaKey` gives the same bytes again (a phone
 * re-uploading for a media retry keeps the key the message carries)
 */
export const encryptMedia = (plaintext, kind, mediaKey = randomBytes(32)) => {
  const { iv, cipherKey, macKey } = mediaKeys(mediaKey, kind)
  const aes = createCipheriv('aes-256-cbc', cipherKey, iv)
  const ciphertext = Buffer.concat([aes.update(plaintext), aes.final()])
  const enc = Buffer.concat([ciphertext, macOf(macKey, iv, ciphertext)])
  return {
    mediaKey: Buffer.from(mediaKey),
    enc,
    fileSha256: sha256(plaintext),
    fileEncSha256: sha256(enc),
    fileLength: plaintext.length
  }
}

/**
 * verifies a downloaded media file as a WhatsApp client does (fileEncSha256, then the MAC, then the
 * plaintext's fileSha256) and decrypts it; throws MediaVerifyError (code enc_sha256_mismatch, too_short,
 * mac_mismatch, decrypt_failed, sha256_mismatch)
 */
export const decryptMedia = (enc, kind, { mediaKey, fileSha256, fileEncSha256 }) => {
  const file = Buffer.from(enc)
  if (fileEncSha256 && !sha256(file).equals(Buffer.from(fileEncSha256))) {
    throw new MediaVerifyError('enc_sha256_mismatch', 'the downloaded file does not match the message\'s fileEncSha256')
  }
  if (file.length < MAC_LENGTH + 16 || (file.length - MAC_LENGTH) % 16) throw new MediaVerifyError('too_short', 'the downloaded file is not a whole number of AES blocks plus a MAC')
  const { iv, cipherKey, macKey } = mediaKeys(mediaKey, kind)
  const ciphertext = file.subarray(0, file.length - MAC_LENGTH)
  if (!timingSafeEqual(macOf(macKey, iv, ciphertext), file.subarray(file.length - MAC_LENGTH))) {
    throw new MediaVerifyError('mac_mismatch', 'the media MAC does not verify')
  }
  let plaintext
  try {
    const aes = createDecipheriv('aes-256-cbc', cipherKey, iv)
    plaintext = Buffer.concat([aes.update(ciphertext), aes.final()])
  } catch {
    throw new MediaVerifyError('decrypt_failed', 'the media does not decrypt (bad padding)')
  }
  if (fileSha256 && !sha256(plaintext).equals(Buffer.from(fileSha256))) {
    throw new MediaVerifyError('sha256_mismatch', 'the decrypted media does not match the message\'s fileSha256')
  }
  return plaintext
}

/** base64url without padding: how fileEncSha256 names an upload (Baileys' encodeBase64EncodedStringForUpload) */
export const uploadToken = (fileEncSha256) => Buffer.from(fileEncSha256).toString('base64url')

const retryKey = (mediaKey) => Buffer.from(hkdfSync('sha256', Buffer.from(mediaKey), Buffer.alloc(0), RETRY_INFO, 32))

/** AES-256-GCM of a media-retry payload; returns { ciphertext (with the 16-byte tag), iv (12 bytes) } */
export const encryptRetryPayload = (plaintext, mediaKey, messageId, iv = randomBytes(12)) => {
  const c = createCipheriv('aes-256-gcm', retryKey(mediaKey), iv)
  c.setAAD(Buffer.from(messageId))
  return { ciphertext: Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]), iv: Buffer.from(iv) }
}

/** the plaintext of a media-retry payload; throws when it does not authenticate */
export const decryptRetryPayload = (ciphertext, iv, mediaKey, messageId) => {
  const data = Buffer.from(ciphertext)
  const d = createDecipheriv('aes-256-gcm', retryKey(mediaKey), Buffer.from(iv))
  d.setAAD(Buffer.from(messageId))
  d.setAuthTag(data.subarray(data.length - 16))
  return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()])
}
