// Messaging: 1:1 message send with ack and delivery receipt, device receipts, contact -> account
// messages, receipts from contacts, and routing to other companion devices (the phone's history sync
// is in history.js). Lookups (usync, prekey bundles) are in lookups.js, retry receipts in retries.js.
import { proto, child, childrenByTag, bytesOf, unixNow, jidDecode, unpadMessage } from './wa.js'
import { SignalParty } from './signal-party.js'
import { randomId } from './crypto.js'
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'
import { errorFields } from './log.js'
import { parseMediaRequest, mediaOf, maxDocumentBytes } from './media-messages.js'
import { parseAction } from './conversation.js'

const safeDecode = (jid) => {
  try { return jid ? jidDecode(jid) : undefined } catch { return undefined }
}
const textOf = (msg) => {
  if (!msg) return null
  if (typeof msg.conversation === 'string' && msg.conversation) return msg.conversation
  if (msg.extendedTextMessage?.text != null) return msg.extendedTextMessage.text
  const inner = msg.ephemeralMessage?.message || msg.viewOnceMessage?.message || msg.documentWithCaptionMessage?.message
  if (inner) return textOf(inner)
  return null
}
const kindOf = (msg) => {
  if (!msg) return 'unknown'
  for (const k of Object.keys(msg)) {
    if (k !== 'messageContextInfo' && msg[k] != null) return k
  }
  return 'unknown'
}

export class Messaging {
  constructor (emu) {
    this.emu = emu
  }

  get dir () { return this.emu.directory }

  // ---------------------------------------------------------------- device -> network
  /** <message> sent by a logged-in companion */
  async onClientMessage (conn, node) {
    const id = node.attrs.id
    const to = node.attrs.to
    if (!conn.device || !id || !to) {
      conn.log.debug('message.ignored', { reason: !conn.device ? 'not_logged_in' : 'missing_id_or_to' })
      return
    }
    const sender = conn.user
    const senderDevice = conn.device
    const chat = safeDecode(to)
    if (chat?.server === 'g.us') return this.emu.groupMessaging.onClientMessage(conn, node) // group-messaging.js
    let chatUser = chat ? this.dir.resolve(chat) : undefined
    if (!chatUser && chat?.server === 's.whatsapp.net' && normalizePhone(chat.user)) chatUser = this.dir.ensure(chat.user)
    const targets = []
    const participants = child(node, 'participants')
    if (participants) {
      for (const t of childrenByTag(participants, 'to')) {
        const enc = child(t, 'enc')
        if (enc) targets.push({ jid: t.attrs.jid, enc })
      }
    } else {
      const enc = child(node, 'enc')
      if (enc) targets.push({ jid: to, enc })
    }
    const ackAttrs = { class: 'message', id, from: to, t: String(unixNow()) }
    if (!chatUser || !chatUser.onWhatsApp) {
      // the recipient is not on WhatsApp: the server refuses the stanza
      conn.log.info('message.rejected', { id, reason: 'recipient_not_on_whatsapp' })
      conn.sendNode({ tag: 'ack', attrs: { ...ackAttrs, error: '404' } })
      return
    }
    conn.sendNode({ tag: 'ack', attrs: ackAttrs })
    conn.log.info('message.accepted', { id, devices: targets.length, type: node.attrs.type || null, category: node.attrs.category || null })
    const chatForm = chat.server === 'lid' ? 'lid' : 'pn'
    let deliveredToContactPhone = false
    let retryFromContactPhone = false
    for (const { jid, enc } of targets) {
      const d = safeDecode(jid)
      const target = d ? this.dir.resolve(d) : undefined
      if (!target || !target.onWhatsApp) continue
      const deviceId = d.device || 0
      if (deviceId === 0) {
        const r = await this.phoneReceives(target, sender, senderDevice, node, enc, chatForm)
        if (r === 'stored') deliveredToContactPhone = true
        if (r === 'retry') retryFromContactPhone = true
      } else {
        const dev = target.devices.get(deviceId)
        if (!dev || (target === sender && dev === senderDevice)) continue
        this.forwardToCompanion(sender, senderDevice, target, dev, node, enc, chatUser)
      }
    }
    if (retryFromContactPhone) {
      const t = node.attrs.t || String(unixNow())
      const retry = () => this.emu.retries.sendRetryReceipt(chatUser, sender, senderDevice, id, t, chatForm)
      // queued at once for the device's next login, or sent live shortly after, like a delivery receipt
      if (chatUser.retryReceipt === 'next_login') retry()
      else setTimeout(retry, this.emu.settings.receiptDelayMs).unref?.()
    }
    if (deliveredToContactPhone) {
      // the contact's phone got it: a delivery receipt shortly after, like a real phone
      setTimeout(() => {
        this.sendReceiptFromPhone(chatUser, sender, senderDevice.id, [id], undefined, chatForm)
      }, this.emu.settings.receiptDelayMs).unref?.()
    }
    this.emu.persist()
  }

