// Sending: one message or a batch to one recipient (a contact, or a group: issue 26), each answered once the server has it (server-acks.js),
// and the stored copy of a sent message for a recipient's retry receipt (Baileys' getMessage). A content
// (outbound-content.js) is text, media, a reply, a reaction, an edit, a revoke, a location, contact cards or a
// poll, each a message of its own; or a read receipt or a chat presence, which are no messages (chat-actions).
import { DisconnectReason, generateMessageIDV2, generateWAMessage, jidDecode } from 'baileys'
import { WorkerError } from '../errors.js'
import { phoneToJid } from '../phone.js'
import { baileysContent as mediaContent, openMedia, UPLOAD_IDLE_TIMEOUT_MS } from './media.js'
import { baileysContent, describe, isChatAction, mentionsOf, quotedMessage, relayOptions } from './outbound-content.js'
import { sendChatAction } from './chat-actions.js'
import { isGroupId } from './group-metadata.js'
import { SEND_FAILURE, SEND_RETRY, STATE, STATUS } from '../states.js'

export const ON_WHATSAPP_CACHE_SIZE = 10000
// A batch item failing for a reason of its own (the same item would fail again) does not hold up the ones after it.
const ALONE = [SEND_FAILURE.NOT_ON_WHATSAPP, SEND_FAILURE.INVALID_MESSAGE, SEND_FAILURE.GROUP_NOT_FOUND]

export class Sender {
  constructor (session) {
    this.session = session
    this.onWhatsAppCache = new Map()
    this.preparing = new Map() // message id -> the making of its message (a media upload), while it runs
  }

  async isOnWhatsApp (sock, jid) {
    const { settings } = this.session
    const now = Date.now()
    const cached = this.onWhatsAppCache.get(jid)
    if (cached && cached.until > now) return cached.exists
    const results = await sock.onWhatsApp(jid)
    if (results === undefined) {
      // Baileys answers undefined when the query timed out: unknown, not "not on WhatsApp"; never cached.
      throw new WorkerError(504, SEND_RETRY.WHATSAPP_TIMEOUT, 'WhatsApp did not answer whether the number is on WhatsApp; retry later.')
    }
    const exists = !!results[0]?.exists
    const ttl = exists ? settings.onWhatsAppTtlMs : settings.notOnWhatsAppTtlMs
    this.onWhatsAppCache.delete(jid)
    if (ttl > 0) this.onWhatsAppCache.set(jid, { exists, until: now + ttl })
    if (this.onWhatsAppCache.size > ON_WHATSAPP_CACHE_SIZE) this.onWhatsAppCache.delete(this.onWhatsAppCache.keys().next().value)
    return exists
  }

  /** Sends and waits for the server's ack (server-acks.js): `sent` means WhatsApp has it. */
  async sendText (phone, text, messageId) {
    return this.send(phone, { text }, messageId)
  }

  /**
   * `to`: a +E.164 number or a group id (server.js checked which); `content`: a checked content
   * (outbound-content.js parseContent). Answered once the server acked it.
   */
  async send (to, content, messageId) {
    const { id, acked } = await this.relay(to, content, messageId)
    await acked
    return { id, status: STATUS.SENT }
  }

  relayText (phone, text, messageId) { return this.relay(phone, { text }, messageId) }

  /**
   * Hands the message to the socket; `acked` settles with the server's ack (never rejects unhandled).
   * A media message is uploaded before (in storeBeforeSending): the ack's timeout starts after it.
   */
  async relay (to, content, messageId) {
    const s = this.session
    const sock = s.sock
    if (s.state !== STATE.CONNECTED || !sock) throw s.lifecycle.notConnected()
    const group = isGroupId(to)
    const jid = group ? to : phoneToJid(to)
    try {
      // A group: the account must be in it (404 group_not_found), and its metadata cached for relayMessage's
      // fan-out (group-metadata.js). A contact: on WhatsApp.
      if (group) await s.groups.assertMember(sock, jid)
      else if (!(await this.isOnWhatsApp(sock, jid))) {
        throw new WorkerError(422, SEND_FAILURE.NOT_ON_WHATSAPP, `${to} is not on WhatsApp.`)
      }
      if (isChatAction(content)) return await sendChatAction(s, sock, jid, content, messageId ?? generateMessageIDV2(sock.user?.id))
      const { id, message, resend } = await this.storeBeforeSending(sock, jid, content, messageId)
      if (s.pg && (s.sock !== sock || s.state !== STATE.CONNECTED)) throw s.lifecycle.notConnected()
      // media: the upload took its time; a socket that went away meanwhile is not the one to relay on
      if (content.media && (s.sock !== sock || s.state !== STATE.CONNECTED)) throw s.lifecycle.notConnected()
      const acked = s.acks.expect(id, s.settings.sendAckTimeoutMs)
      acked.catch(() => {}) // awaited by the caller; a relay that throws below drops it
      try {
        await sock.relayMessage(jid, message, { messageId: id, ...relayOptions(message) })
      } catch (err) {
        s.acks.forget(id)
        throw err
      }
      s.log.info({ message_id: id, ...describe(content), resend }, 'message.relayed')
      const sent = acked.then(() => s.log.info({ message_id: id }, 'message.sent'))
      // A batch awaits its acks only once all of it is relayed: meanwhile this one may fail (superseded by
      // the same id again, a timeout, a drop). The caller still sees that when it awaits; the process must
      // not take it for an unhandled rejection, which would end the worker.
      sent.catch(() => {})
      return { id, acked: sent }
    } catch (err) {
      throw this.relayFailure(err, sock)
    }
  }

