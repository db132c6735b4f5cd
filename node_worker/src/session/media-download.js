// POST /media/download (issue 24): the gateway asks for the file of a contact's media message, naming it by
// the `descriptor` of its `message` event (media-info.js), and gets the answer once the decrypted, verified
// file is durable in WA_MEDIA_DIR under its sha256 (media-fetch.js). What goes wrong is answered so that
// the gateway knows whether to try again:
//   * the media host no longer has it (403/404/410, WhatsApp's expiry): the phone is asked to upload it
//     again (a media retry, Baileys' updateMediaMessage) and the new direct path is downloaded; when the
//     phone cannot, 410 media_gone;
//   * a check fails (fileEncSha256, the MAC, fileSha256): one fresh download, then 422 media_corrupt;
//   * the network, TLS or a 5xx: 502 media_download_failed (later may work);
//   * no connection (needed for the media retry): the worker's usual 409 not_connected.
// The descriptor holds the media key: no log line names it, its paths or URLs.
import { DEF_MEDIA_HOST, getMediaKeys, getUrlFromDirectPath, proto } from 'baileys'
import { WorkerError } from '../errors.js'
import { sandboxMediaAgents } from '../sandbox-trust.js'
import { MEDIA_DOWNLOAD_ERROR, SEND_RETRY, STATE } from '../states.js'
import { DownloadFailure, fetchIntoStore, storedSize } from './media-fetch.js'
import { MEDIA_KINDS } from './media-info.js'

export const DOWNLOAD_FIELDS = Object.freeze(['id', 'chat_jid', 'kind', 'descriptor'])
export const DESCRIPTOR_FIELDS = Object.freeze(['direct_path', 'url', 'media_key', 'file_enc_sha256', 'file_sha256', 'file_length'])
// A media host that sends nothing for this long fails the download (502, retried by the gateway).
export const DOWNLOAD_IDLE_TIMEOUT_MS = 60000
// Baileys' refreshMediaConn and updateMediaMessage wait without a limit of their own (rc14): bounded here.
export const MEDIA_CONN_TIMEOUT_MS = 10000
export const MEDIA_RETRY_TIMEOUT_MS = 30000

const invalid = (message) => new WorkerError(400, MEDIA_DOWNLOAD_ERROR.INVALID_MEDIA, message)
const MESSAGE_ID = /^[A-Za-z0-9_-]{1,128}$/
const CONTACT_JID = /^\d{1,20}@(s\.whatsapp\.net|lid)$/
const DIRECT_PATH = /^\/[\x21-\x7e]{1,2047}$/

// a base64 field of exactly `length` bytes (canonical base64, as the event writes it)
const bytesField = (value, name, length) => {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'base64') : null
  if (!bytes || bytes.length !== length || bytes.toString('base64') !== value) throw invalid(`descriptor.${name} must be ${length} bytes in base64.`)
  return bytes
}

const mediaUrl = (value) => {
  if (value == null) return null
  let url = null
  try {
    url = typeof value === 'string' && value.length <= 4096 ? new URL(value) : null
  } catch { /* refused below */ }
  if (url?.protocol !== 'https:') throw invalid('descriptor.url must be an https URL or null.')
  return value
}

/**
 * The body of POST /media/download, checked (400 invalid_media; a field it does not take: 400 unknown_field,
 * through `onlyKnown`): { id, chatJid, kind, descriptor, keys: { mediaKey, encSha256, sha256, length } }.
 */
