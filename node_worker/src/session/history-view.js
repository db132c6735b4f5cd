// What a history sync holds, as the `history.sync` events show it (issue 27; shapes in node_worker/api/openapi.json):
// Baileys' processed sync (Utils/history.js processHistoryMessage: conversations as chats, their messages, contacts
// and LID <-> phone-number pairs) -> {chats, contacts, messages} in the gateway's terms, then cut into parts of at most
// 100 messages, 100 chats and 200 contacts each. A contact's chat and a message's sender are named by phone number
// (E.164) and LID, resolved like inbound.js's: the sync's own pairs first, then this device's mapping store.
// A message is shown as a contact's `message` event shows it (kind, text or caption, media, what it quotes, the kind's
// own content as the gateway stores it); protocol messages and stubs (key shares, revokes, group notices) are no
// messages and are left out, a reaction is kind `reaction`.
import { isJidGroup, proto } from 'baileys'
import { contentOf, detailsOf, quotedIdOf } from './inbound-content.js'
import { actionOf } from './inbound-actions.js'
import { mediaInfo, unwrap } from './media-info.js'
import { jidToPhone } from '../phone.js'
import { CONTACTS_PER_EVENT, chunks, resolvePerson } from './contacts.js'
import { STATUS_NAMES } from './statuses.js'

export const MESSAGES_PER_EVENT = 100
export const CHATS_PER_EVENT = 100
const MESSAGE_CHAT = /@(s\.whatsapp\.net|lid|g\.us)$/
const PERSON = /@(s\.whatsapp\.net|lid)$/


const str = (v) => (typeof v === 'string' && v !== '' ? v : null)
const bare = (jid) => (typeof jid === 'string' ? jid.replace(/:\d+@/, '@') : null)
// protobuf.js gives uint64 fields as Long objects when the long package is there, else numbers
const num = (v) => {
  if (v == null) return null
  const n = typeof v === 'object' && typeof v.toNumber === 'function' ? v.toNumber() : Number(v)
  return Number.isSafeInteger(n) && n >= 0 ? n : null
}
const textOf = (m) => str(m?.conversation) ?? str(m?.extendedTextMessage?.text) ?? null

/** WhatsApp's name of a sync type (INITIAL_BOOTSTRAP, RECENT, FULL, PUSH_NAME, ON_DEMAND, ...), else its number. */
export const syncTypeName = (value) => proto.HistorySync.HistorySyncType[value] ?? (value == null ? null : String(value))

/** bare jid -> its other address (LID <-> phone number), both ways, from a sync's pairs. */
export function pairsOf (lidPnMappings = []) {
  const known = new Map()
  for (const { lid, pn } of lidPnMappings) {
    const l = bare(lid)
    const p = bare(pn)
    if (!l?.endsWith('@lid') || !p?.endsWith('@s.whatsapp.net')) continue
    known.set(l, p)
    known.set(p, l)
  }
  return known
}

/** {chats, contacts, messages} of a processed sync (each as the event shows it), in the sync's order. */
export async function viewOf (sock, data) {
  const known = pairsOf(data.lidPnMappings)
  for (const chat of data.chats ?? []) { // a conversation names its other address too
    const id = bare(chat.id)
    const alt = bare(str(chat.pnJid) ?? str(chat.lidJid))
    if (id && alt && PERSON.test(id) && !known.has(id)) { known.set(id, alt); known.set(alt, id) }
  }
  // one lookup per person, not per message (a sync holds thousands of messages of a few hundred chats)
  const seen = new Map()
  const person = (jid, alt) => {
    const key = `${jid}|${alt ?? ''}`
    if (!seen.has(key)) seen.set(key, resolvePerson(sock, jid, alt, known))
    return seen.get(key)
  }
  const chats = []
  for (const chat of data.chats ?? []) {
    const view = await chatOf(chat, person)
    if (view) chats.push(view)
  }
  const messages = []
  for (const m of data.messages ?? []) {
    const view = await messageOf(m, person)
    if (view) messages.push(view)
  }
  return { chats, contacts: await contactsOf(data, known, person), messages }
}

