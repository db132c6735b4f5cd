// Group messages, the server's fan-out and the emulated phones as members (state and iqs: groups.js).
//
// A linked device sends `<message to="G@g.us"><enc type=skmsg/><participants><to jid=device><enc
// type=pkmsg|msg/></to>…</participants></message>` (Baileys' relayMessage group branch: the pkmsg/msg carry
// its SenderKeyDistributionMessage to the devices that lack its sender key). The server acks the sender and
// gives every other device of every participant (its own phone and other devices included)
// `<message from=G participant=<sender device> participant_lid id t type notify>` with that device's own
// pkmsg/msg (when there is one) and the skmsg. A device that is not a participant's gets nothing.
// Receipts of participants' devices reach the sender's device as `<receipt from=G participant=<receiver>>`.
// Emulated phones (device 0) process the SKDM and decrypt the skmsg with sender-keys.js, and send their own
// group messages the same way: their sender key to every member device that lacks it, then one skmsg.
import { proto, child, childrenByTag, bytesOf, uintBytes, unixNow, jidDecode, padMessage, unpadMessage } from './wa.js'
import { SignalParty } from './signal-party.js'
import { randomId } from './crypto.js'
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'
import { errorFields } from './log.js'
import { MAX_RETRY_RECEIPTS } from './retries.js'
import { groupJid, memberJid, altAttrs } from './groups.js'
import { newOwnSenderKey, distributionMessage, groupEncrypt, processDistribution, groupDecrypt } from './sender-keys.js'

const safeDecode = (jid) => {
  try { return jid ? jidDecode(jid) : undefined } catch { return undefined }
}
const textOf = (m) => m?.conversation || m?.extendedTextMessage?.text || null
const kindOf = (m) => (m ? Object.keys(m).find((k) => k !== 'messageContextInfo' && k !== 'senderKeyDistributionMessage' && m[k] != null) || null : null)
const KEEP_INBOX = 10000

export class GroupMessaging {
  constructor (emu) {
    this.emu = emu
  }

  get dir () { return this.emu.directory }
  get groups () { return this.emu.groups }

  /** every device of the group's participants as {user, id, dev?} (id 0: the emulated phone) */
  memberDevices (g) {
    const out = []
    for (const u of this.groups.members(g)) {
      if (!u.onWhatsApp) continue
      out.push({ user: u, id: 0 })
      for (const dev of u.devices.values()) out.push({ user: u, id: dev.id, dev })
    }
    return out
  }

  // ------------------------------------------------------------ linked device -> group
  async onClientMessage (conn, node) {
    const id = node.attrs.id
    const g = this.groups.byJid(node.attrs.to)
    const ack = { class: 'message', id, from: node.attrs.to, t: String(unixNow()) }
    if (!g || !this.groups.isMember(g, conn.user)) {
      conn.log.info('group.message_rejected', { id, reason: g ? 'not_a_participant' : 'unknown_group' })
      conn.sendNode({ tag: 'ack', attrs: { ...ack, error: g ? '403' : '404' } })
      return
    }
    conn.sendNode({ tag: 'ack', attrs: ack })
    const own = new Map() // "<phone>:<device>" -> that device's own enc (its SKDM, or a retry's whole message)
    for (const t of childrenByTag(child(node, 'participants'), 'to')) {
      const d = safeDecode(t.attrs.jid)
      const u = d && this.dir.resolve(d)
      if (u && child(t, 'enc')) own.set(`${u.phone}:${d.device || 0}`, child(t, 'enc'))
    }
    const direct = childrenByTag(node, 'enc')
    const skmsg = direct.find((e) => e.attrs.type === 'skmsg')
    let only // a retry resend names its one device (`participant`), its enc is direct
    if (node.attrs.participant) {
      const d = safeDecode(node.attrs.participant)
      const u = d && this.dir.resolve(d)
      const enc = direct.find((e) => e.attrs.type !== 'skmsg')
      if (u && enc) { only = `${u.phone}:${d.device || 0}`; own.set(only, enc) }
    }
    const sender = { user: conn.user, device: conn.device, jid: conn.device.jid }
    let devices = 0
    for (const target of this.memberDevices(g)) {
      const key = `${target.user.phone}:${target.id}`
      if ((only && key !== only) || (target.user === conn.user && target.id === conn.device.id)) continue
      const encs = [own.get(key), skmsg].filter(Boolean)
      if (!encs.length) continue
      devices++
      if (target.id === 0) await this.phoneReceives(target.user, g, sender, node, encs)
      else this.toDevice(target.user, target.dev, g, sender.user, conn.device.id, node, encs)
    }
    conn.log.info('group.message_fanned_out', { id, group: g.id, devices, distributions: own.size })
    this.emu.persist()
  }

