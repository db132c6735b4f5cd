// What contacts send: one `message` event per message a contact sent, one `message.undecryptable`
// event per message no readable copy followed, journaled before WhatsApp is told it arrived. In a group (issue 26)
// the same events name the group (`group_id`) and the participant who sent it (`from`, `lid`, `from_jid`).
import { isJidGroup, proto } from 'baileys'
import { jidToPhone, phoneToJid } from '../phone.js'
import { mediaInfo } from './media-info.js'
import { contentOf, detailsOf, quotedIdOf } from './inbound-content.js'
import { actionOf } from './inbound-actions.js'
import { openVote, pollUpdateOf } from './poll-votes.js'

const textOf = (message) => message?.conversation ??
  message?.extendedTextMessage?.text ??
  message?.ephemeralMessage?.message?.extendedTextMessage?.text ??
  null

const CONTACT_CHAT = /@(s\.whatsapp\.net|lid)$/
// a chat whose messages are events: a contact's, or a group's (broadcasts and newsletters are not)
const MESSAGE_CHAT = /@(s\.whatsapp\.net|lid|g\.us)$/

export class Inbound {
  constructor (session) {
    this.session = session
    // the messages the receipt hook saw (WhatsApp delivered them to this device, live or queued while it was offline)
    this.delivered = new WeakSet()
  }

  // beforeMessageReceipt: a contact's decrypted message, journaled before the receipt goes out.
  async onDecrypted (msg, node) {
    const s = this.session
    // our own devices' key shares, LID mappings and placeholder answers: applied (and journaled) first
    if (s.peerMessages.handles(msg)) return s.peerMessages.apply(msg, node)
    // our phone's history sync: `history.sync` events, never messages (history.js)
    if (s.history.handles(msg)) return s.history.beforeReceipt(msg)
    this.delivered.add(msg)
    const how = msg.key?.fromMe ? null : (node?.attrs?.offline ? 'append' : 'live')
    await s.mustPersist(this.recordInbound(msg, how))
  }

  onUpsert ({ messages, type }) {
    const s = this.session
    for (const msg of messages) {
      const id = msg.key?.id
      if (s.placeholders.isResolved(id)) continue // a placeholder's stub or Baileys' upsert of its journaled content
      if (msg.key?.fromMe) {
        // ours (sent by this worker, by the phone, or history sync: type 'append'): at most a status (statuses.js)
        s.statuses.onOwnUpsert(msg)
        continue
      }
      if (msg.messageStubType === proto.WebMessageInfo.StubType.CIPHERTEXT && !msg.message && msg.category !== 'peer' &&
          MESSAGE_CHAT.test(msg.key?.remoteJid ?? '')) {
        s.undecryptable.failed(msg) // a retry receipt asked for it again: undecryptable only if none follows
        continue
      }
      // Normally journaled already by the beforeMessageReceipt hook (same event id, not repeated). 'append' is what
      // Baileys calls a message delivered while this device was offline (the node's offline marker), and also what an
      // upsert of history would be called: only a message the receipt hook saw is live, history never is (history.js).
      if (type === 'notify' || (type === 'append' && this.delivered.has(msg))) s.durably(this.recordInbound(msg, type))
    }
  }

