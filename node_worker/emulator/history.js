// History sync, the account's phone's side, as WhatsApp does it (Baileys Utils/history.js and
// process-message.js read it; whatsmeow's DownloadHistorySync is the same): the phone (device 0) sends a
// linked device a peer protocolMessage HISTORY_SYNC_NOTIFICATION, encrypted on its own Signal session with
// that device like any message of the phone. The history itself is a `HistorySync` proto, zlib-deflated,
// media-encrypted with the type `md-msg-hist` ("WhatsApp History Keys") and uploaded to the media host; the
// notification carries its directPath, mediaKey and hashes. (A notification may carry the deflated bytes
// inline instead, `initialHistBootstrapInlinePayload`; Baileys reads either.)
//
// Baileys downloads the blob from `https://mmg.whatsapp.net{directPath}` (the notification has no url, and
// downloadHistory passes no host): a client of the emulator must send that host's requests to the
// emulator's media host (its socket config's `options.dispatcher`; README, "History sync").
//
// On link: once a new device's first login has ended its offline queue and it has uploaded pre-keys (the
// phone needs one to start its session), the phone sends, once per device: with a seed (history-seed.js),
// INITIAL_BOOTSTRAP (conversations, their messages, PN<->LID mappings) and then PUSH_NAME when push names
// were seeded; without one, an empty RECENT notification inline, which is all Baileys needs to go online
// at once instead of waiting 20 s for one. POST /accounts/{phone}/history/send sends one on demand, and a
// device's own on-demand request (Baileys' fetchMessageHistory) gets the older messages of a chat.
import { deflateSync } from 'node:zlib'
import { proto } from './wa.js'
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'
import { errorFields } from './log.js'
import { encryptMedia } from './media-crypto.js'
import { memberJid } from './groups.js'
import { parseSeed, parseDelivery } from './history-seed.js'

export const SYNC_TYPES = ['INITIAL_BOOTSTRAP', 'RECENT', 'FULL', 'PUSH_NAME', 'ON_DEMAND']
const STATUS = { error: 'ERROR', pending: 'PENDING', server_ack: 'SERVER_ACK', delivered: 'DELIVERY_ACK', read: 'READ', played: 'PLAYED' }
const Rank = proto.GroupParticipant.Rank

/** the control API's history routes (control-api.js): the seed, and a sync on demand */
export const historyRoutes = (emu) => [
  ['GET', /^\/accounts\/([^/]+)\/history$/, (m) => emu.history.view(decodeURIComponent(m[1]))],
  ['POST', /^\/accounts\/([^/]+)\/history$/, (m, body) => emu.history.seed(decodeURIComponent(m[1]), body)],
  ['POST', /^\/accounts\/([^/]+)\/history\/send$/, async (m, body) => emu.history.send(decodeURIComponent(m[1]), body)]
]

export class HistorySync {
  constructor (emu) {
    this.emu = emu
  }

  get dir () { return this.emu.directory }
  get log () { return this.emu.log }