  toDevice (user, dev, g, senderUser, senderDeviceId, node, encs) {
    return this.emu.deliverToDevice(user, dev, {
      tag: 'message',
      attrs: {
        from: groupJid(g),
        participant: memberJid(g, senderUser, senderDeviceId),
        ...altAttrs(g, senderUser),
        ...(g.addressing === 'lid' ? { addressing_mode: 'lid' } : {}),
        id: node.attrs.id,
        t: node.attrs.t || String(unixNow()),
        type: node.attrs.type || 'text',
        notify: senderUser.name
      },
      content: encs.map((e) => ({ tag: 'enc', attrs: { ...e.attrs }, content: bytesOf(e) }))
    })
  }

  // ------------------------------------------------------------ an emulated phone as a member
  /**
   * `target`'s phone gets a group message of `sender` ({user, device?, jid}): its own pkmsg/msg (the SKDM,
   * processed into its sender keys) and the skmsg (decrypted, the signature verified). A message of the
   * account's own devices reaches the account's phone too (kept in step, not in an inbox). Then its
   * delivery receipt goes back to the sending device.
   */
  async phoneReceives (target, g, sender, node, encs) {
    const id = node.attrs.id
    const from = e164(sender.user.phone)
    const deviceId = safeDecode(sender.jid)?.device || 0
    const keyName = `${g.id}|${sender.jid}`
    const retryKey = `${from}|${id}`
    let msg = null
    let error = null
    // fail_decrypt_once: the first copy is not decrypted at all (nothing processed), as in 1:1 (messaging.js)
    const simulated = target !== sender.user && sender.device && target.failDecryptOnce && !target.retries[retryKey]
    if (simulated) error = 'simulated decryption failure (fail_decrypt_once)'
    try {
      for (const enc of simulated ? [] : encs) {
        if (enc.attrs.type === 'skmsg') {
          const plain = groupDecrypt(target.groupKeys[keyName], bytesOf(enc))
          msg = proto.Message.decode(unpadMessage(plain))
          continue
        }
        const plain = await target.signal.decrypt(SignalParty.address(sender.user.phone, deviceId), enc.attrs.type, bytesOf(enc))
        const m = proto.Message.decode(unpadMessage(plain))
        const skdm = m.senderKeyDistributionMessage?.axolotlSenderKeyDistributionMessage
        if (skdm?.length) target.groupKeys[keyName] = processDistribution(target.groupKeys[keyName], skdm)
        if (kindOf(m)) msg = m // a retry resend carries the message itself
      }
    } catch (err) {
      error = err.message || String(err)
      this.emu.log.warn('group.decrypt_failed', { id, group: g.id, to_suffix: target.phone.slice(-4), ...errorFields(err) })
    }
    if (target === sender.user) return 'own'
    const existing = target.inbox.find((m) => m.id === id && m.from === from)
    if (existing && !existing.error) {
      existing.duplicate_count++
    } else if (existing) {
      if (!error) Object.assign(existing, { text: textOf(msg), kind: kindOf(msg), error: undefined, ...this.emu.conversation.receive(target, sender.user, msg) })
    } else {
      target.inbox.push({
        id,
        from,
        group_id: groupJid(g),
        participant: sender.jid,
        text: textOf(msg),
        kind: kindOf(msg),
        timestamp: unixNow(),
        duplicate_count: 0,
        sender_device: sender.jid,
        chat_form: 'pn',
        retries: 0,
        ...(error ? { error } : {}),
        ...(msg ? this.emu.conversation.receive(target, sender.user, msg) : {})
      })
      if (target.inbox.length > KEEP_INBOX) target.inbox.splice(0, target.inbox.length - KEEP_INBOX)
    }
    this.emu.log.info('group.delivered_to_phone', { id, group: g.id, decrypted: !error })
    if (error && sender.device) this.askAgain(target, g, sender, id, retryKey)
    if (!error && sender.device) {
      setTimeout(() => this.receiptToSender(g, target, sender.user, sender.device, [id]), this.emu.settings.receiptDelayMs).unref?.()
    }
    return error ? 'failed' : 'stored'
  }