  // One `message` event per message a contact sent (the event id is stable, so a redelivery is the
  // same event). The sender is given by phone number (E.164) and, when known, LID.
  async recordInbound (msg, how) {
    const s = this.session
    if (!how || !msg?.key?.id || msg.key.fromMe || !msg.message) return null
    s.undecryptable.decrypted(msg.key.remoteJid, msg.key.id)
    const chat = msg.key.remoteJid ?? ''
    if (!MESSAGE_CHAT.test(chat)) return null // broadcasts, newsletters: not events
    const vote = pollUpdateOf(msg.message) // a vote on a poll we sent: decrypted here (poll-votes.js)
    if (vote) return this.recordPollVote(msg, chat, vote)
    const action = actionOf(msg.message) // a reaction, edit or revoke: an event about another message
    if (action) return this.recordAction(msg, chat, action)
    const content = contentOf(msg.message)
    if (!content) return null // protocol messages (key shares, history notices, edits of state) are no messages
    const sender = await this.senderOf(msg)
    const { from: phone, lid } = sender
    // a media message (media-info.js): its text is the caption; its descriptor (the media key) is in the event only
    const media = mediaInfo(msg.message)
    const text = media ? media.caption : textOf(msg.message)
    const event = {
      id: msg.key.id,
      ...sender,
      push_name: msg.pushName ?? null,
      timestamp: Number(msg.messageTimestamp ?? 0),
      kind: content.kind,
      text,
      quoted_id: quotedIdOf(msg.message, content.field), // a reply: the WhatsApp id of the message it quotes
      offline: how === 'append',
      ...(content.raw_type ? { raw_type: content.raw_type } : {}),
      ...detailsOf(msg.message, content),
      ...(media ? { media } : {})
    }
    // One line per message (never its text, caption or media key): the receipt hook and Baileys' upsert both record it, the second
    // finds it journaled (`added` false) and stays silent, as does a redelivery.
    const { event: recorded, added } = await s.journal.add('message', event, `in:${chat}:${msg.key.id}`)
    if (added) {
      s.log.info({ message_id: msg.key.id, from: phone, lid, ...(sender.group_id ? { group_id: sender.group_id } : {}), kind: content.kind, length: text?.length ?? 0, offline: event.offline,
        ...(media ? { size: media.size, sha256_prefix: media.sha256?.slice(0, 12) ?? null } : {}) }, 'message.received')
    }
    return recorded
  }

  // One `message.reaction`, `message.edited` or `message.revoked` event per such message of a contact (stable id:
  // its WhatsApp id). Logged without the emoji or the new text.
  async recordAction (msg, chat, { type, fields }) {
    const s = this.session
    const sender = await this.senderOf(msg)
    const event = { id: msg.key.id, ...sender, timestamp: Number(msg.messageTimestamp ?? 0), ...fields }
    const { event: recorded, added } = await s.journal.add(type, event, `${type}:${chat}:${msg.key.id}`)
    if (added) s.log.info({ message_id: msg.key.id, target_id: fields.target_id, from: sender.from, lid: sender.lid }, type)
    return recorded
  }

  // One `poll.vote` event per vote message of a contact (stable id: its WhatsApp id; a changed vote is a new
  // message), with the option names it selects, or options null and why. Logged without the options.
  async recordPollVote (msg, chat, update) {
    const s = this.session
    const sender = await this.senderOf(msg)
    const { from: phone, lid, from_jid: voter } = sender
    const alt = (isJidGroup(chat) ? msg.key.participantAlt : msg.key.remoteJidAlt ?? msg.key.senderPn) ?? null
    const pollId = typeof update.pollCreationMessageKey?.id === 'string' ? update.pollCreationMessageKey.id : null
    const me = s.store?.state.creds.me
    const { options, error } = openVote(update, s.sentMessages?.get(pollId)?.message, {
      creators: [me?.id, me?.lid], voters: [voter, alt, phone && phoneToJid(phone), lid]
    })
    const event = {
      id: msg.key.id, ...sender, timestamp: Number(msg.messageTimestamp ?? 0), poll_id: pollId, options,
      ...(error ? { error } : {})
    }
    const { event: recorded, added } = await s.journal.add('poll.vote', event, `poll.vote:${chat}:${msg.key.id}`)
    if (added) s.log.info({ message_id: msg.key.id, poll_id: pollId, from: phone, lid, selected: options?.length ?? null, error }, 'poll.vote')
    return recorded
  }

  // beforeReceiptAck: the account's own phone read a contact's messages (WhatsApp relays the phone's read
  // receipt to its linked devices as type `read-self`, `from` ourselves, `recipient` the chat). One `chat.read`
  // event per receipt, journaled before the ack (an unacked receipt comes again: the same event id).
  async onReceiptNode (node) {
    const s = this.session
    const { attrs } = node
    if (attrs.type !== 'read-self' || !CONTACT_CHAT.test(attrs.recipient ?? '') || !s.statuses.isOwnJid(attrs.participant || attrs.from)) return
    const list = Array.isArray(node.content) ? node.content.find((c) => c.tag === 'list') : undefined
    const ids = [attrs.id, ...(Array.isArray(list?.content) ? list.content.map((item) => item.attrs?.id) : [])].filter((id) => typeof id === 'string' && id)
    if (!ids.length) return
    await s.mustPersist(this.recordChatRead(attrs.recipient, ids, Number(attrs.t ?? 0)))
  }

