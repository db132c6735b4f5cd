// History sync (issue 27): what the account's phone sends a newly linked device (and later RECENT / ON_DEMAND
// chunks) becomes `history.sync` events, never `message` events: history is stored as history, not as new messages.
//
// Where history comes from in rc14: the phone sends a HISTORY_SYNC_NOTIFICATION protocol message (fromMe,
// category peer) whose blob is media (`md-msg-hist`) or an inline payload. messages-recv.js sends its receipt (and a
// `hist_sync` receipt) and only then upsertMessage -> process-message.js downloads the blob and emits
// `messaging-history.set` {chats, contacts, messages, lidPnMappings}; the history's messages go only there, never
// through `messages.upsert` (the event buffer may even absorb a live upsert into a pending history set, never the
// reverse). A worker killed between that receipt and the event's journaling would lose the sync for good: WhatsApp
// does not send a receipted notification again, and Baileys, which records it in creds.processedHistoryMessages and
// counts the account synced (accountSyncCounter), never asks again.
//
// So, as peer-messages.js does for our own devices' protocol messages, the beforeMessageReceipt hook (patches/*002*)
// downloads and processes the notification itself with Baileys' own function, stores its LID <-> phone-number pairs and
// journals its events, all before the receipt; event ids `history:<notification id>:<part>` make a redelivery the same
// events. Baileys' own processing after the receipt downloads it again (the price of not patching Baileys) and emits
// `messaging-history.set`, of which only what the hook did not journal becomes events (nothing, normally; all of it
// when the hook's download failed: Baileys' try after the receipt is then the sync's second chance).
import { randomUUID } from 'node:crypto'
import { downloadAndProcessHistorySyncNotification, getHistoryMsg, proto } from 'baileys'
import { partsOf, syncTypeName, viewOf } from './history-view.js'

const HISTORY_SYNC = proto.Message.ProtocolMessage.Type.HISTORY_SYNC_NOTIFICATION
const { ON_DEMAND, INITIAL_BOOTSTRAP } = proto.HistorySync.HistorySyncType
const DOWNLOAD_TIMEOUT_MS = 120000 // the hook holds up the device's next messages while it downloads
export const JOURNALED_MAX = 200000 // history items journaled, kept to leave them out of Baileys' own event

const KEY = {
  chats: (c) => `c|${c.chat_jid}`,
  contacts: (p) => `p|${p.phone_number ?? ''}|${p.lid ?? ''}|${p.push_name ?? ''}|${p.name ?? ''}`,
  messages: (m) => `m|${m.chat_jid}|${m.wa_id}|${m.from_me ? 1 : 0}`
}
const KINDS = Object.keys(KEY)

export class History {
  constructor (session) {
    this.session = session
    this.journaled = new Set() // KEY of each item journaled (bounded)
  }

  /** whether `msg` (decrypted, about to be receipted) is our phone's history-sync notification */
  handles (msg) {
    return !!msg?.key?.fromMe && msg.message?.protocolMessage?.type === HISTORY_SYNC && !!getHistoryMsg(msg.message)
  }

  /** beforeMessageReceipt: the sync downloaded, its pairs stored and its events journaled; resolves once durable. */
  async beforeReceipt (msg) {
    const s = this.session
    const sock = s.sock
    const notification = getHistoryMsg(msg.message)
    let data
    try {
      if (s.mediaRoute && !s.mediaRoute.origin && sock) await this.routeSandboxMedia(sock)
      data = await within(downloadAndProcessHistorySyncNotification(notification, s.fetchOptions ?? {}, s.baileysLog), DOWNLOAD_TIMEOUT_MS)
    } catch (err) {
      // (the message without the URL: it holds the blob's direct path)
      const why = { message: String(err?.message).replace(/https?:\/\/\S+/g, '<url>'), status: err?.output?.statusCode ?? null, code: err?.code ?? null }
      s.log.warn({ err: why, message_id: msg.key.id, sync_type: syncTypeName(notification.syncType) }, 'history.download_failed')
      return // Baileys downloads it again after the receipt: its messaging-history.set is then journaled (onSet)
    }
    if (data.lidPnMappings?.length && sock) await sock.signalRepository.lidMapping.storeLIDPNMappings(data.lidPnMappings)
    // Baileys' isLatest (no history processed before on this device), except that the device's INITIAL_BOOTSTRAP always
    // is: the phone's notifications are processed side by side, and a PUSH_NAME may finish first
    const processed = sock?.authState?.creds?.processedHistoryMessages?.length
    const isLatest = notification.syncType === INITIAL_BOOTSTRAP || (notification.syncType !== ON_DEMAND && !processed)
    const view = await viewOf(sock, data)
    await this.journal(view, {
      syncType: notification.syncType ?? data.syncType,
      progress: notification.progress ?? data.progress,
      isLatest,
      eventId: (part) => `history:${msg.key.id}:${part}`
    })
    this.remember(view)
  }

  // The sandbox only: the blob's default host (mmg.whatsapp.net) is the emulator's media host, the one media_conn
  // names (sandbox-trust.js). Baileys' own download after the receipt goes there too, through the same dispatcher.
  async routeSandboxMedia (sock) {
    const conn = await within(sock.refreshMediaConn(false), DOWNLOAD_TIMEOUT_MS)
    const host = conn?.hosts?.[0]?.hostname
    if (host) this.session.mediaRoute.origin = `https://${host}`
  }

  /** Baileys' `messaging-history.set`: what the hook did not journal already (see above), journaled before returning. */
  async onSet (data) {
    const s = this.session
    const view = await viewOf(s.sock, data)
    const rest = Object.fromEntries(KINDS.map((kind) => [kind, view[kind].filter((item) => !this.journaled.has(KEY[kind](item)))]))
    if (KINDS.every((kind) => !rest[kind].length)) return
    const batch = randomUUID()
    await this.journal(rest, { syncType: data.syncType, progress: data.progress, isLatest: !!data.isLatest, eventId: (part) => `history:set:${batch}:${part}` })
    this.remember(rest)
  }

  // One `history.sync` event per part (at most 100 messages), in order, each durable before the next.
  async journal (view, { syncType, progress, isLatest, eventId }) {
    const s = this.session
    const parts = partsOf(view)
    const common = { sync_type: syncTypeName(syncType), progress: Number.isInteger(progress) ? progress : null, is_latest: !!isLatest }
    for (const [i, part] of parts.entries()) {
      await s.mustPersist(s.journal.push('history.sync', { ...common, part: i + 1, parts: parts.length, ...part }, eventId(i + 1)))
    }
    if (parts.length) {
      s.log.info({ sync_type: common.sync_type, progress: common.progress, parts: parts.length, chats: view.chats.length, contacts: view.contacts.length, messages: view.messages.length }, 'history.sync')
    }
  }

  remember (view) {
    for (const kind of KINDS) for (const item of view[kind]) this.journaled.add(KEY[kind](item))
    if (this.journaled.size > JOURNALED_MAX) this.journaled.clear() // forgetting costs at most a repeat, stored once
  }
}

// `promise`, or a timeout error after `ms` (the download itself is not cancelled: Baileys gives no way to).
function within (promise, ms) {
  let timer
  const late = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}
