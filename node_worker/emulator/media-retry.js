// Media retry: a linked device that cannot download a media message (404/410: expired or gone from the
// CDN) asks its own phone to upload it again. What Baileys (updateMediaMessage ->
// encryptMediaRetryRequest) and whatsmeow (SendMediaRetryReceipt, "sends a request to the phone to
// re-upload the media") send is `<receipt id=<message id> to=<own number, no device> type=server-error>`
// with `<encrypt><enc_p/><enc_iv/></encrypt>` (a ServerErrorReceipt{stanzaId} in AES-256-GCM under
// HKDF(mediaKey, "WhatsApp Media Retry Notification"), the message id as additional data) and
// `<rmr jid from_me participant?>`. The server routes it to the account's primary phone; the phone,
// which got the same message (or sent it), proves the request with the media key, uploads its copy again
// (same media key, so the same encrypted bytes, under a NEW direct path) and answers the device with
// `<notification from=<own number> type=mediaretry id=<message id> t>` carrying the same `<rmr>` and an
// encrypted MediaRetryNotification{stanzaId, directPath, result}. A phone that does not know the message
// answers `<error code="2"/>` instead of `<encrypt>` (whatsmeow: ErrMediaNotAvailableOnPhone). WA Web
// refuses a mediaretry notification that does not come from its own primary device.
import { proto, child, bytesOf, unixNow } from './wa.js'
import { encryptMedia, encryptRetryPayload, decryptRetryPayload } from './media-crypto.js'
import { errorFields } from './log.js'

const Result = proto.MediaRetryNotification.ResultType

export class MediaRetry {
  constructor (emu) {
    this.emu = emu
    this.requests = 0
    this.reuploads = 0
  }

  get store () { return this.emu.mediaStore }

  /** `<receipt type=server-error>` from a linked device: its phone answers after its usual delay */
  onServerErrorReceipt (conn, node) {
    const account = conn.user
    const device = conn.device
    if (!account || !device) return
    this.requests++
    const id = node.attrs.id
    const rmr = child(node, 'rmr')
    conn.log.info('media.retry_requested', { id, from_me: rmr?.attrs.from_me ?? null })
    setTimeout(() => {
      try {
        this.answer(account, device, id, node, rmr)
      } catch (err) {
        this.emu.log.warn('media.retry_failed', { id, ...errorFields(err) })
      }
    }, this.emu.settings.receiptDelayMs).unref?.()
  }

  /** the phone's answer, delivered (or queued) to the asking device and kept until it is acknowledged */
  answer (account, device, id, node, rmr) {
    const rmrAttrs = { jid: rmr?.attrs.jid, from_me: rmr?.attrs.from_me || 'false', ...(rmr?.attrs.participant ? { participant: rmr.attrs.participant } : {}) }
    const holding = this.store.holding(`${account.phone}|${id}`)
    const content = holding
      ? [this.encrypted(holding, id, node), { tag: 'rmr', attrs: rmrAttrs }]
      : [{ tag: 'rmr', attrs: rmrAttrs }, { tag: 'error', attrs: { code: '2' } }]
    const how = this.emu.deliverToDevice(account, device, {
      tag: 'notification',
      attrs: { from: account.jid, type: 'mediaretry', id, t: String(unixNow()) },
      content
    })
    this.emu.log.info('media.retry_answered', { id, held: !!holding, how })
  }

  /** `<encrypt>` with the MediaRetryNotification: SUCCESS and the new path, or why not */
  encrypted (holding, id, node) {
    const mediaKey = Buffer.from(holding.mediaKey, 'base64')
    const notification = { stanzaId: id, result: Result.GENERAL_ERROR }
    if (!this.verifyRequest(node, mediaKey, id)) {
      notification.result = Result.DECRYPTION_ERROR
    } else {
      const plain = this.store.heldCopy(holding.sha)
      if (!plain) {
        notification.result = Result.NOT_FOUND
      } else {
        const file = encryptMedia(plain, holding.kind, mediaKey)
        notification.directPath = this.store.put(file.enc, holding.kind === 'sticker' ? 'image' : holding.kind, file.fileEncSha256.toString('hex'))
        notification.result = Result.SUCCESS
        this.reuploads++
      }
    }
    const { ciphertext, iv } = encryptRetryPayload(proto.MediaRetryNotification.encode(notification).finish(), mediaKey, id)
    return { tag: 'encrypt', attrs: {}, content: [{ tag: 'enc_p', attrs: {}, content: ciphertext }, { tag: 'enc_iv', attrs: {}, content: iv }] }
  }

  /** true when the request's ServerErrorReceipt decrypts with the media key and names this message */
  verifyRequest (node, mediaKey, id) {
    const enc = child(node, 'encrypt')
    const ciphertext = bytesOf(child(enc, 'enc_p'))
    const iv = bytesOf(child(enc, 'enc_iv'))
    if (!ciphertext || !iv) return false
    try {
      return proto.ServerErrorReceipt.decode(decryptRetryPayload(ciphertext, iv, mediaKey, id)).stanzaId === id
    } catch {
      return false
    }
  }

  counters () { return { media_retry_requests: this.requests, media_reuploads: this.reuploads } }
}
