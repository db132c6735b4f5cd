// Conversation primitives of the emulated phones, in WhatsApp's own protos (Baileys' `proto`):
//   * a contact's phone RECEIVING from a linked device: a reply (contextInfo.stanzaId), a reaction
//     (reactionMessage), an edit (protocolMessage MESSAGE_EDIT), a revoke (protocolMessage REVOKE), a
//     location, a contact card (contactMessage / contactsArrayMessage), a poll (pollCreationMessage, V2, V3);
//     reactions, edits and revokes change the inbox entry of the message they name, under WhatsApp's rules
//     (only the sender's own message, an edit only within the edit window), a refused one is recorded;
//   * a contact's phone SENDING the same (POST /contacts/{phone}/messages with reply_to, reaction, edit,
//     revoke, poll_vote, location): the Message it builds here, encrypted and delivered by messaging.js;
//   * chat presence: what the account last sent a contact (chatstate, presence), and a contact's own
//     (POST /contacts/{phone}/presence) sent to the account's online devices, never queued (as WhatsApp).
import { randomBytes } from 'node:crypto'
import { proto, unixNow, jidDecode } from './wa.js'
import { apiError } from './errors.js'
import { e164, normalizePhone } from './accounts.js'
import { encryptPollVote, optionHash } from './poll-crypto.js'

const P = proto.Message.ProtocolMessage.Type
// WhatsApp lets a sender edit a message for 15 minutes (its help centre); WA_EMULATOR_EDIT_WINDOW_SECONDS
export const EDIT_WINDOW_SECONDS = 15 * 60
export const CHAT_STATES = ['composing', 'recording', 'paused', 'available', 'unavailable']
const ACTIONS = ['reply_to', 'reaction', 'edit', 'revoke', 'poll_vote', 'location', 'contacts', 'poll', 'raw']

const unwrap = (msg) => msg?.ephemeralMessage?.message || msg?.viewOnceMessage?.message || msg?.viewOnceMessageV2?.message || msg
const pollOf = (m) => m.pollCreationMessage || m.pollCreationMessageV2 || m.pollCreationMessageV3
const textOfContent = (m) => m?.conversation || m?.extendedTextMessage?.text || null
const idString = (v, name) => {
  if (typeof v !== 'string' || !v || v.length > 128) throw apiError(400, 'invalid_action', `${name} must be a message id`)
  return v
}
const finite = (v, name, lim) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > lim) throw apiError(400, 'invalid_location', `location.${name} must be a number within ±${lim}`)
  return v
}
const optStr = (v, name) => {
  if (v == null) return undefined
  if (typeof v !== 'string' || v.length > 1024) throw apiError(400, 'invalid_location', `location.${name} must be a string`)
  return v
}

/**
 * the conversation fields of an inbox entry (GET /contacts/{phone}/messages): kind, quoted_id, reactions,
 * edits, revoked always; location, contacts, vcards, poll (with its votes), action where they apply
 */
export const conversationView = (e) => ({
  kind: e.kind ?? null,
  quoted_id: e.quoted_id ?? null,
  reactions: e.reactions || {},
  edits: e.edits || [],
  revoked: !!e.revoked,
  ...(e.location ? { location: e.location } : {}),
  ...(e.contacts ? { contacts: e.contacts, vcards: e.vcards } : {}),
  ...(e.poll ? { poll: { ...e.poll, votes: e.votes || {} } } : {}),
  ...(e.action ? { action: e.action } : {}),
  ...(e.mentions ? { mentions: e.mentions } : {})
})

/** GET /contacts/{phone}/messages: every message the phone of user `u` received */
export const inboxView = (u) => (u?.inbox || []).map(({ id, from, text, timestamp, duplicate_count: d, retries, error, media, group_id: g, participant, ...rest }) => (
  { id, from, text, timestamp, duplicate_count: d, retries: retries || 0, error: error || null, ...(media ? { media } : {}), ...(g ? { group_id: g, participant } : {}), ...conversationView(rest) }))

