// What a contact's media message says about its file (issue 24): the `media` object of the worker's
// `message` event. The gateway shows the descriptive fields and keeps the `descriptor` (where the encrypted
// file is, its media key and hashes) to ask POST /media/download for the bytes later. The descriptor holds
// the media key: it goes into the event (the journal, the gateway's store) and nowhere else, never a log line.
export const MEDIA_KINDS = Object.freeze(['image', 'video', 'audio', 'document', 'sticker'])

// The containers a message's content may come in (ephemeral chats, view once, a document with a caption,
// an edit, a copy for our own devices): the content is their inner message.
export const WRAPPERS = Object.freeze(['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'viewOnceMessageV2Extension',
  'documentWithCaptionMessage', 'editedMessage'])

/** The innermost message of `message`, out of its containers. */
export const unwrap = (message) => {
  for (const wrapper of WRAPPERS) if (message?.[wrapper]?.message) return unwrap(message[wrapper].message)
  return message
}

// protobuf.js decodes uint64 fields (fileLength) as Long objects when the long package is there, else numbers
const toNumber = (value) => {
  if (value == null) return null
  const n = typeof value === 'object' && typeof value.toNumber === 'function' ? value.toNumber() : Number(value)
  return Number.isSafeInteger(n) && n >= 0 ? n : null
}
const bytes = (value) => (value && value.length ? Buffer.from(value) : null)
const base64 = (value) => bytes(value)?.toString('base64') ?? null
const text = (value) => (typeof value === 'string' && value !== '' ? value : null)
const count = (value) => (Number.isInteger(value) && value > 0 ? value : null)

/**
 * The `media` of a message that carries an image, video, audio, document or sticker (in any of its
 * containers), or null: {kind, mimetype, size, sha256, filename, caption, ptt, seconds, width, height,
 * descriptor: {direct_path, url, media_key, file_enc_sha256, file_sha256, file_length}}; absent fields null.
 */
export function mediaInfo (message) {
  const inner = unwrap(message)
  const kind = MEDIA_KINDS.find((k) => inner?.[`${k}Message`])
  if (!kind) return null
  const c = inner[`${kind}Message`]
  const size = toNumber(c.fileLength)
  return {
    kind,
    mimetype: text(c.mimetype),
    size,
    sha256: bytes(c.fileSha256)?.toString('hex') ?? null,
    filename: kind === 'document' ? text(c.fileName) : null,
    caption: captionOf(kind, c),
    ptt: kind === 'audio' ? c.ptt === true : null,
    seconds: kind === 'audio' || kind === 'video' ? count(c.seconds) : null,
    width: count(c.width),
    height: count(c.height),
    descriptor: {
      direct_path: text(c.directPath),
      url: text(c.url),
      media_key: base64(c.mediaKey),
      file_enc_sha256: base64(c.fileEncSha256),
      file_sha256: base64(c.fileSha256),
      file_length: size
    }
  }
}

const captionOf = (kind, content) => (kind === 'image' || kind === 'video' || kind === 'document' ? text(content.caption) : null)