  // Known before the server acks it, and its content stored (fsync'ed) before it leaves, so that a
  // retry receipt is answered even after a crash. A repeated id (a resend after a crash) goes out
  // with the very protobuf stored the first time: the recipient sees one message, and media is never
  // uploaded twice. A send of an id whose message is still being made (a media upload) waits for it.
  async storeBeforeSending (sock, jid, content, messageId) {
    const s = this.session
    const id = messageId ?? generateMessageIDV2(sock.user?.id)
    const sentStore = s.sentMessages
    if (!sentStore) throw s.lifecycle.notConnected()
    // Sessions in PostgreSQL: a former owner stores and hands nothing to Baileys (409 not_owner, fenced).
    if (s.pg) await s.fencing.assertOwner()
    s.sentIds.add(id)
    for (let pending = this.preparing.get(id); pending; pending = this.preparing.get(id)) await pending.catch(() => {})
    const stored = sentStore.get(id)
    const resend = !!stored && jidDecode(stored.jid)?.user === jidDecode(jid)?.user
    let message = resend ? stored.message : null
    if (!message) {
      const making = this.makeAndStore(sock, jid, content, id)
      this.preparing.set(id, making)
      try {
        message = await making
      } finally {
        if (this.preparing.get(id) === making) this.preparing.delete(id)
      }
    }
    return { id, message, resend }
  }

  async makeAndStore (sock, jid, content, id) {
    const s = this.session
    // a reply: Baileys writes the contextInfo from the quoted message (generateWAMessageFromContent)
    const quoted = quotedMessage(content.quoted, jid)
    const message = content.media
      ? await this.makeMedia(sock, jid, content, id, quoted)
      : (await generateWAMessage(jid, { ...baileysContent(content, jid), ...mentionsOf(content) }, { userJid: sock.user?.id, messageId: id, logger: s.baileysLog, quoted })).message
    try {
      await s.sentMessages.put(id, jid, message)
    } catch (err) {
      if (err?.code === SEND_RETRY.NOT_OWNER) { // the sent messages are fenced with the session (PostgreSQL)
        s.fencing.fence(err.message)
        throw s.fencing.notOwner()
      }
      s.log.error({ err, message_id: id }, 'message.store_failed')
      throw new WorkerError(500, SEND_RETRY.STORE_ERROR, 'The worker could not store the message before sending it; nothing was sent.')
    }
    return message
  }

  // Reads the file by its sha256 (hashed on the way), encrypts and uploads it (Baileys), and returns the
  // message that names the upload. Logged: kind, size, sha256 prefix, never the caption or bytes.
  async makeMedia (sock, jid, content, id, quoted) {
    const s = this.session
    const { media } = content
    const started = Date.now()
    const file = await openMedia(s.settings.mediaDir, media.sha256)
    try {
      const generated = await generateWAMessage(jid, { ...mediaContent(media, file.stream), ...mentionsOf(content) }, {
        userJid: sock.user?.id,
        quoted,
        messageId: id,
        logger: s.baileysLog,
        upload: sock.waUploadToServer,
        mediaUploadTimeoutMs: UPLOAD_IDLE_TIMEOUT_MS
      })
      file.check(generated.message, media.kind) // the bytes Baileys read and encrypted are the named ones
      s.log.info({ message_id: id, kind: media.kind, size: file.size, sha256_prefix: media.sha256.slice(0, 12), upload_ms: Date.now() - started },
        'message.media_uploaded')
      return generated.message
    } catch (err) {
      s.log.warn({ message_id: id, kind: media.kind, size: file.size, sha256_prefix: media.sha256.slice(0, 12), code: err?.code ?? null, reason: err?.message ?? null },
        'message.media_failed')
      throw err
    } finally {
      file.close()
    }
  }

