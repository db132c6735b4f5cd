// Media in chat messages, on the side of the emulated phones:
//   * a contact's phone sending media (POST /contacts/{phone}/messages with `media`): it encrypts the
//     bytes (media-crypto.js), uploads them to the media store and builds the imageMessage / videoMessage /
//     audioMessage (ptt) / documentMessage / stickerMessage that its Signal session then carries;
//   * a contact's phone receiving media from a linked device: it downloads the directPath from the media
//     store, checks fileEncSha256, the MAC and fileSha256, decrypts, and its inbox entry gets `media`
//     (`error` in it when a check failed, never dropped);
//   * the account's phone keeping its copy of both (every message to or from the account reaches its
//     phone too), so that it can upload it again when a linked device asks (media-retry.js).
import { encryptMedia, decryptMedia, sha256, MediaVerifyError } from './media-crypto.js'
import { apiError } from './errors.js'
import { unixNow } from './wa.js'

export const MEDIA_KINDS = ['image', 'video', 'audio', 'document', 'sticker']
// Baileys' MIMETYPE_MAP, the defaults of its sendMessage
const DEFAULT_MIMETYPE = { image: 'image/jpeg', video: 'video/mp4', audio: 'audio/ogg; codecs=opus', document: 'application/pdf', sticker: 'image/webp' }
// WhatsApp's limits: 16 MB for photos, videos, audio and stickers; documents are far larger (2 GB today),
// bounded here by what the media host takes in one upload (64 MiB, media-server.js; WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES)
// less the encryption's padding and MAC
const MAX_MEDIA_BYTES = 16 * 1024 * 1024
// The containers WhatsApp clients put media in: a disappearing chat's messages come in ephemeralMessage, a
// view-once photo, video or voice note in viewOnceMessageV2 (the media itself marked viewOnce), a document
// with a caption in documentWithCaptionMessage.
const WRAPPERS = {
  ephemeral: { field: 'ephemeralMessage', kinds: MEDIA_KINDS },
  view_once: { field: 'viewOnceMessageV2', kinds: ['image', 'video', 'audio'] },
  document_with_caption: { field: 'documentWithCaptionMessage', kinds: ['document'] }
}
export const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024 - 64
/** the largest document a media host taking `maxUploadBytes` in one upload can carry */
export const maxDocumentBytes = (maxUploadBytes) => maxUploadBytes - 64

/** the media content of a message, unwrapped: { kind, field, content } or null */
export const mediaOf = (msg) => {
  if (!msg) return null
  const inner = msg.ephemeralMessage?.message || msg.viewOnceMessage?.message || msg.viewOnceMessageV2?.message ||
    msg.documentWithCaptionMessage?.message || msg.deviceSentMessage?.message
  if (inner) return mediaOf(inner)
  for (const kind of MEDIA_KINDS) {
    const content = msg[`${kind}Message`]
    if (content) return { kind, content }
  }
  return null
}

const str = (v, name, max = 1024) => {
  if (v == null) return undefined
  if (typeof v !== 'string' || v.length > max) throw apiError(400, 'invalid_media', `media.${name} must be a string of at most ${max} characters`)
  return v
}

/** the `media` object of POST /contacts/{phone}/messages, checked (a document: up to `maxDocument` bytes) */
export const parseMediaRequest = (media, maxDocument = MAX_DOCUMENT_BYTES) => {
  if (!media || typeof media !== 'object' || Array.isArray(media)) throw apiError(400, 'invalid_media', '"media" must be an object')
  if (!MEDIA_KINDS.includes(media.kind)) throw apiError(400, 'invalid_media', `media.kind must be one of ${MEDIA_KINDS.join(', ')}`)
  if (typeof media.base64 !== 'string' || !media.base64.length || !/^[A-Za-z0-9+/]*={0,2}$/.test(media.base64)) {
    throw apiError(400, 'invalid_media', 'media.base64 must be the file, base64-encoded')
  }
  const bytes = Buffer.from(media.base64, 'base64')
  const max = media.kind === 'document' ? maxDocument : MAX_MEDIA_BYTES
  if (!bytes.length || bytes.length > max) throw apiError(400, 'invalid_media', `the file of ${media.kind === 'document' ? 'a document' : 'this kind'} must be 1 byte to ${max} bytes`)
  if (media.ptt != null && typeof media.ptt !== 'boolean') throw apiError(400, 'invalid_media', 'media.ptt must be a boolean')
  if (media.ptt && media.kind !== 'audio') throw apiError(400, 'invalid_media', 'media.ptt is for audio only')
  if (media.wrapper != null && !WRAPPERS[media.wrapper]?.kinds.includes(media.kind)) {
    throw apiError(400, 'invalid_media', `media.wrapper must be one of ${Object.entries(WRAPPERS).map(([w, { kinds }]) => `${w} (${kinds.join(', ')})`).join(', ')}`)
  }
  return {
    wrapper: media.wrapper ?? null,
    kind: media.kind,
    bytes,
    mimetype: str(media.mimetype, 'mimetype', 255) || DEFAULT_MIMETYPE[media.kind],
    filename: str(media.filename, 'filename', 255),
    caption: str(media.caption, 'caption', 4096),
    ptt: media.ptt === true ? true : undefined
  }
}

