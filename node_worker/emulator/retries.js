// Retry receipts, both ways, as real WhatsApp clients use them to heal a broken Signal session.
//
// A phone that cannot decrypt a message does not drop it silently: it answers the sending device with
// <receipt type=retry> (Baileys' sendRetryRequest, whatsmeow's sendRetryReceipt) and the sender encrypts
// the same message again, with the same id, on a fresh session. Without this a contact whose session
// with the account broke (a rolled-back or lost session on either side) stays unreadable for good.
//
// Receiving side (an emulated phone, device 0, that could not decrypt a companion's message):
//   `decryptFailed` keeps the message as unreadable and counts a retry; `sendRetryReceipt` sends
//   <retry count=N id t v=1 error=0> with the 4-byte <registration> id and, from count 2 on, <keys>
//   with a FRESH one-time prekey, the signed prekey and a device identity. At most
//   MAX_RETRY_RECEIPTS per message (Baileys' maxMsgRetryCount); after that it stays unreadable.
// Sending side (the emulated phone of a contact that sent a message a companion could not decrypt):
//   `onRetryReceipt` rebuilds the session from the receipt's <keys> (or, without keys, keeps the
//   session, rebuilding it from the server's bundle only when there is none or the registration id
//   changed, as whatsmeow does), encrypts the ORIGINAL plaintext again and sends it with the same id to
//   the device that asked (queued if it went offline). At most MAX_RESENDS per (device, message).
// Retry receipts are never deliveries: a sent message counts as undecryptable at a device from its
// retry receipt until that device's delivery (or read) receipt for it.
import { conversationView } from './conversation.js'
import libsignalProtobufs from 'libsignal/src/protobufs.js'
import { proto, child, bytesOf, uintOf, uintBytes, unixNow, padMessage, preKeyNode, signedPreKeyNode } from './wa.js'
import { SignalParty } from './signal-party.js'
import { sign, toSignalPub, verifyStrict } from './crypto.js'
import { accountSignatureMessage } from './pairing.js'
import { e164 } from './accounts.js'
import { errorFields } from './log.js'

export const MAX_RETRY_RECEIPTS = 5 // per received message (Baileys' maxMsgRetryCount)
export const MAX_RESENDS = 5 // per sent message and asking device
const KEEP_SENT = 2000 // sent messages whose plaintext a contact keeps for resends (the oldest are forgotten)
const KEEP_RETRY_COUNTS = 10000
const DELIVERY_TYPES = new Set(['delivered', 'inactive', 'read', 'read-self', 'played'])
const KEY_BUNDLE_TYPE = Buffer.from([5])
/** the per-contact counters of GET / (and their sums in its `retries`) */
export const RETRY_COUNTERS = ['retry_receipts_sent', 'retry_receipts_received', 'messages_resent', 'messages_undecryptable', 'sent_undecryptable']

/** one byte of the message's MAC flipped: what a damaged ciphertext looks like to the receiver (Bad MAC) */
export const garble = (type, ciphertext) => {
  const out = Buffer.from(ciphertext)
  if (type !== 'pkmsg') {
    out[out.length - 1] ^= 0x01
    return out
  }
  const { PreKeyWhisperMessage } = libsignalProtobufs
  const pre = PreKeyWhisperMessage.decode(out.subarray(1))
  const inner = Buffer.from(pre.message)
  inner[inner.length - 1] ^= 0x01
  pre.message = inner
  return Buffer.concat([out.subarray(0, 1), Buffer.from(PreKeyWhisperMessage.encode(pre).finish())])
}

/** the <keys> of a retry receipt as a bundle for SignalParty.initSession; null when absent, a string reason when invalid */
export const bundleFromRetryReceipt = (node) => {
  const keys = child(node, 'keys')
  if (!keys) return null
  const type = bytesOf(child(keys, 'type'))
  const identity = bytesOf(child(keys, 'identity'))
  const skey = child(keys, 'skey')
  const registrationId = uintOf(child(node, 'registration'))
  if (!type?.equals(KEY_BUNDLE_TYPE) || identity?.length !== 32 || !skey || registrationId === undefined) return 'keys_incomplete'
  const signedPreKey = { keyId: uintOf(child(skey, 'id')), publicKey: bytesOf(child(skey, 'value')), signature: bytesOf(child(skey, 'signature')) }
  if (signedPreKey.keyId === undefined || signedPreKey.publicKey?.length !== 32) return 'signed_prekey_incomplete'
  // the signature is over the 33-byte form of the signed prekey, made with the identity key
  if (!verifyStrict(identity, toSignalPub(signedPreKey.publicKey), signedPreKey.signature)) return 'signed_prekey_signature_invalid'
  const keyNode = child(keys, 'key')
  let preKey
  if (keyNode) {
    preKey = { keyId: uintOf(child(keyNode, 'id')), publicKey: bytesOf(child(keyNode, 'value')) }
    if (preKey.keyId === undefined || preKey.publicKey?.length !== 32) return 'prekey_incomplete'
  }
  return { registrationId, identityKey: identity, signedPreKey, ...(preKey ? { preKey } : {}) }
}