  // What a send that threw answers: its own WorkerError, not_owner once fenced, not_connected when the
  // connection went away under it, else WhatsApp's failure.
  relayFailure (err, sock) {
    const s = this.session
    if (err instanceof WorkerError) return err
    if (s.state === STATE.FENCED) return s.fencing.notOwner()
    if (s.sock !== sock || s.state !== STATE.CONNECTED || err?.output?.statusCode === DisconnectReason.connectionClosed) {
      // The connection went away under the send (a disconnect, a drop): a state, not a failure.
      return new WorkerError(409, SEND_RETRY.NOT_CONNECTED, `The WhatsApp connection closed while sending: ${err.message}.`,
        { state: s.state, last_error: s.lastError })
    }
    s.log.warn({ err }, 'message.send_failed')
    return new WorkerError(502, SEND_RETRY.WHATSAPP_ERROR, `WhatsApp did not take the message: ${err.message}.`)
  }

  /**
   * Messages to one recipient, in order (POST /send/batch). A message that cannot go for its own reason
   * (not on WhatsApp; a presence WhatsApp cannot take, chat-actions.js) fails alone; any other failure stops the
   * batch there, and the messages after it are `not_attempted`: sending them would overtake the one that will be
   * retried.
   */
  async sendBatch (items) {
    const relayed = [] // per item: { id, acked } or { id, error }, in order
    let stopped = null
    for (const item of items) {
      if (stopped) {
        relayed.push({ id: item.id, error: { status: 409, code: SEND_RETRY.NOT_ATTEMPTED, message: `Not sent: an earlier message of this batch failed (${stopped}).` } })
        continue
      }
      try {
        const { phone_number: phone, group_id: group, id, ...content } = item // the rest is the checked content (server.js)
        relayed.push(await this.relay(group ?? phone, content, id))
      } catch (err) {
        const error = this.asWorkerError(err, item.id)
        relayed.push({ id: item.id, error: { status: error.status, code: error.code, message: error.message, ...error.details } })
        if (!ALONE.includes(error.code)) stopped = error.code
      }
    }
    // All of the run is on the wire in order; now the server's acks, one round trip for the run.
    const results = []
    for (const r of relayed) {
      if (!r.acked) { results.push(r); continue }
      try {
        await r.acked
        results.push({ id: r.id, status: STATUS.SENT })
      } catch (err) {
        const error = this.asWorkerError(err, r.id)
        results.push({ id: r.id, error: { status: error.status, code: error.code, message: error.message, ...error.details } })
      }
    }
    return { results }
  }

  asWorkerError (err, id) {
    if (err instanceof WorkerError) return err
    this.session.log.error({ err, message_id: id }, 'message.send_failed')
    return new WorkerError(500, SEND_RETRY.WORKER_ERROR, 'The worker failed while sending.')
  }

  // getMessage: the stored copy of a message this worker sent, for the recipient it was sent to.
  async storedMessage (key) {
    const s = this.session
    const entry = s.sentMessages?.get(key?.id)
    if (!entry) {
      s.log.info({ message_id: key?.id ?? null }, 'message.retry_not_found')
      return undefined
    }
    const asker = jidDecode(key.remoteJid ?? '')
    let askerPhone = asker?.server === 's.whatsapp.net' ? asker.user : null
    if (asker?.server === 'lid') {
      const pn = await s.sock?.signalRepository?.lidMapping?.getPNForLID(key.remoteJid).catch(() => null)
      askerPhone = pn ? jidDecode(pn)?.user : null
    }
    // a group's member asks for a group message: the message must be that group's
    const otherGroup = asker?.server === 'g.us' && key.remoteJid !== entry.jid
    if (otherGroup || (askerPhone && askerPhone !== jidDecode(entry.jid)?.user)) {
      s.log.warn({ message_id: key.id }, 'message.retry_refused_other_recipient')
      return undefined
    }
    s.log.info({ message_id: key.id }, 'message.retry_resent')
    return entry.message
  }
}