export class MediaMessages {
  constructor (emu) {
    this.emu = emu
  }

  get server () { return this.emu.mediaServer }
  get store () { return this.emu.mediaStore }

  /**
   * the contact's phone encrypts and uploads `req` (parseMediaRequest) and returns the Message object
   * (not yet encoded) that carries it
   */
  upload (req) {
    const file = encryptMedia(req.bytes, req.kind)
    const directPath = this.store.put(file.enc, req.kind === 'sticker' ? 'image' : req.kind, file.fileEncSha256.toString('hex'))
    this.store.hold(file.fileSha256.toString('hex'), req.bytes)
    const content = {
      url: `${this.server.origin}${directPath}&mms3=true`,
      directPath,
      mediaKey: file.mediaKey,
      mediaKeyTimestamp: unixNow(),
      fileSha256: file.fileSha256,
      fileEncSha256: file.fileEncSha256,
      fileLength: file.fileLength,
      mimetype: req.mimetype
    }
    if (req.caption != null && req.kind !== 'sticker' && req.kind !== 'audio') content.caption = req.caption
    if (req.kind === 'audio') content.ptt = !!req.ptt
    if (req.kind === 'document') {
      content.fileName = req.filename || 'file'
      content.title = req.filename || 'file'
    }
    if (req.wrapper === 'view_once') content.viewOnce = true
    const message = { [`${req.kind}Message`]: content }
    return req.wrapper ? { [WRAPPERS[req.wrapper].field]: { message } } : message
  }

  /** what the account's phone keeps of a media message it sent or got, for a later re-upload */
  remember (account, { id, chatJid, fromMe, media }) {
    this.store.remember(`${account.phone}|${id}`, {
      chat: chatJid,
      fromMe,
      kind: media.kind,
      mediaKey: Buffer.from(media.content.mediaKey).toString('base64'),
      sha: Buffer.from(media.content.fileSha256).toString('hex')
    })
  }

  /**
   * the contact's phone `target` downloads and checks the media of a message from `sender`; returns the
   * inbox entry's `media` ({kind, mimetype, size, sha256, filename?, caption?, ptt?, error?}), or undefined
   * for a message without media
   */
  receive (target, sender, id, msg) {
    const media = mediaOf(msg)
    if (!media) return undefined
    const c = media.content
    const out = {
      kind: media.kind,
      mimetype: c.mimetype || null,
      size: null,
      sha256: null,
      ...(c.fileName != null ? { filename: c.fileName } : {}),
      ...(c.caption != null ? { caption: c.caption } : {}),
      ...(media.kind === 'audio' ? { ptt: !!c.ptt } : {})
    }
    try {
      const plain = this.download(media)
      out.size = plain.length
      out.sha256 = sha256(plain).toString('hex')
      this.store.hold(out.sha256, plain) // the sender's phone has the original too
      this.remember(sender, { id, chatJid: target.jid, fromMe: true, media })
      this.emu.log.info('media.received', { id, kind: media.kind, bytes: plain.length })
    } catch (err) {
      out.error = { code: err.code || 'download_failed', message: err.message }
      this.emu.log.warn('media.verify_failed', { id, kind: media.kind, code: out.error.code })
    }
    return out
  }

  /** the plaintext of a media message, downloaded from its directPath and verified; throws MediaVerifyError */
  download ({ kind, content }) {
    if (!content.directPath || !content.mediaKey) throw new MediaVerifyError('no_direct_path', 'the message has no directPath or mediaKey')
    const got = this.store.get(content.directPath)
    if (got.status !== 200) throw new MediaVerifyError(`http_${got.status}`, `the media host answered ${got.status}`)
    return decryptMedia(got.bytes, kind, content)
  }
}