// a vCard 3.0 of a name and a number, as WhatsApp's apps write one (waid: the number's WhatsApp id)
const vcardOf = (name, phone) => `BEGIN:VCARD\nVERSION:3.0\nFN:${name.replace(/[\r\n]/g, ' ')}\nTEL;type=CELL;waid=${phone}:+${phone}\nEND:VCARD`
const parseContacts = (v) => {
  if (!Array.isArray(v) || !v.length || v.length > 20) throw apiError(400, 'invalid_contacts', '"contacts" must be a list of 1 to 20 {name, phone_number} or {name, vcard}')
  return v.map((c) => {
    if (!c || typeof c !== 'object' || typeof c.name !== 'string' || !c.name || c.name.length > 256) throw apiError(400, 'invalid_contacts', 'each contact needs a "name"')
    if (typeof c.vcard === 'string' && /^BEGIN:VCARD\r?\n[\s\S]*END:VCARD\s*$/.test(c.vcard) && c.vcard.length <= 65536) return { displayName: c.name, vcard: c.vcard }
    const phone = normalizePhone(c.phone_number)
    if (!phone || c.vcard != null) throw apiError(400, 'invalid_contacts', 'each contact needs an E.164 "phone_number" or a "vcard" (BEGIN:VCARD ... END:VCARD)')
    return { displayName: c.name, vcard: vcardOf(c.name, phone) }
  })
}
// any Message as proto JSON (a type the gateway does not know, for its "unsupported" path); fields the proto
// does not have are dropped (and values converted as protobufjs' fromObject does), so a body without one
// known field is refused
export const parseRaw = (v) => {
  let msg
  try { msg = proto.Message.fromObject(v) } catch (err) { throw apiError(400, 'invalid_raw', `"raw" is not a WhatsApp Message: ${err.message}`) }
  if (!proto.Message.encode(msg).finish().length) throw apiError(400, 'invalid_raw', '"raw" names no field of WhatsApp\'s Message')
  return msg
}
// WhatsApp's polls: 2 to 12 distinct options
const parsePoll = (v) => {
  if (typeof v.question !== 'string' || !v.question || v.question.length > 256) throw apiError(400, 'invalid_poll', 'poll.question must be a non-empty string')
  const opts = v.options
  if (!Array.isArray(opts) || opts.length < 2 || opts.length > 12 || opts.some((o) => typeof o !== 'string' || !o || o.length > 100) || new Set(opts).size !== opts.length) {
    throw apiError(400, 'invalid_poll', 'poll.options must be 2 to 12 distinct non-empty strings')
  }
  if (v.multiple != null && typeof v.multiple !== 'boolean') throw apiError(400, 'invalid_poll', 'poll.multiple must be a boolean')
  return { question: v.question, options: opts, multiple: !!v.multiple }
}

/** the conversation action of a POST /contacts/{phone}/messages body, its shape checked; null for none */
export const parseAction = (body) => {
  const given = ACTIONS.filter((k) => body[k] != null)
  if (!given.length) return null
  if (given.length > 1) throw apiError(400, 'invalid_action', `send one of ${ACTIONS.join(', ')}, not ${given.join(' and ')}`)
  const kind = given[0]
  const v = body[kind]
  const obj = (name) => { if (typeof v !== 'object' || Array.isArray(v)) throw apiError(400, 'invalid_action', `"${name}" must be an object`) }
  const needsText = kind === 'reply_to'
  if (needsText && (typeof body.text !== 'string' || !body.text)) throw apiError(400, 'invalid_text', 'a reply needs a non-empty "text"')
  if (!needsText && body.text != null) throw apiError(400, 'invalid_text', `"text" does not go with "${kind}"`)
  if (body.media != null) throw apiError(400, 'invalid_action', `"media" does not go with "${kind}"`)
  switch (kind) {
    case 'reply_to': return { kind, id: idString(v, '"reply_to"'), text: body.text }
    case 'reaction':
      obj(kind)
      if (typeof v.emoji !== 'string' || v.emoji.length > 32) throw apiError(400, 'invalid_action', 'reaction.emoji must be a string ("" removes the reaction)')
      return { kind, id: idString(v.id, 'reaction.id'), emoji: v.emoji }
    case 'edit':
      obj(kind)
      if (typeof v.text !== 'string' || !v.text) throw apiError(400, 'invalid_text', 'edit.text must be a non-empty string')
      return { kind, id: idString(v.id, 'edit.id'), text: v.text }
    case 'revoke': obj(kind); return { kind, id: idString(v.id, 'revoke.id') }
    case 'poll_vote':
      obj(kind)
      if (!Array.isArray(v.options) || v.options.some((o) => typeof o !== 'string')) throw apiError(400, 'invalid_action', 'poll_vote.options must be a list of option names ([] withdraws the vote)')
      return { kind, id: idString(v.id, 'poll_vote.id'), options: v.options }
    case 'contacts': return { kind, contacts: parseContacts(v) }
    case 'raw': obj(kind); return { kind, message: parseRaw(v) }
    case 'poll': obj(kind); return { kind, poll: parsePoll(v) }
    case 'location':
      obj(kind)
      return {
        kind,
        location: { degreesLatitude: finite(v.latitude, 'latitude', 90), degreesLongitude: finite(v.longitude, 'longitude', 180), name: optStr(v.name, 'name'), address: optStr(v.address, 'address') }
      }
  }
}