async function chatOf (chat, person) {
  const jid = bare(chat.id)
  if (!jid || !MESSAGE_CHAT.test(jid)) return null // broadcasts, newsletters: no chats
  const group = isJidGroup(jid)
  const { phone, lid } = group ? { phone: null, lid: null } : await person(jid, str(chat.pnJid) ?? str(chat.lidJid))
  return {
    chat_jid: jid,
    phone_number: phone,
    lid,
    group_id: group ? jid : null,
    name: str(chat.name) ?? str(chat.displayName) ?? null,
    unread_count: num(chat.unreadCount),
    timestamp: num(chat.conversationTimestamp) ?? num(chat.lastMsgTimestamp)
  }
}

async function messageOf (m, person) {
  const key = m?.key
  const jid = bare(key?.remoteJid)
  if (!key?.id || !jid || !MESSAGE_CHAT.test(jid) || !m.message) return null
  const shown = bodyOf(m.message)
  if (!shown) return null
  const group = isJidGroup(jid)
  const { phone, lid } = group ? { phone: null, lid: null } : await person(jid, key.remoteJidAlt ?? null)
  let participant = null
  if (group && !key.fromMe) {
    const p = await person(key.participant ?? m.participant ?? null, key.participantAlt ?? null)
    participant = { phone_number: p.phone, lid: p.lid }
  }
  return {
    wa_id: key.id,
    chat_jid: jid,
    phone_number: phone,
    lid,
    group_id: group ? jid : null,
    from_me: !!key.fromMe,
    participant,
    push_name: str(m.pushName),
    sent_at: num(m.messageTimestamp) ?? 0,
    ...shown,
    status: STATUS_NAMES[m.status] ?? null
  }
}

// {kind, text, content, media, quoted_id} of a message's content, or null for no message (protocol, stub, edit).
function bodyOf (message) {
  const action = actionOf(message)
  if (action?.type === 'message.reaction') {
    return { kind: 'reaction', text: null, content: { reaction: { target_id: action.fields.target_id, emoji: action.fields.emoji } }, media: null, quoted_id: null }
  }
  if (action) return null // an edit or revoke: history holds the message as it is now
  const content = contentOf(message)
  if (!content) return null
  const media = mediaInfo(message)
  return {
    kind: content.kind,
    text: media ? media.caption : textOf(unwrap(message)),
    content: storedContent(content, detailsOf(message, content)),
    media,
    quoted_id: quotedIdOf(message, content.field)
  }
}

// As the gateway stores a contact's message's own fields (service/store/inbound_content.py parse): {location},
// {contacts}, {poll} or {raw_type}; null for text and media.
function storedContent ({ kind, raw_type: rawType }, details) {
  if (kind === 'unsupported') return { raw_type: rawType }
  const value = details[kind]
  return value === undefined ? null : { [kind]: value }
}

// The sync's contacts, one entry per person (its names merged), and every LID <-> phone-number pair it carries.
async function contactsOf (data, known, person) {
  const byKey = new Map()
  const add = (entry) => {
    const key = entry.phone_number ?? entry.lid
    if (!key) return
    const prior = byKey.get(key)
    byKey.set(key, prior ? { ...prior, ...Object.fromEntries(Object.entries(entry).filter(([, v]) => v != null)) } : entry)
  }
  for (const c of data.contacts ?? []) {
    const jid = bare(c?.id)
    if (!jid || !PERSON.test(jid)) continue
    const { phone, lid } = await person(jid, jid.endsWith('@lid') ? str(c.phoneNumber) : str(c.lid))
    const entry = { phone_number: phone, lid }
    if (str(c.notify)) entry.push_name = c.notify
    if (str(c.name)) entry.name = c.name
    add(entry)
  }
  for (const [a, b] of known) {
    if (a.endsWith('@lid')) add({ phone_number: jidToPhone(b), lid: a })
  }
  return [...byKey.values()]
}

/** The parts of a sync's view: [{chats, contacts, messages}], at most 100/200/100 each; none when it is empty. */
export function partsOf ({ chats, contacts, messages }) {
  const c = chunks(chats, CHATS_PER_EVENT)
  const p = chunks(contacts, CONTACTS_PER_EVENT)
  const m = chunks(messages, MESSAGES_PER_EVENT)
  const parts = Math.max(c.length, p.length, m.length)
  return Array.from({ length: parts }, (_, i) => ({ chats: c[i] ?? [], contacts: p[i] ?? [], messages: m[i] ?? [] }))
}