  /**
   * the emulated primary phone (device 0) of `target` decrypts a message; returns 'stored' for a chat
   * message (or a repeat of one already read), 'retry' when it could not decrypt it and asks the sender
   * for it again (a real failure, or the simulated one of failDecryptOnce), 'failed' when its retries
   * are used up (the message stays unreadable in the inbox, with its error)
   */
  async phoneReceives (target, sender, senderDevice, node, enc, chatForm) {
    const addr = SignalParty.address(sender.phone, senderDevice.id)
    const id = node.attrs.id
    const retryKey = `${e164(sender.phone)}|${id}`
    if (target !== sender && target.failDecryptOnce && !target.retries[retryKey] &&
        !target.inbox.some((m) => m.id === id && m.from === e164(sender.phone))) {
      // not decrypted at all, as if the ciphertext were unusable here: no session, no prekey consumed
      target.retries[retryKey] = 1
      this.emu.log.info('message.decrypt_failed_once', { id, to_suffix: target.phone.slice(-4), enc: enc.attrs.type })
      return 'retry'
    }
    let msg
    let error = null
    try {
      const plain = await target.signal.decrypt(addr, enc.attrs.type, bytesOf(enc))
      msg = proto.Message.decode(unpadMessage(plain))
    } catch (err) {
      error = err.message || String(err)
      this.emu.log.warn('message.decrypt_failed', { id, to_suffix: target.phone.slice(-4), ...errorFields(err) })
    }
    if (target === sender && node.attrs.category === 'peer') {
      // a companion's peer message to its own phone (Baileys wraps it as a device-sent message): a
      // placeholder resend request is answered (placeholders.js)
      const inner = msg?.deviceSentMessage?.message || msg
      this.emu.log.debug('message.peer', { id, kind: kindOf(inner) })
      if (inner) await this.emu.placeholders.onPeerMessage(sender, senderDevice, node, inner)
      return 'peer'
    }
    if (msg?.deviceSentMessage) {
      // the copy for the sender's own phone: accepted (and proven decryptable)
      this.emu.log.debug('message.own_phone_copy', { id })
      return 'own_copy'
    }
    if (target === sender) {
      this.emu.log.debug('message.peer', { id, kind: kindOf(msg) })
      return 'peer'
    }
    const from = e164(sender.phone)
    const existing = target.inbox.find((m) => m.id === id && m.from === from)
    if (existing && !existing.error) {
      // read before: a repeat (its Signal keys are used up, so it may not decrypt again; it needs no retry)
      existing.duplicate_count++
      this.emu.log.info('message.duplicate', { id, duplicate_count: existing.duplicate_count })
      return 'stored'
    }
    if (error) return this.emu.retries.decryptFailed(target, { id, from, senderDevice, chatForm, error, existing })
    if (existing) {
      // the copy the sender sent again after a retry receipt: the unreadable entry becomes the readable one
      Object.assign(existing, { text: textOf(msg), kind: kindOf(msg), retries: target.retries[retryKey] || existing.retries, media: this.emu.mediaMessages.receive(target, sender, id, msg), ...this.emu.conversation.receive(target, sender, msg) })
      delete existing.error
      this.emu.log.info('message.recovered', { id, retries: existing.retries })
      return 'stored'
    }
    target.inbox.push({
      id,
      from,
      text: msg ? textOf(msg) : null,
      kind: msg ? kindOf(msg) : null,
      timestamp: unixNow(),
      duplicate_count: 0,
      sender_device: senderDevice.jid,
      chat_form: chatForm,
      retries: target.retries[retryKey] || 0,
      media: msg ? this.emu.mediaMessages.receive(target, sender, id, msg) : undefined, // downloaded and verified
      ...this.emu.conversation.receive(target, sender, msg) // quoted_id, location, poll..., or a reaction/edit/revoke applied (conversation.js)
    })
    if (target.inbox.length > 10000) target.inbox.splice(0, target.inbox.length - 10000)
    this.emu.log.info('message.delivered_to_phone', { id, enc: enc.attrs.type, decrypted: true })
    return 'stored'
  }