export function parseDownload (body, onlyKnown) {
  const { id, chat_jid: chatJid, kind, descriptor } = body
  if (typeof id !== 'string' || !MESSAGE_ID.test(id)) throw invalid('id must be the WhatsApp message id (1 to 128 letters, digits, - or _).')
  if (typeof chatJid !== 'string' || !CONTACT_JID.test(chatJid)) throw invalid('chat_jid must be a contact\'s chat (<digits>@s.whatsapp.net or <digits>@lid).')
  if (!MEDIA_KINDS.includes(kind)) throw invalid(`kind must be one of ${MEDIA_KINDS.join(', ')}.`)
  if (descriptor === null || typeof descriptor !== 'object' || Array.isArray(descriptor)) throw invalid('descriptor must be an object.')
  onlyKnown(Object.keys(descriptor), DESCRIPTOR_FIELDS, 'field of descriptor')
  const directPath = descriptor.direct_path ?? null
  if (directPath !== null && (typeof directPath !== 'string' || !DIRECT_PATH.test(directPath))) throw invalid('descriptor.direct_path must be a path (/...) or null.')
  const url = mediaUrl(descriptor.url)
  if (directPath === null && url === null) throw invalid('descriptor needs a direct_path or a url.')
  const length = descriptor.file_length ?? null
  if (length !== null && (!Number.isSafeInteger(length) || length < 0)) throw invalid('descriptor.file_length must be a whole number >= 0 or null.')
  const keys = {
    mediaKey: bytesField(descriptor.media_key, 'media_key', 32),
    encSha256: bytesField(descriptor.file_enc_sha256, 'file_enc_sha256', 32),
    sha256: bytesField(descriptor.file_sha256, 'file_sha256', 32),
    length
  }
  return {
    id,
    chatJid,
    kind,
    descriptor: Object.freeze({
      direct_path: directPath,
      url,
      media_key: descriptor.media_key,
      file_enc_sha256: descriptor.file_enc_sha256,
      file_sha256: descriptor.file_sha256,
      file_length: length
    }),
    keys
  }
}