  /** POST /accounts/{phone}/history: replaces what the account's phone has to sync */
  seed (phoneInput, body) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
    const account = this.dir.ensure(phone) // seeding before the first link is the usual order
    account.history = parseSeed(body, this.emu, account)
    this.emu.persist()
    this.log.info('history.seeded', { conversations: account.history.conversations.length, push_names: account.history.push_names.length })
    return this.view(phone)
  }

  /** GET /accounts/{phone}/history (and the answer of a seed): the seed with the jids each chat gets */
  view (phoneInput) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
    const seed = this.dir.get(phone)?.history || { conversations: [], push_names: [], delivery: 'download' }
    return {
      phone_number: e164(phone),
      delivery: seed.delivery,
      conversations: seed.conversations.map((c) => ({
        chat_jid: this.chatJid(c),
        ...(c.group_id ? { group_id: c.group_id } : { phone_number: e164(c.phone_number), lid: this.dir.get(c.phone_number)?.lidJid || null, addressing: c.addressing }),
        name: c.name,
        unread_count: c.unread_count,
        messages: c.messages.map((m) => ({ ...m, ...(m.participant ? { participant: e164(m.participant) } : {}) }))
      })),
      push_names: seed.push_names.map((p) => ({ ...p, phone_number: e164(p.phone_number) }))
    }
  }

  /** POST /accounts/{phone}/history/send {sync_type, delivery?}: one notification to every linked device */
  async send (phoneInput, body) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
    if (!SYNC_TYPES.includes(body.sync_type)) throw apiError(400, 'invalid_sync_type', `sync_type must be one of ${SYNC_TYPES.join(', ')}`)
    const delivery = parseDelivery(body.delivery)
    const account = this.dir.get(phone)
    const devices = account ? [...account.devices.values()] : []
    if (!devices.length) throw apiError(409, 'no_linked_device', `${e164(phone)} has no linked device`)
    const seed = account.history || { conversations: [], push_names: [], delivery: 'download' }
    const built = this.notification(account, seed, body.sync_type, delivery || seed.delivery)
    let delivered = 0
    let queued = 0
    for (const dev of devices) {
      if ((await this.emu.placeholders.sendFromPhone(account, dev, built.message)) === 'sent') delivered++
      else queued++
    }
    this.log.info('history.sent', { sync_type: body.sync_type, devices_online: delivered, devices_queued: queued })
    this.emu.persist()
    return { sync_type: body.sync_type, delivered_to: delivered, queued_for: queued, ...built.counts, direct_path: built.directPath }
  }

  /**
   * after a device's first login (its offline queue ended, its pre-keys uploaded): the phone's history
   * sync, once per device (login.js calls it at both moments; the later one sends)
   */
  async onLinked (conn) {
    const dev = conn.device
    if (!dev || dev.historySynced || !conn.offlineSent || !dev.preKeys.size || conn.historySyncing) return
    conn.historySyncing = true
    try {
      const account = conn.user
      const seed = account.history
      const messages = []
      if (seed && (seed.conversations.length || seed.push_names.length)) {
        messages.push(this.notification(account, seed, 'INITIAL_BOOTSTRAP', seed.delivery).message)
        if (seed.push_names.length) messages.push(this.notification(account, seed, 'PUSH_NAME', seed.delivery).message)
      } else {
        messages.push(this.notification(account, { conversations: [], push_names: [] }, 'RECENT', 'inline').message)
      }
      for (const m of messages) await this.emu.placeholders.sendFromPhone(account, dev, m)
      dev.historySynced = true
      conn.log.info('history_sync.sent', { notifications: messages.length })
      this.emu.persist()
    } catch (err) {
      conn.log.warn('history_sync.failed', errorFields(err))
    } finally {
      conn.historySyncing = false
    }
  }

  /**
   * a companion's HISTORY_SYNC_ON_DEMAND request to its phone (Baileys' fetchMessageHistory, a peer
   * PEER_DATA_OPERATION_REQUEST_MESSAGE; placeholders.js hands it over): the phone answers with an ON_DEMAND
   * sync of the seeded messages of that chat older than the oldest the device has, newest first, at most
   * `onDemandMsgCount` of them, naming the request's message id as `peerDataRequestSessionId` (what Baileys'
   * messaging-history.set then carries). A chat it knows nothing of gets a sync without conversations.
   */
  async onDemand (account, device, requestId, req) {
    const seed = account.history || { conversations: [], push_names: [], delivery: 'download' }
    const c = seed.conversations.find((x) => this.chatJids(x).includes(req?.chatJid))
    const before = Number(req?.oldestMsgTimestampMs || 0) / 1000 || Infinity
    const count = Math.min(Math.max(Number(req?.onDemandMsgCount) || 50, 1), 500)
    const older = (c?.messages || []).filter((m) => m.timestamp < before && m.id !== req?.oldestMsgId)
      .sort((a, b) => b.timestamp - a.timestamp).slice(0, count)
    const part = { conversations: c ? [{ ...c, messages: older }] : [], push_names: [] }
    try {
      const built = this.notification(account, part, 'ON_DEMAND', seed.delivery, { peerDataRequestSessionId: requestId })
      const how = await this.emu.placeholders.sendFromPhone(account, device, built.message)
      this.log.info('history.on_demand', { messages: older.length, known_chat: !!c, how })
    } catch (err) {
      this.log.warn('history.on_demand_failed', errorFields(err))
    }
  }

  /** the jids a seeded conversation answers to: a group's, or the contact's PN and LID jids */
  chatJids (c) {
    if (c.group_id) return [c.group_id]
    const u = this.dir.get(c.phone_number)
    return u ? [u.jid, u.lidJid] : []
  }

  /** the protocolMessage of one sync of `seed` as `syncType`, its blob uploaded unless inline */
  notification (account, seed, syncType, delivery, extra = {}) {
    const history = this.historyProto(account, seed, syncType)
    const deflated = deflateSync(proto.HistorySync.encode(history).finish())
    const oldest = Math.min(...history.conversations.flatMap((c) => c.messages.map((m) => Number(m.message.messageTimestamp))))
    const notif = {
      syncType: proto.Message.HistorySyncType[syncType],
      chunkOrder: 1,
      progress: 100,
      ...(Number.isFinite(oldest) ? { oldestMsgInChunkTimestampSec: oldest } : {}),
      ...extra
    }
    let directPath = null
    if (delivery === 'inline') {
      notif.initialHistBootstrapInlinePayload = deflated
    } else {
      const file = encryptMedia(deflated, 'md-msg-hist')
      directPath = this.emu.mediaStore.put(file.enc, 'md-msg-hist', file.fileEncSha256.toString('hex'))
      Object.assign(notif, { fileSha256: file.fileSha256, fileLength: file.fileLength, mediaKey: file.mediaKey, fileEncSha256: file.fileEncSha256, directPath })
    }
    const counts = {
      conversations: history.conversations.length,
      messages: history.conversations.reduce((n, c) => n + c.messages.length, 0),
      push_names: history.pushnames.length
    }
    return {
      message: { protocolMessage: { type: proto.Message.ProtocolMessage.Type.HISTORY_SYNC_NOTIFICATION, historySyncNotification: notif } },
      directPath,
      counts
    }
  }

  /** the HistorySync object (not encoded): conversations newest first, or push names for PUSH_NAME */
  historyProto (account, seed, syncType) {
    const mappings = new Map() // pn jid -> lid jid of every user the sync names
    const map = (u) => { if (u) mappings.set(u.jid, u.lidJid) }
    let conversations = []
    let pushnames = []
    if (syncType === 'PUSH_NAME') {
      pushnames = seed.push_names.map((p) => {
        const u = this.dir.ensure(p.phone_number)
        map(u)
        return { id: p.addressing === 'lid' ? u.lidJid : u.jid, pushname: p.push_name }
      })
    } else {
      conversations = seed.conversations.map((c) => this.conversationProto(account, c, map)).filter(Boolean)
        .sort((a, b) => Number(b.conversationTimestamp || 0) - Number(a.conversationTimestamp || 0))
    }
    return {
      syncType: proto.HistorySync.HistorySyncType[syncType],
      chunkOrder: 1,
      progress: 100,
      conversations,
      pushnames,
      phoneNumberToLidMappings: [...mappings].map(([pnJid, lidJid]) => ({ pnJid, lidJid }))
    }
  }

  /** the jid a seeded conversation has: the group's, or the contact's PN or LID jid (its addressing) */
  chatJid (c) {
    if (c.group_id) return c.group_id
    const u = this.dir.get(c.phone_number)
    return c.addressing === 'lid' ? u.lidJid : u.jid
  }

  /** one Conversation; null for a group that no longer exists or no longer has the account */
  conversationProto (account, c, map) {
    const g = c.group_id ? this.emu.groups.byJid(c.group_id) : null
    if (c.group_id && (!g || !this.emu.groups.isMember(g, account))) {
      this.log.warn('history.group_skipped', { reason: g ? 'not_a_member' : 'group_gone' })
      return null
    }
    const contact = g ? null : this.dir.get(c.phone_number)
    map(contact)
    const id = this.chatJid(c)
    const messages = [...c.messages].sort((a, b) => b.timestamp - a.timestamp) // newest first, as WhatsApp sends them
      .map((m, i) => ({ message: this.messageProto(account, id, g, contact, m, map), msgOrderId: c.messages.length - i }))
    const name = c.name ?? g?.subject // the contact's name in the phone's address book, a group's subject
    const conv = {
      id,
      messages,
      unreadCount: c.unread_count,
      ...(name ? { name } : {}),
      ...(messages.length ? { conversationTimestamp: messages[0].message.messageTimestamp, lastMsgTimestamp: messages[0].message.messageTimestamp } : {})
    }
    if (g) {
      conv.participant = this.emu.groups.members(g).map((u) => ({ userJid: memberJid(g, u), rank: g.participants[u.phone].admin === 'superadmin' ? Rank.SUPERADMIN : g.participants[u.phone].admin ? Rank.ADMIN : Rank.REGULAR }))
    } else if (c.addressing === 'lid') {
      conv.pnJid = contact.jid
    } else {
      conv.lidJid = contact.lidJid
    }
    return conv
  }

  /** one WebMessageInfo of a seeded message in chat `chatJid` */
  messageProto (account, chatJid, g, contact, m, map) {
    const sender = m.from_me ? account : g ? this.dir.ensure(m.participant) : contact
    if (g && !m.from_me) map(sender)
    const info = {
      key: { remoteJid: chatJid, fromMe: m.from_me, id: m.id, ...(g && !m.from_me ? { participant: memberJid(g, sender) } : {}) },
      message: m.text != null ? { conversation: m.text } : proto.Message.fromObject(m.raw),
      messageTimestamp: m.timestamp,
      ...(m.status ? { status: proto.WebMessageInfo.Status[STATUS[m.status]] } : {}),
      ...(!m.from_me ? { pushName: m.push_name ?? sender.name } : {})
    }
    if (m.from_me && !g && ['delivered', 'read', 'played'].includes(m.status)) {
      // what the phone knows of the recipient's receipts (Baileys reads the PN of a LID chat from it)
      info.userReceipt = [{ userJid: contact.jid, receiptTimestamp: m.timestamp + 1, ...(m.status !== 'delivered' ? { readTimestamp: m.timestamp + 2 } : {}) }]
    }
    return info
  }
}