  /**
   * a phone that could not decrypt a linked device's group message asks for it again, as phones do:
   * <receipt from=G participant=<phone> type=retry><retry count/><registration/>(<keys/> from count 2)</receipt>.
   * Baileys answers a retry from a primary device (no device in its jid) by sending the message again to
   * the whole group with a fresh sender key distribution (sendMessagesAgain: sendToAll).
   */
  askAgain (target, g, sender, id, retryKey) {
    const count = (target.retries[retryKey] || 0) + 1
    const entry = target.inbox.find((m) => m.id === id && m.from === e164(sender.user.phone))
    if (count > MAX_RETRY_RECEIPTS) return
    this.emu.retries.setRetries(target, retryKey, count)
    if (entry) entry.retries = count
    target.retryReceiptsSent++
    const node = {
      tag: 'receipt',
      attrs: { from: groupJid(g), participant: memberJid(g, target), id, t: String(unixNow()), type: 'retry' },
      content: [
        { tag: 'retry', attrs: { count: String(count), id, t: String(unixNow()), v: '1', error: '0' } },
        { tag: 'registration', attrs: {}, content: uintBytes(target.signal.registrationId, 4) },
        ...(count > 1 ? [this.emu.retries.keysNode(target)] : [])
      ]
    }
    setTimeout(() => {
      const how = this.emu.deliverToDevice(sender.user, sender.device, node)
      this.emu.log.info('group.retry_receipt_sent', { id, group: g.id, count, how })
    }, this.emu.settings.receiptDelayMs).unref?.()
  }

  /** a phone's receipt of group messages `ids` to the linked device that sent them */
  receiptToSender (g, from, senderUser, senderDevice, ids, type) {
    if (!senderUser.devices.get(senderDevice.id)) return 'unlinked'
    return this.emu.deliverToDevice(senderUser, senderDevice, {
      tag: 'receipt',
      attrs: { from: groupJid(g), participant: memberJid(g, from), id: ids[0], t: String(unixNow()), ...(type ? { type } : {}) },
      ...(ids.length > 1 ? { content: [{ tag: 'list', attrs: {}, content: ids.slice(1).map((i) => ({ tag: 'item', attrs: { id: i } })) }] } : {})
    })
  }

  /** POST /contacts/{phone}/receipts for a group message in the phone's inbox */
  contactReceipt (contact, entry, type) {
    const g = this.groups.byJid(entry.group_id)
    const d = safeDecode(entry.sender_device)
    const senderUser = d && this.dir.resolve(d)
    const dev = senderUser?.devices.get(d.device || 0)
    if (!g || !dev) throw apiError(409, 'sender_device_unlinked', 'the device that sent this message is no longer linked')
    return this.receiptToSender(g, contact, senderUser, dev, [entry.id], type === 'read' ? 'read' : undefined)
  }

  // ------------------------------------------------------------ receipts of linked devices
  /** a linked device's <receipt to=G participant=<sender>> (delivered, read, retry): passed to the sender */
  async onDeviceReceipt (conn, node, ids) {
    const g = this.groups.byJid(node.attrs.to)
    const d = safeDecode(node.attrs.participant)
    const senderUser = d && this.dir.resolve(d)
    if (!g || !senderUser) return
    const type = node.attrs.type || 'delivered'
    if (!d.device) {
      // for an emulated phone's message: kept (GET /contacts/{phone}/receipts-received); a retry gets a resend
      senderUser.receiptsReceived.push({ ids, from: e164(conn.user.phone), device: conn.device.jid, type, group_id: groupJid(g), timestamp: unixNow() })
      if (senderUser.receiptsReceived.length > KEEP_INBOX) senderUser.receiptsReceived.splice(0, senderUser.receiptsReceived.length - KEEP_INBOX)
      if (type === 'retry') await this.resendToDevice(senderUser, g, conn.user, conn.device, node.attrs.id)
      this.emu.persist()
      return
    }
    const dev = senderUser.devices.get(d.device)
    if (!dev) return
    // a retry names the asking device (the sender re-encrypts for it); other receipts name the participant
    this.emu.deliverToDevice(senderUser, dev, {
      tag: 'receipt',
      attrs: { from: groupJid(g), participant: memberJid(g, conn.user, type === 'retry' ? conn.device.id : 0), id: node.attrs.id, t: String(unixNow()), ...(node.attrs.type ? { type: node.attrs.type } : {}) },
      ...(Array.isArray(node.content) && node.content.length ? { content: node.content } : {})
    })
  }