const withTimeout = (promise, ms, what) => {
  let timer
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

export class MediaDownloads {
  constructor (session) {
    this.session = session
    this.running = new Map() // "<chat>|<id>" -> the download of that message's file, while it runs
  }

  /** `request`: parseDownload's; answers { sha256, size, descriptor } once the file is in the store. */
  async download (request) {
    const s = this.session
    const sha256 = request.keys.sha256.toString('hex')
    const size = await storedSize(s.settings.mediaDir, sha256).catch((err) => { throw storeFailure(err) })
    if (size !== null) return { sha256, size, descriptor: request.descriptor } // already there: nothing to fetch
    const key = `${request.chatJid}|${request.id}`
    let running = this.running.get(key)
    if (!running) {
      running = this.fetchWithRecovery(request).finally(() => this.running.delete(key))
      this.running.set(key, running)
    }
    return running
  }

  async fetchWithRecovery (request) {
    const s = this.session
    if (s.state !== STATE.CONNECTED || !s.sock) throw s.lifecycle.notConnected()
    const started = Date.now()
    const log = { message_id: request.id, kind: request.kind }
    let descriptor = request.descriptor
    let reuploaded = false
    let refetched = false
    for (;;) {
      try {
        const got = await this.fetchOnce(request, descriptor)
        s.log.info({ ...log, size: got.size, sha256_prefix: got.sha256.slice(0, 12), reuploaded, refetched, ms: Date.now() - started }, 'media.downloaded')
        return { ...got, descriptor }
      } catch (err) {
        if (!(err instanceof DownloadFailure)) throw err
        s.log.warn({ ...log, reason: err.reason, status: err.status, error: err.message, reuploaded, refetched }, 'media.download_failed')
        if (err.reason === 'gone' && !reuploaded) {
          reuploaded = true
          descriptor = await this.reupload(request, descriptor)
        } else if (err.reason === 'corrupt' && !refetched) {
          refetched = true // a copy damaged on the way: one fresh download
        } else {
          throw answer(err)
        }
      }
    }
  }

  // One download of `descriptor`'s path, from the host its url names (else WhatsApp's), as Baileys would.
  async fetchOnce (request, descriptor) {
    const s = this.session
    const host = descriptor.url ? new URL(descriptor.url).host : DEF_MEDIA_HOST
    const url = descriptor.direct_path ? getUrlFromDirectPath(descriptor.direct_path, host) : descriptor.url
    const { iv, cipherKey, macKey } = await getMediaKeys(request.keys.mediaKey, request.kind)
    return fetchIntoStore({
      url,
      keys: { iv, cipherKey, macKey },
      expect: request.keys,
      dir: s.settings.mediaDir,
      dispatcher: this.dispatcher(),
      idleMs: DOWNLOAD_IDLE_TIMEOUT_MS
    })
  }

  // The session's dispatcher for Baileys' downloads (session/connection.js): the proxy's, else the sandbox
  // media CA's, else the default one.
  dispatcher () {
    const s = this.session
    return s.proxy?.dispatcher ?? sandboxMediaAgents(s.settings.sandboxMediaCa)?.dispatcher ?? undefined
  }

  /**
   * The media retry: the phone uploads the file again under a new direct path (Baileys' updateMediaMessage,
   * after a fresh media_conn so that the new URL names the host media_conn gives). Both are bounded: rc14's
   * can wait for ever. The descriptor with the new path, or 410 media_gone (409 when the connection went).
   */
  async reupload (request, descriptor) {
    const s = this.session
    const sock = s.sock
    if (s.state !== STATE.CONNECTED || !sock) throw s.lifecycle.notConnected()
    const content = {
      mediaKey: request.keys.mediaKey,
      directPath: descriptor.direct_path,
      url: descriptor.url,
      fileEncSha256: request.keys.encSha256,
      fileSha256: request.keys.sha256,
      ...(request.keys.length === null ? {} : { fileLength: request.keys.length })
    }
    const message = {
      key: { remoteJid: request.chatJid, fromMe: false, id: request.id },
      message: proto.Message.fromObject({ [`${request.kind}Message`]: content })
    }
    try {
      await withTimeout(sock.refreshMediaConn(true), MEDIA_CONN_TIMEOUT_MS, 'media_conn')
      const updated = await withTimeout(sock.updateMediaMessage(message), MEDIA_RETRY_TIMEOUT_MS, 'the phone\'s re-upload')
      const c = updated.message[`${request.kind}Message`]
      s.log.info({ message_id: request.id, kind: request.kind }, 'media.reuploaded')
      return Object.freeze({ ...descriptor, direct_path: c.directPath ?? null, url: c.url ?? null })
    } catch (err) {
      if (s.sock !== sock || s.state !== STATE.CONNECTED) throw s.lifecycle.notConnected()
      s.log.warn({ message_id: request.id, kind: request.kind, status: err?.output?.statusCode ?? null, error: err?.message ?? String(err) }, 'media.reupload_failed')
      throw new WorkerError(410, MEDIA_DOWNLOAD_ERROR.MEDIA_GONE,
        `The media is gone from WhatsApp's media host and the phone did not upload it again (${err?.message ?? err}).`)
    }
  }
}

// What a download that failed for good answers.
const answer = (failure) => {
  switch (failure.reason) {
    case 'gone': return new WorkerError(410, MEDIA_DOWNLOAD_ERROR.MEDIA_GONE,
      `The media is gone from WhatsApp's media host, also after the phone uploaded it again (${failure.message}).`)
    case 'corrupt': return new WorkerError(422, MEDIA_DOWNLOAD_ERROR.MEDIA_CORRUPT,
      `The downloaded media failed its check twice (${failure.message}); nothing was stored.`)
    case 'local': return storeFailure(failure)
    default: return new WorkerError(502, MEDIA_DOWNLOAD_ERROR.MEDIA_DOWNLOAD_FAILED,
      `The media could not be downloaded (${failure.message}); retry later.`)
  }
}

const storeFailure = (err) => new WorkerError(500, SEND_RETRY.WORKER_ERROR, `The media store (WA_MEDIA_DIR) failed: ${err.code ?? err.message}.`)