export class Retries {
  constructor (emu) {
    this.emu = emu
  }

  get log () { return this.emu.log }

  // ------------------------------------------------------------ receiving side
  /**
   * `target`'s phone could not decrypt message `id` from `sender` (libsignal threw `error`). The message
   * is kept, unreadable, in its inbox (once; a later copy that decrypts replaces it), and a retry is
   * counted. Returns 'retry' when a retry receipt must be sent, 'failed' when the retries are used up.
   */
  decryptFailed (target, { id, from, senderDevice, chatForm, error, existing }) {
    const key = `${from}|${id}`
    const used = target.retries[key] || 0
    const entry = existing || this.keepUnreadable(target, { id, from, senderDevice, chatForm })
    entry.error = error
    if (used >= MAX_RETRY_RECEIPTS) {
      this.log.warn('message.undecryptable', { id, to_suffix: target.phone.slice(-4), retries: used })
      return 'failed'
    }
    this.setRetries(target, key, used + 1)
    entry.retries = used + 1
    return 'retry'
  }

  keepUnreadable (target, { id, from, senderDevice, chatForm }) {
    const entry = { id, from, text: null, kind: null, timestamp: unixNow(), duplicate_count: 0, sender_device: senderDevice.jid, chat_form: chatForm, retries: 0 }
    target.inbox.push(entry)
    if (target.inbox.length > 10000) target.inbox.splice(0, target.inbox.length - 10000)
    return entry
  }

  setRetries (target, key, n) {
    delete target.retries[key] // re-inserted last: the oldest counts are the first forgotten
    target.retries[key] = n
    const keys = Object.keys(target.retries)
    for (const k of keys.slice(0, Math.max(0, keys.length - KEEP_RETRY_COUNTS))) delete target.retries[k]
  }

  /**
   * The retry receipt of `from`'s phone for message `id` of `senderDevice`, shaped as Baileys'
   * sendRetryRequest and whatsmeow's sendRetryReceipt send it; its count is the phone's retry count
   * for that message. Keys (a fresh one-time prekey each time) from count 2 on: both clients add them
   * at count 1 only for a message without a usable <enc> (Baileys: forceIncludeKeys = !encNode;
   * whatsmeow: forceIncludeIdentity for "unavailable" messages), never for a missing session, so a
   * first retry makes the sender fetch a bundle from the server (Baileys' assertSessions with force).
   */
  sendRetryReceipt (from, senderUser, senderDevice, id, t, chatForm) {
    if (!senderUser.devices.get(senderDevice.id)) return 'unlinked'
    const count = from.retries[`${e164(senderUser.phone)}|${id}`] || 1
    const content = [
      { tag: 'retry', attrs: { count: String(count), id, t: String(t), v: '1', error: '0' } },
      { tag: 'registration', attrs: {}, content: uintBytes(from.signal.registrationId, 4) }
    ]
    if (count > 1) content.push(this.keysNode(from))
    const node = {
      tag: 'receipt',
      attrs: { from: chatForm === 'lid' ? from.lidJid : from.jid, id, t: String(unixNow()), type: 'retry' },
      content
    }
    from.retryReceiptsSent++
    let how
    if (from.retryReceipt === 'next_login') {
      // as if the sender's device had gone before the retry reached it: the server keeps it for its next login
      this.emu.pushBounded(senderDevice, 'pending', node)
      how = 'queued'
    } else {
      how = this.emu.deliverToDevice(senderUser, senderDevice, node)
    }
    this.log.info('receipt.retry_sent', { id, count, keys: content.length > 2, how })
    this.emu.persist()
    return how
  }

  /**
   * <keys> of a phone's retry receipt: its identity, a fresh one-time prekey (kept so that the
   * sender's new pkmsg can use it), its signed prekey and a device identity. A primary device has no
   * ADV identity issued by another device, so it signs its own (key index 0); Baileys
   * (extractE2ESessionFromRetryReceipt) and whatsmeow read the bundle without checking it.
   */
  keysNode (user) {
    const bundle = user.signal.takeBundle({ badSignature: user.signedPreKeySignature === 'bad' })
    const details = Buffer.from(proto.ADVDeviceIdentity.encode({ rawId: user.advRawId || 0, timestamp: unixNow(), keyIndex: 0 }).finish())
    const identity = user.signal.identityPublic
    const deviceIdentity = Buffer.from(proto.ADVSignedDeviceIdentity.encode({
      details,
      accountSignatureKey: identity,
      accountSignature: sign(user.signal.identity.private, accountSignatureMessage(details, identity))
    }).finish())
    return {
      tag: 'keys',
      attrs: {},
      content: [
        { tag: 'type', attrs: {}, content: KEY_BUNDLE_TYPE },
        { tag: 'identity', attrs: {}, content: Buffer.from(identity) },
        preKeyNode(bundle.preKey),
        signedPreKeyNode(bundle.signedPreKey),
        { tag: 'device-identity', attrs: {}, content: deviceIdentity }
      ]
    }
  }