  async recordChatRead (chat, ids, t) {
    const s = this.session
    const jid = chat.replace(/:\d+@/, '@')
    const { phone, lid } = await this.identify(jid, null)
    const event = { from: phone, lid, from_jid: jid, ids, timestamp: Number.isFinite(t) ? t : 0 }
    const { event: recorded, added } = await s.journal.add('chat.read', event, `chat.read:${jid}:${ids[0]}`)
    if (added) s.log.info({ message_id: ids[0], count: ids.length, from: phone, lid }, 'chat.read')
    return recorded
  }

  // A contact typing, recording, or coming online or going away: one `presence` event per update (each its own
  // occurrence, so its own id), in the journal like the rest so that the gateway sees it in order.
  onPresence ({ id: chat, presences }) {
    if (!CONTACT_CHAT.test(chat ?? '')) return // groups: not yet
    for (const [jid, presence] of Object.entries(presences ?? {})) {
      if (typeof presence?.lastKnownPresence !== 'string') continue
      this.session.durably(this.recordPresence(jid, presence))
    }
  }

  async recordPresence (jid, { lastKnownPresence: state, lastSeen }) {
    const s = this.session
    const { phone, lid } = await this.identify(jid, null)
    return s.journal.push('presence', { from: phone, lid, from_jid: jid, state, last_seen: typeof lastSeen === 'number' ? lastSeen : null })
  }

  // One `message.undecryptable` event per message no readable copy followed (undecryptable.js).
  async recordUndecryptable (msg, { stubs, error }) {
    const s = this.session
    const chat = msg.key.remoteJid
    const sender = await this.senderOf(msg)
    s.log.warn({ message_id: msg.key.id, from: sender.from, lid: sender.lid, attempts: stubs, error }, 'message.undecryptable')
    return s.journal.push('message.undecryptable', {
      id: msg.key.id, ...sender, timestamp: Number(msg.messageTimestamp ?? 0), attempts: stubs, error
    }, `undecryptable:${chat}:${msg.key.id}`)
  }

  // Who sent a message, as its events show it: {from (phone), lid, from_jid}, and in a group its `group_id` (the
  // sender is then the key's participant, its other address in participantAlt).
  async senderOf (msg) {
    const chat = msg.key.remoteJid ?? ''
    if (isJidGroup(chat)) {
      const jid = (msg.key.participant ?? msg.participant ?? '').replace(/:\d+@/, '@')
      const { phone, lid } = jid ? await this.identify(jid, msg.key.participantAlt ?? null) : { phone: null, lid: null }
      return { group_id: chat, from: phone, lid, from_jid: jid || null }
    }
    const { phone, lid } = await this.identify(chat, msg.key.remoteJidAlt ?? msg.key.senderPn ?? null)
    return { from: phone, lid, from_jid: chat }
  }

  // The phone number and LID of a contact's chat jid: from the message itself (Baileys puts the
  // other address in remoteJidAlt) or from Baileys' LID mapping store.
  async identify (chat, alt) {
    const s = this.session
    const mapping = s.sock?.signalRepository?.lidMapping
    let phone = null
    let lid = null
    const pnOf = (jid) => (jid && jid.endsWith('@s.whatsapp.net')) ? jidToPhone(jid) : null
    const lidOf = (jid) => (jid && jid.endsWith('@lid')) ? jid.replace(/:\d+@/, '@') : null
    if (chat.endsWith('@lid')) {
      lid = lidOf(chat)
      phone = pnOf(alt)
      if (!phone && mapping) {
        try { phone = pnOf(await mapping.getPNForLID(chat)) } catch (err) { s.log.debug({ err }, 'lid.lookup_failed') }
      }
    } else {
      phone = pnOf(chat)
      lid = lidOf(alt)
      if (!lid && mapping) {
        try { lid = lidOf(await mapping.getLIDForPN(chat)) } catch (err) { s.log.debug({ err }, 'lid.lookup_failed') }
      }
    }
    return { phone, lid }
  }
}