/** a poll as WhatsApp's apps send it (V3 single choice, the original multiple), with its secret for the votes */
const pollMessage = ({ question, options, multiple }) => {
  const secret = randomBytes(32)
  const creation = { name: question, options: options.map((optionName) => ({ optionName })), selectableOptionsCount: multiple ? 0 : 1 }
  return {
    content: { [multiple ? 'pollCreationMessage' : 'pollCreationMessageV3']: creation, messageContextInfo: { messageSecret: secret } },
    sent: { poll: { question, options, multiple }, poll_secret: secret.toString('base64') }
  }
}

export class Conversation {
  constructor (emu) {
    this.emu = emu
    this.editWindowSeconds = emu.settings.editWindowSeconds ?? EDIT_WINDOW_SECONDS
    this.presenceSeq = 0
  }

  // ---------------------------------------------------------------- linked device -> contact's phone
  /**
   * what the contact's phone `target` makes of message `msg` from `sender`: the fields of its
   * own inbox entry; a reaction, edit or revoke is applied to the entry it names here
   */
  receive (target, sender, msg) {
    const m = unwrap(msg)
    if (!m) return {}
    const from = e164(sender.phone)
    const ctx = m.extendedTextMessage?.contextInfo || Object.values(m).find((c) => c?.contextInfo?.stanzaId)?.contextInfo
    const out = {}
    if (ctx?.stanzaId) out.quoted_id = ctx.stanzaId
    // the members a text or caption mentions (contextInfo.mentionedJid), as +E.164 where the jid is a number's
    const mentioned = (m.extendedTextMessage?.contextInfo || Object.values(m).find((c) => c?.contextInfo?.mentionedJid?.length)?.contextInfo)?.mentionedJid
    if (mentioned?.length) out.mentions = mentioned.map((jid) => jidDecode(jid)?.server === 's.whatsapp.net' ? `+${jidDecode(jid).user}` : jid)
    if (m.reactionMessage) out.action = this.applyReaction(target, from, m.reactionMessage)
    const pm = m.protocolMessage
    if (pm?.type === P.MESSAGE_EDIT) out.action = this.applyEdit(target, from, pm)
    if (pm?.type === P.REVOKE) out.action = this.applyRevoke(target, from, pm)
    if (m.locationMessage) {
      const l = m.locationMessage
      out.location = { latitude: l.degreesLatitude, longitude: l.degreesLongitude, name: l.name || null, address: l.address || null }
    }
    if (m.contactMessage) out.contacts = [{ name: m.contactMessage.displayName || null, vcard: m.contactMessage.vcard || null }]
    if (m.contactsArrayMessage) out.contacts = (m.contactsArrayMessage.contacts || []).map((c) => ({ name: c.displayName || null, vcard: c.vcard || null }))
    if (out.contacts) out.vcards = out.contacts.map((c) => c.vcard)
    const poll = pollOf(m)
    if (poll) {
      out.poll = { question: poll.name, options: (poll.options || []).map((o) => o.optionName), multiple: poll.selectableOptionsCount !== 1 }
      const secret = msg.messageContextInfo?.messageSecret || m.messageContextInfo?.messageSecret
      if (secret?.length) out.poll_secret = Buffer.from(secret).toString('base64') // for the votes (never shown)
    }
    // a linked device's vote would be on a contact's poll, which a contact cannot send yet
    if (m.pollUpdateMessage) out.action = { type: 'poll_vote', target_id: m.pollUpdateMessage.pollCreationMessageKey?.id || null, applied: false, refused: 'unknown_poll' }
    return out
  }

  /** the inbox entry of `target` a key names, with the rule that decides who may change it */
  entryOf (target, from, key) {
    const id = key?.id
    if (!id) return null
    // fromMe in the sender's key: its own message, in target's inbox; else one the target sent it
    if (key.fromMe) return target.inbox.find((e) => e.id === id && e.from === from) || null
    // one the target sent to `from`, or to a group (`from` acts on it there: the key names the target as participant)
    return target.sent.find((e) => e.id === id && (e.to === from || String(e.to).endsWith('@g.us'))) || null
  }

