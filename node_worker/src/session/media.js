// Media a send carries (issue 24): the request's `media` object checked, and the file read from the
// gateway's media store (WA_MEDIA_DIR, service/media/store.py: `<sha256[:2]>/<sha256[2:]>`) by the sha256
// the gateway names, never by a path from the request. A file that does not hash to its name fails the send
// (422 media_corrupt) before anything is uploaded; the bytes Baileys encrypted are checked again (its
// fileSha256) before the message is stored or sent.
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { WorkerError } from '../errors.js'
import { SEND_FAILURE, SEND_RETRY } from '../states.js'

export const MEDIA_KINDS = Object.freeze(['image', 'video', 'audio', 'document', 'sticker'])
export const MEDIA_FIELDS = Object.freeze(['kind', 'sha256', 'mimetype', 'filename', 'caption', 'ptt'])
const SHA256 = /^[0-9a-f]{64}$/
// type/subtype with optional parameters (`audio/ogg; codecs=opus`), printable ASCII only
const MIMETYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;[\x20-\x7e]*)?$/
const CAPTION_KINDS = ['image', 'video', 'document']
export const MAX_CAPTION = 65536
export const MAX_FILENAME = 255
// Baileys' upload has no bound of its own: an upload whose socket stays idle this long fails (502, retried)
export const UPLOAD_IDLE_TIMEOUT_MS = 60000

const invalid = (message) => new WorkerError(400, SEND_FAILURE.INVALID_MEDIA, message)
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * The `media` of a send, checked (400 invalid_media; a field it does not take: 400 unknown_field, through
 * `onlyKnown`): { kind, sha256, mimetype, filename?, caption?, ptt? }.
 */
export function parseMedia (media, onlyKnown) {
  if (media === null || typeof media !== 'object' || Array.isArray(media)) throw invalid('media must be an object.')
  onlyKnown(Object.keys(media), MEDIA_FIELDS, 'field of media')
  const { kind, sha256, mimetype, filename, caption, ptt } = media
  if (!MEDIA_KINDS.includes(kind)) throw invalid(`media.kind must be one of ${MEDIA_KINDS.join(', ')}.`)
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) throw invalid('media.sha256 must be 64 lowercase hex digits.')
  if (typeof mimetype !== 'string' || mimetype.length > 255 || !MIMETYPE.test(mimetype)) throw invalid('media.mimetype must be a MIME type (type/subtype).')
  const out = { kind, sha256, mimetype }
  if (filename != null) {
    if (kind !== 'document') throw invalid('media.filename is for a document only.')
    if (typeof filename !== 'string' || !filename.trim() || filename.length > MAX_FILENAME || CONTROL.test(filename)) {
      throw invalid(`media.filename must be a name of 1 to ${MAX_FILENAME} characters.`)
    }
    out.filename = filename
  }
  if (caption != null) {
    if (!CAPTION_KINDS.includes(kind)) throw invalid(`media.caption is for ${CAPTION_KINDS.join(', ')} only.`)
    if (typeof caption !== 'string' || caption.length > MAX_CAPTION) throw invalid(`media.caption must be a string of at most ${MAX_CAPTION} characters.`)
    if (caption !== '') out.caption = caption
  }
  if (ptt != null) {
    if (kind !== 'audio') throw invalid('media.ptt is for audio only.')
    if (typeof ptt !== 'boolean') throw invalid('media.ptt must be true or false.')
    if (ptt) out.ptt = true
  }
  return Object.freeze(out)
}

/** The store's file of a sha256 (as service/media/store.py FileStore.path). */
export const mediaPath = (dir, sha256) => path.join(dir, sha256.slice(0, 2), sha256.slice(2))

/**
 * Opens the media file of `sha256`: { stream, size, close, check }. 422 media_missing when it is not there,
 * 422 media_corrupt when its bytes do not hash to the name (read once, before Baileys sees it: nothing
 * is uploaded). `stream` then reads it again for Baileys and never errors: Baileys' encryptedStream destroys
 * its temporary file's stream with a write still pending when its source fails, an uncaught error that
 * would end the worker. A read that fails ends the stream early instead; `check(message)` then throws, as
 * it does when the bytes Baileys hashed (its fileSha256) are not the named ones.
 */
export async function openMedia (dir, sha256) {
  let handle
  try {
    handle = await fs.open(mediaPath(dir, sha256), 'r')
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
      throw new WorkerError(422, SEND_FAILURE.MEDIA_MISSING, `The media file ${sha256.slice(0, 12)}... is not in the media store (WA_MEDIA_DIR).`)
    }
    throw readFailure(err)
  }
  let size
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' })
    size = st.size
    const hash = createHash('sha256')
    for await (const chunk of handle.createReadStream({ start: 0, autoClose: false })) hash.update(chunk)
    if (hash.digest('hex') !== sha256) throw corrupt(sha256)
  } catch (err) {
    await handle.close().catch(() => {})
    throw readFailure(err)
  }
  const file = handle.createReadStream({ start: 0 }) // closes the handle at its end or destroy
  const { stream, failure } = endOnError(file)
  return {
    stream,
    size,
    close: () => { file.destroy(); stream.destroy() },
    check: (message, kind) => {
      if (failure()) throw readFailure(failure())
      const got = message?.[`${kind}Message`]?.fileSha256
      if (!got || Buffer.from(got).toString('hex') !== sha256) throw corrupt(sha256)
    }
  }
}

/** `source`'s bytes in a stream that ends, never errors, when `source` fails; `failure()` says with what. */
export function endOnError (source) {
  const stream = new PassThrough()
  let failed = null
  source.on('error', (err) => {
    failed = err
    source.unpipe(stream)
    stream.end()
  })
  source.pipe(stream)
  return { stream, failure: () => failed }
}

const corrupt = (sha256) => new WorkerError(422, SEND_FAILURE.MEDIA_CORRUPT,
  `The media file ${sha256.slice(0, 12)}... does not hash to its name: it was damaged on disk; send it again.`)

const readFailure = (err) => err instanceof WorkerError
  ? err
  : new WorkerError(500, SEND_RETRY.WORKER_ERROR, `The worker could not read the media file: ${err.code ?? err.message}.`)

/** Baileys' content (AnyMediaMessageContent, rc14 Utils/messages.js) for a checked media and its stream. */
export function baileysContent (media, stream) {
  const source = { stream }
  // No thumbnail: Baileys would make one with sharp/jimp (images) or ffmpeg (videos); null skips it.
  const noThumbnail = { jpegThumbnail: null }
  switch (media.kind) {
    case 'image': return { image: source, mimetype: media.mimetype, caption: media.caption, ...noThumbnail }
    case 'video': return { video: source, mimetype: media.mimetype, caption: media.caption, ...noThumbnail }
    case 'audio': return { audio: source, mimetype: media.mimetype, ...(media.ptt ? { ptt: true } : {}) }
    case 'document': return { document: source, mimetype: media.mimetype, fileName: media.filename, caption: media.caption }
    case 'sticker': return { sticker: source, mimetype: media.mimetype }
  }
  throw new Error(`unknown media kind ${media.kind}`)
}