  // ------------------------------------------------------------ an emulated phone sends to a group
  /** POST /contacts/{phone}/messages with "to": "…@g.us" */
  async contactSends (phoneInput, body) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the contact phone number in the path is not an E.164 number')
    if (typeof body.text !== 'string' || !body.text.length) throw apiError(400, 'invalid_text', 'a group message needs a non-empty "text"')
    const g = this.groups.byJid(body.to)
    if (!g) throw apiError(404, 'group_not_found', `no group ${body.to}`)
    const contact = this.dir.get(phone)
    if (!contact || !this.groups.isMember(g, contact)) throw apiError(409, 'not_in_group', `${e164(phone)} is not a participant of ${body.to}`)
    const id = randomId(16)
    const t = unixNow()
    const message = proto.Message.encode({ conversation: body.text }).finish()
    contact.groupOwnKeys[g.id] ||= { ...newOwnSenderKey(), distributed: [] }
    const own = contact.groupOwnKeys[g.id]
    const skdm = distributionMessage(own) // before the skmsg: the key as it is for this message
    const sealed = groupEncrypt(own, padMessage(message))
    // a `garble` fault: the skmsg every device gets fails its signature (a retry receipt gets it again, whole)
    if (this.emu.faults.takeGarble(contact.phone)) sealed[sealed.length - 1] ^= 0x01
    const skmsg = { tag: 'enc', attrs: { v: '2', type: 'skmsg' }, content: sealed }
    const skdmMessage = proto.Message.encode({ senderKeyDistributionMessage: { groupId: groupJid(g), axolotlSenderKeyDistributionMessage: skdm } }).finish()
    const stanza = { attrs: { id, t: String(t), type: 'text' } }
    let delivered = 0
    let queued = 0
    for (const target of this.memberDevices(g)) {
      if (target.user === contact) continue
      const key = `${target.user.phone}:${target.id}`
      const encs = []
      if (!own.distributed.includes(key)) {
        encs.push(await this.encryptFor(contact, target, skdmMessage))
        own.distributed.push(key)
      }
      encs.push(skmsg)
      if (target.id === 0) {
        await this.phoneReceives(target.user, g, { user: contact, jid: contact.jid }, stanza, encs)
        delivered++
      } else if (this.toDevice(target.user, target.dev, g, contact, 0, stanza, encs) === 'sent') delivered++
      else queued++
    }
    contact.outbox.set(id, { to: groupJid(g), t, message: Buffer.from(message).toString('base64'), garbled: false, resends: {}, awaiting: [] })
    contact.sent.push({ id, to: groupJid(g), group_id: groupJid(g), timestamp: t, text: body.text })
    if (contact.sent.length > KEEP_INBOX) contact.sent.splice(0, contact.sent.length - KEEP_INBOX)
    this.emu.log.info('group.contact_message_sent', { id, group: g.id, devices_online: delivered, devices_queued: queued })
    this.emu.persist()
    return { id, timestamp: t, group_id: groupJid(g), delivered_to: delivered, queued_for: queued }
  }

  /** `contact`'s phone encrypts `message` on its Signal session with one device (a session from its bundle first) */
  async encryptFor (contact, target, message) {
    const addr = SignalParty.address(target.user.phone, target.id)
    if (!contact.signal.hasSession(addr)) {
      await contact.signal.initSession(addr, target.id === 0 ? target.user.signal.takeBundle() : target.dev.takeBundle())
    }
    const { type, ciphertext } = await contact.signal.encrypt(addr, padMessage(message))
    return { tag: 'enc', attrs: { v: '2', type }, content: ciphertext }
  }

  /** a linked device could not decrypt a phone's group message: the phone sends it again, with its sender key, to that device */
  async resendToDevice (contact, g, user, dev, id) {
    const entry = contact.outbox.get(id)
    const own = contact.groupOwnKeys[g.id]
    if (!entry || !own || !this.groups.isMember(g, user)) return
    const m = proto.Message.decode(Buffer.from(entry.message, 'base64'))
    m.senderKeyDistributionMessage = { groupId: groupJid(g), axolotlSenderKeyDistributionMessage: distributionMessage(own) }
    const enc = await this.encryptFor(contact, { user, id: dev.id, dev }, proto.Message.encode(m).finish())
    contact.messagesResent++
    this.toDevice(user, dev, g, contact, 0, { attrs: { id, t: String(entry.t), type: 'text' } }, [enc])
    this.emu.log.info('group.retry_resent', { id, group: g.id })
  }

  /** after a removal (or leave) the remaining emulated phones make new sender keys, as WhatsApp clients do */
  onMembersRemoved (g, removed) {
    for (const u of [...this.groups.members(g), ...removed]) delete u.groupOwnKeys[g.id]
  }
}