  applyReaction (target, from, r) {
    const entry = this.entryOf(target, from, r.key)
    const action = { type: 'reaction', target_id: r.key?.id || null, emoji: r.text || '' }
    if (!entry) return { ...action, applied: false, refused: 'unknown_message' }
    entry.reactions = { ...(entry.reactions || {}) }
    if (r.text) entry.reactions[from] = r.text
    else delete entry.reactions[from]
    return { ...action, applied: true, refused: null }
  }

  applyEdit (target, from, pm) {
    const action = { type: 'edit', target_id: pm.key?.id || null }
    if (!pm.key?.fromMe) return { ...action, applied: false, refused: 'not_own_message' }
    const entry = this.entryOf(target, from, pm.key)
    if (!entry) return { ...action, applied: false, refused: 'unknown_message' }
    if (entry.revoked) return { ...action, applied: false, refused: 'revoked' }
    if (unixNow() - entry.timestamp > this.editWindowSeconds) return { ...action, applied: false, refused: 'edit_window_expired' }
    const text = textOfContent(pm.editedMessage)
    if (text == null) return { ...action, applied: false, refused: 'no_text' }
    if (!entry.edits) entry.edits = [entry.text]
    entry.edits.push(text)
    entry.text = text
    return { ...action, applied: true, refused: null }
  }

  applyRevoke (target, from, pm) {
    const action = { type: 'revoke', target_id: pm.key?.id || null }
    if (!pm.key?.fromMe) return { ...action, applied: false, refused: 'not_own_message' }
    const entry = this.entryOf(target, from, pm.key)
    if (!entry) return { ...action, applied: false, refused: 'unknown_message' }
    entry.revoked = true
    return { ...action, applied: true, refused: null }
  }

  // ---------------------------------------------------------------- contact's phone -> account
  /**
   * the Message (not encoded) the contact's phone sends for `action` (parseAction) in its chat with
   * `account`, and what its sent entry keeps; 404 for a message id it does not know, 409 when WhatsApp
   * would not let it (an edit or revoke of another's message, an edit past the window, a bad vote)
   */
  build (contact, account, action) {
    if (action.kind === 'location') return { content: { locationMessage: action.location } }
    if (action.kind === 'contacts') {
      const cs = action.contacts
      return { content: cs.length === 1 ? { contactMessage: cs[0] } : { contactsArrayMessage: { displayName: `${cs.length} contacts`, contacts: cs } } }
    }
    if (action.kind === 'poll') return pollMessage(action.poll)
    if (action.kind === 'raw') return { content: action.message }
    const acct = e164(account.phone)
    const mine = contact?.sent.find((e) => e.id === action.id && e.to === acct)
    const theirs = contact?.inbox.find((e) => e.id === action.id && e.from === acct)
    const found = mine || theirs
    if (!found) throw apiError(404, 'message_unknown', `no message ${action.id} in this contact's chat with ${acct}`)
    const key = { remoteJid: account.jid, fromMe: !!mine, id: action.id }
    const own = () => {
      if (!mine) throw apiError(409, 'not_own_message', 'WhatsApp lets a contact edit or revoke only its own messages')
      if (mine.revoked) throw apiError(409, 'revoked', 'this message was revoked')
    }
    switch (action.kind) {
      case 'reply_to':
        return { content: { extendedTextMessage: { text: action.text, contextInfo: { stanzaId: action.id, participant: mine ? contact.jid : account.jid, quotedMessage: { conversation: found.text || '' } } } }, sent: { text: action.text } }
      case 'reaction': // the contact's phone shows its own reaction too
        found.reactions = { ...(found.reactions || {}) }
        if (action.emoji) found.reactions[e164(contact.phone)] = action.emoji
        else delete found.reactions[e164(contact.phone)]
        return { content: { reactionMessage: { key, text: action.emoji, senderTimestampMs: Date.now() } } }
      case 'edit':
        own()
        if (unixNow() - mine.timestamp > this.editWindowSeconds) throw apiError(409, 'edit_window_expired', `WhatsApp allows an edit for ${this.editWindowSeconds} s after the message`)
        mine.edits = [...(mine.edits || [mine.text ?? null]), action.text]
        mine.text = action.text
        return { content: { protocolMessage: { key, type: P.MESSAGE_EDIT, editedMessage: { conversation: action.text }, timestampMs: Date.now() } } }
      case 'revoke':
        own()
        mine.revoked = true
        return { content: { protocolMessage: { key, type: P.REVOKE } } }
      case 'poll_vote': return { content: this.vote(contact, account, theirs, action) }
    }
  }