  /** a message for another linked companion device (another gateway, or a second device of the same account) */
  forwardToCompanion (sender, senderDevice, target, dev, node, enc, chatUser) {
    const own = target === sender
    const out = {
      tag: 'message',
      attrs: {
        from: senderDevice.jid,
        id: node.attrs.id,
        t: String(unixNow()),
        type: node.attrs.type || 'text',
        notify: sender.name,
        sender_lid: senderDevice.lidJid,
        ...(own ? { recipient: chatUser.jid } : {}),
        ...(node.attrs.category ? { category: node.attrs.category } : {})
      },
      content: [{ tag: 'enc', attrs: { ...enc.attrs }, content: bytesOf(enc) }]
    }
    const how = this.emu.deliverToDevice(target, dev, out)
    this.emu.log.info('message.forwarded_to_companion', { id: node.attrs.id, to: dev.jid, how })
  }

  /** receipt from the emulated phone of `from` to the device(s) that sent messages `ids` */
  sendReceiptFromPhone (from, senderUser, senderDeviceId, ids, type, chatForm = 'pn') {
    const dev = senderUser.devices.get(senderDeviceId)
    if (!dev) return 'unlinked'
    const node = {
      tag: 'receipt',
      attrs: {
        from: chatForm === 'lid' ? from.lidJid : from.jid,
        id: ids[0],
        t: String(unixNow()),
        ...(type ? { type } : {})
      },
      ...(ids.length > 1 ? { content: [{ tag: 'list', attrs: {}, content: ids.slice(1).map((i) => ({ tag: 'item', attrs: { id: i } })) }] } : {})
    }
    const how = this.emu.deliverToDevice(senderUser, dev, node)
    this.emu.log.info('receipt.sent', { id: ids[0], type: type || 'delivered', how })
    return how
  }