  // ------------------------------------------------------------ sending side
  /** keeps what a contact sent (the message protobuf, unpadded), so that a retry receipt can be answered */
  remember (contact, { id, to, t, message, garbled }) {
    contact.outbox.set(id, { to, t, message: Buffer.from(message).toString('base64'), garbled: !!garbled, resends: {}, awaiting: [] })
    while (contact.outbox.size > KEEP_SENT) contact.outbox.delete(contact.outbox.keys().next().value)
  }

  /** the contact's phone encrypts `message` for one device of `account` and sends (or queues) it */
  async sendCopy (contact, account, dev, { id, t, message, garbled, count }) {
    const addr = SignalParty.address(account.phone, dev.id)
    if (!contact.signal.hasSession(addr)) await contact.signal.initSession(addr, dev.takeBundle())
    const enc = await contact.signal.encrypt(addr, padMessage(message))
    const ciphertext = garbled ? garble(enc.type, enc.ciphertext) : enc.ciphertext
    return this.emu.deliverToDevice(account, dev, {
      tag: 'message',
      attrs: { ...this.emu.messaging.senderAttrs(contact), id, t: String(t), type: 'text', notify: contact.name },
      content: [{ tag: 'enc', attrs: { v: '2', type: enc.type, ...(count ? { count: String(count) } : {}) }, content: ciphertext }]
    })
  }

  /** a receipt of a linked device for messages `ids` that `target` sent: deliveries end an "undecryptable" */
  onReceipt (conn, target, ids, type) {
    if (!DELIVERY_TYPES.has(type)) return
    for (const id of ids) {
      const entry = target.outbox.get(id)
      if (entry?.awaiting.includes(conn.device.jid)) entry.awaiting = entry.awaiting.filter((j) => j !== conn.device.jid)
    }
  }

  /**
   * <receipt type=retry> of a linked device for a message `target`'s phone sent: rebuild the session
   * if asked to and send the same message again to that device. Never a delivery.
   */
  async onRetryReceipt (conn, node, target) {
    const id = node.attrs.id
    const dev = conn.device
    const count = Number(child(node, 'retry')?.attrs.count) || 1
    target.retryReceiptsReceived++
    const entry = target.outbox.get(id)
    const refuse = (reason) => {
      this.log.info('retry.not_resent', { id, count, reason })
      this.emu.persist()
    }
    if (!entry || entry.to !== conn.user.phone) return refuse('message_unknown')
    if (!entry.awaiting.includes(dev.jid)) entry.awaiting.push(dev.jid)
    const done = entry.resends[dev.jid] || 0
    if (done >= MAX_RESENDS) return refuse('resends_used_up')
    const bundle = bundleFromRetryReceipt(node)
    if (typeof bundle === 'string') return refuse(bundle) // a broken bundle: no session can be built from it
    const addr = SignalParty.address(conn.user.phone, dev.id)
    let session = 'kept'
    try {
      if (bundle) {
        await target.signal.initSession(addr, bundle)
        session = 'from_receipt_keys'
      } else {
        const regId = uintOf(child(node, 'registration'))
        const known = target.signal.remoteRegistrationId(addr)
        if (known === undefined || (regId !== undefined && regId !== known)) {
          await target.signal.initSession(addr, dev.takeBundle())
          session = 'from_server_bundle'
        }
      }
      entry.resends[dev.jid] = done + 1
      const how = await this.sendCopy(target, conn.user, dev, { id, t: entry.t, message: Buffer.from(entry.message, 'base64'), garbled: entry.garbled, count })
      target.messagesResent++
      this.log.info('retry.resent', { id, count, session, how, resend: done + 1 })
    } catch (err) {
      this.log.warn('retry.resend_failed', { id, count, session, ...errorFields(err) })
    }
    this.emu.persist()
  }

  /** the retry counters of a user, for GET / */
  counters (user) {
    let sentUndecryptable = 0
    for (const e of user.outbox.values()) if (e.awaiting.length) sentUndecryptable++
    return {
      retry_receipts_sent: user.retryReceiptsSent,
      retry_receipts_received: user.retryReceiptsReceived,
      messages_resent: user.messagesResent,
      messages_undecryptable: user.inbox.filter((m) => m.error).length,
      sent_undecryptable: sentUndecryptable
    }
  }

  /** GET /contacts/{phone}/sent: what the phone sent and the retry state of each (no texts) */
  sentView (user) {
    return user.sent.map(({ id, to, timestamp, text, ...rest }) => {
      const e = user.outbox.get(id)
      return {
        id,
        to,
        timestamp,
        text: text ?? null,
        ...conversationView(rest), // what the account's devices did to it: reactions (conversation.js)
        resent: e ? Object.values(e.resends).reduce((a, b) => a + b, 0) : 0,
        undecryptable_at: e ? [...e.awaiting] : []
      }
    })
  }
}