  vote (contact, account, poll, action) {
    if (!poll?.poll || !poll.poll_secret) throw apiError(409, 'not_a_poll', `${action.id} is not a poll ${e164(account.phone)} sent`)
    const unknown = action.options.filter((o) => !poll.poll.options.includes(o))
    if (unknown.length) throw apiError(400, 'invalid_action', 'poll_vote.options must be options of the poll')
    if (!poll.poll.multiple && action.options.length > 1) throw apiError(400, 'invalid_action', 'this poll takes one option')
    poll.votes = { ...(poll.votes || {}), [e164(contact.phone)]: [...new Set(action.options)] }
    // the key binds the poll's creator and the voter as the chat names them: LIDs in a chat addressed by LID (whatsmeow
    // msgsecret.go keys a vote by the sender as its message came), phone-number jids otherwise (Baileys' getKeyAuthor)
    const byLid = contact.addressing === 'lid'
    const [creator, voter] = byLid ? [account.lidJid, contact.lidJid] : [account.jid, contact.jid]
    const enc = encryptPollVote({ selectedOptions: [...new Set(action.options)].map(optionHash) }, { secret: poll.poll_secret, pollId: poll.id, creator, voter })
    return { pollUpdateMessage: { pollCreationMessageKey: { remoteJid: creator, fromMe: false, id: poll.id }, vote: enc, senderTimestampMs: Date.now() } }
  }

  // ---------------------------------------------------------------- presence
  /** <chatstate> or <presence> from a linked device: what its contacts see of it */
  onClientPresence (conn, node) {
    if (!conn.device) return
    const user = conn.user
    const t = unixNow()
    const seq = ++this.presenceSeq
    if (node.tag === 'presence') {
      if (node.attrs.type !== 'available' && node.attrs.type !== 'unavailable') return // subscriptions: nothing to record
      user.availability = { state: node.attrs.type, timestamp: t, seq }
      conn.log.debug('presence.received', { state: node.attrs.type })
      return
    }
    const first = Array.isArray(node.content) ? node.content[0] : null
    const jid = node.attrs.to
    let contact
    try { contact = jid && this.emu.directory.resolve(jidDecode(jid)) } catch { contact = undefined }
    if (!first || !contact) return
    const state = first.tag === 'composing' && first.attrs?.media === 'audio' ? 'recording' : first.tag
    if (!CHAT_STATES.includes(state)) return
    contact.presenceReceived = { ...(contact.presenceReceived || {}), [e164(user.phone)]: { state, timestamp: t, seq } }
    conn.log.debug('chatstate.received', { state })
  }

  /** GET /contacts/{phone}/presence: per account, the chat state or availability it last sent this contact */
  presenceView (contact) {
    const out = []
    const from = new Set(Object.keys(contact?.presenceReceived || {}))
    for (const phone of from) {
      const chat = contact.presenceReceived[phone]
      const avail = this.emu.directory.get(normalizePhone(phone))?.availability
      const last = avail && avail.seq > chat.seq ? avail : chat
      out.push({ from: phone, state: last.state, timestamp: last.timestamp, chat_state: chat.state, availability: avail?.state || null })
    }
    return out
  }

  /** POST /contacts/{phone}/presence {to, state}: the contact's phone tells the account's online devices */
  contactPresence (contactPhoneInput, { to, state }) {
    const contactPhone = normalizePhone(contactPhoneInput)
    if (!contactPhone) throw apiError(400, 'invalid_phone_number', 'the contact phone number in the path is not an E.164 number')
    const toPhone = normalizePhone(to)
    if (!toPhone || toPhone === contactPhone) throw apiError(400, 'invalid_phone_number', '"to" must be the E.164 number of another user')
    if (!CHAT_STATES.includes(state)) throw apiError(400, 'invalid_state', `"state" must be one of ${CHAT_STATES.join(', ')}`)
    const account = this.emu.directory.get(toPhone)
    if (!account?.devices.size) throw apiError(409, 'no_linked_device', `${e164(toPhone)} has no linked device`)
    const contact = this.emu.directory.ensure(contactPhone)
    const node = state === 'available' || state === 'unavailable'
      ? { tag: 'presence', attrs: { from: contact.jid, type: state } }
      : { tag: 'chatstate', attrs: { from: contact.jid }, content: [{ tag: state === 'recording' ? 'composing' : state, attrs: state === 'recording' ? { media: 'audio' } : {} }] }
    let sent = 0
    for (const dev of account.devices.values()) {
      for (const c of this.emu.connectionsOfDevice(account, dev)) {
        if (c.offlineSent && c.sendNode(node)) { sent++; break }
      }
    }
    this.emu.log.info('contact.presence_sent', { state, devices_online: sent })
    return { state, delivered_to: sent }
  }
}