  /** <receipt> sent by a companion for messages it received; a retry receipt may make the contact send again */
  async onClientReceipt (conn, node) {
    const id = node.attrs.id
    const to = node.attrs.to
    const type = node.attrs.type
    conn.sendNode({
      tag: 'ack',
      attrs: { class: 'receipt', id, from: to, ...(type ? { type } : {}), ...(node.attrs.participant ? { participant: node.attrs.participant } : {}) }
    })
    if (!conn.device) return
    if (type === 'server-error') return this.emu.mediaRetry.onServerErrorReceipt(conn, node) // media-retry.js
    const ids = [id, ...childrenByTag(child(node, 'list'), 'item').map((i) => i.attrs.id)].filter(Boolean)
    // any receipt of the device for a message sent to it is its acknowledgement: the server stops keeping it
    const cleared = this.emu.onReceiptFromDevice(conn, node, ids)
    if (cleared) conn.log.debug('receipt.acknowledges', { id, type: type || 'delivered', cleared })
    const d = safeDecode(to)
    if (d?.server === 'g.us') return this.emu.groupMessaging.onDeviceReceipt(conn, node, ids) // group-messaging.js
    const target = d ? this.dir.resolve(d) : undefined
    if (!target || target === conn.user) {
      conn.log.debug('receipt.own', { type: type || 'delivered' })
      return
    }
    const entry = { ids, from: e164(conn.user.phone), device: conn.device.jid, type: type || 'delivered', timestamp: unixNow() }
    target.receiptsReceived.push(entry)
    if (target.receiptsReceived.length > 10000) target.receiptsReceived.splice(0, target.receiptsReceived.length - 10000)
    conn.log.info('receipt.received', { id, type: entry.type })
    // a receipt for a message of the contact's phone: a retry asks for it again, a delivery ends the retries
    if (!d.device) {
      if (type === 'retry') await this.emu.retries.onRetryReceipt(conn, node, target)
      else this.emu.retries.onReceipt(conn, target, ids, entry.type)
    }
    // the receipt is for a message from another gateway's device: pass it on
    if (d.device && target.devices.get(d.device) && type !== 'retry') {
      const dev = target.devices.get(d.device)
      this.emu.deliverToDevice(target, dev, {
        tag: 'receipt',
        attrs: { from: conn.user.jid, id, t: String(unixNow()), ...(type ? { type } : {}) }
      })
    }
    this.emu.persist()
  }

  // ---------------------------------------------------------------- contact -> account
  /** POST /contacts/{phone}/messages */
  async contactSends (contactPhoneInput, body) {
    if (typeof body.to === 'string' && body.to.endsWith('@g.us')) return this.emu.groupMessaging.contactSends(contactPhoneInput, body)
    const { to, text, unavailable, media } = body
    const action = parseAction(body) // a reply, reaction, edit, revoke, poll vote or location (conversation.js)
    const contactPhone = normalizePhone(contactPhoneInput)
    if (!contactPhone) throw apiError(400, 'invalid_phone_number', 'the contact phone number in the path is not an E.164 number')
    const toPhone = normalizePhone(to)
    if (!toPhone) throw apiError(400, 'invalid_phone_number', '"to" must be an E.164 phone number such as +15550001111')
    if (media != null && text != null) throw apiError(400, 'invalid_text', 'send "text" or "media", not both')
    if (media == null && !action && (typeof text !== 'string' || !text.length)) throw apiError(400, 'invalid_text', '"text" must be a non-empty string (or send "media")')
    const mediaReq = media == null ? null : parseMediaRequest(media, maxDocumentBytes(this.emu.mediaServer.maxUploadBytes)) // media-messages.js
    if (toPhone === contactPhone) throw apiError(400, 'invalid_recipient', 'a contact cannot send to itself')
    if (unavailable != null && typeof unavailable !== 'boolean' && (typeof unavailable !== 'string' || !/^[a-z_]{1,64}$/.test(unavailable))) {
      throw apiError(400, 'invalid_unavailable', '"unavailable" must be a boolean or an <unavailable> type such as "view_once"')
    }
    const existing = this.dir.get(contactPhone)
    if (existing && !existing.onWhatsApp) throw apiError(409, 'not_on_whatsapp', `${e164(contactPhone)} is declared as not on WhatsApp`)
    const account = this.dir.get(toPhone)
    const devices = account ? [...account.devices.values()] : []
    if (!devices.length) throw apiError(409, 'no_linked_device', `${e164(toPhone)} has no linked device`)
    const built = action && this.emu.conversation.build(existing, account, action)
    const contact = this.dir.ensure(contactPhone)
    const id = randomId(16)
    const t = unixNow()
    const content = built?.content || (mediaReq ? this.emu.mediaMessages.upload(mediaReq) : { conversation: text })
    const message = proto.Message.encode(content).finish()
    const sentMedia = mediaOf(content) // the account's phone gets it too and keeps its copy for media retries
    if (sentMedia) this.emu.mediaMessages.remember(account, { id, chatJid: contact.jid, fromMe: false, media: sentMedia })
    // the devices get only an <unavailable> stub and must ask the account's phone (placeholders.js)
    const stub = unavailable == null ? this.emu.faults.takeUnavailable(contact.phone) : unavailable
    let delivered = 0
    let queued = 0
    if (stub) {
      ({ delivered, queued } = this.emu.placeholders.sendUnavailable(contact, account, devices, { id, t, message, type: typeof stub === 'string' ? stub : null }))
    } else {
      const garbled = this.emu.faults.takeGarble(contact.phone) // a `garble` fault: every copy of it is damaged
      this.emu.retries.remember(contact, { id, to: toPhone, t, message, garbled })
      for (const dev of devices) {
        const how = await this.emu.retries.sendCopy(contact, account, dev, { id, t, message, garbled })
        if (how === 'sent') delivered++
        else queued++
      }
      this.emu.log.info('contact.message_sent', { id, devices_online: delivered, devices_queued: queued })
    }
    contact.sent.push({ id, to: e164(toPhone), timestamp: t, text: built ? null : text ?? null, ...built?.sent })
    if (contact.sent.length > 10000) contact.sent.splice(0, contact.sent.length - 10000)
    this.emu.persist()
    const mediaOut = sentMedia && { kind: sentMedia.kind, direct_path: sentMedia.content.directPath, sha256: Buffer.from(sentMedia.content.fileSha256).toString('hex') }
    return { id, timestamp: t, delivered_to: delivered, queued_for: queued, ...(stub ? { unavailable: true } : {}), ...(mediaOut ? { media: mediaOut } : {}) }
  }

  /**
   * how the server names a contact as the sender of a 1:1 message: by phone number with its LID in
   * sender_lid, or (addressing 'lid') by LID with the phone number in sender_pn and addressing_mode=lid,
   * the attributes Baileys (extractAddressingContext) and whatsmeow (parseMessageSource) read as the
   * sender's other form. The Signal session is the same either way: the receiver decrypts under the
   * address of `from` and Baileys moves a PN session to the LID when it learns the mapping.
   */
  senderAttrs (contact) {
    if (contact.addressing === 'lid') return { from: contact.lidJid, sender_pn: contact.jid, addressing_mode: 'lid' }
    return { from: contact.jid, sender_lid: contact.lidJid }
  }

  /** POST /contacts/{phone}/receipts */
  contactReceipt (contactPhoneInput, { id, type }) {
    const contactPhone = normalizePhone(contactPhoneInput)
    if (!contactPhone) throw apiError(400, 'invalid_phone_number', 'the contact phone number in the path is not an E.164 number')
    if (typeof id !== 'string' || !id) throw apiError(400, 'invalid_id', '"id" is required')
    const rtype = type == null ? 'delivered' : type
    if (!['delivered', 'read'].includes(rtype)) throw apiError(400, 'invalid_type', '"type" must be "delivered" or "read"')
    const contact = this.dir.get(contactPhone)
    const msg = contact?.inbox.find((m) => m.id === id)
    if (!msg) throw apiError(404, 'message_unknown', `${e164(contactPhone)} received no message with this id`)
    if (msg.group_id) return { id, type: rtype, delivery: this.emu.groupMessaging.contactReceipt(contact, msg, rtype) }
    const sender = this.dir.get(normalizePhone(msg.from))
    const deviceId = safeDecode(msg.sender_device)?.device
    if (!sender || !deviceId) throw apiError(404, 'sender_unknown', 'the sender of this message is gone')
    const how = this.sendReceiptFromPhone(contact, sender, deviceId, [id], rtype === 'read' ? 'read' : undefined, msg.chat_form)
    if (how === 'unlinked') throw apiError(409, 'sender_device_unlinked', 'the device that sent this message is no longer linked')
    this.emu.persist()
    return { id, type: rtype, delivery: how }
  }
}
