// What a test seeds into an account's phone for history sync (POST /accounts/{phone}/history): its
// conversations (1:1 by phone number or by LID, groups it is in), their messages in both directions and the
// push names it knows. The body is checked and normalised here, once, into plain JSON that the state file
// keeps on the account (`user.history`); history.js turns it into WhatsApp's HistorySync protos at each
// send. Message ids are fixed at seeding, so a second sync of the same seed names the same messages (a
// companion treats a repeated id as the same message) and a test can match what it seeded.
import { normalizePhone } from './accounts.js'
import { apiError } from './errors.js'
import { randomId } from './crypto.js'
import { unixNow } from './wa.js'
import { parseRaw } from './conversation.js'

// WebMessageInfo.Status, by the names the control API takes
export const STATUSES = ['error', 'pending', 'server_ack', 'delivered', 'read', 'played']
const MAX_CONVERSATIONS = 500
const MAX_MESSAGES = 5000 // over all conversations of one seed
const MAX_PUSH_NAMES = 2000
const GROUP_JID = /^[0-9]{5,30}(-[0-9]{5,30})?@g\.us$/

const bad = (code, message) => apiError(400, code, message)
const isObject = (v) => v != null && typeof v === 'object' && !Array.isArray(v)
const optString = (v, code, what, max = 4096) => {
  if (v == null) return undefined
  if (typeof v !== 'string' || !v.length || v.length > max) throw bad(code, `${what} must be a non-empty string of at most ${max} characters`)
  return v
}

/** unix seconds from an integer or an ISO-8601 string; undefined when absent */
const parseTimestamp = (v, where) => {
  if (v == null) return undefined
  const t = typeof v === 'string' ? Math.floor(Date.parse(v) / 1000) : v
  if (!Number.isInteger(t) || t <= 0 || t > 4102444800) throw bad('invalid_timestamp', `${where}.timestamp must be unix seconds or an ISO-8601 date`)
  return t
}

/** one message of a conversation: { id, from_me, text|raw, timestamp, status, participant?, push_name? } */
const parseMessage = (m, where, { group, defaultTs }) => {
  if (!isObject(m)) throw bad('invalid_message', `${where} must be an object`)
  if (m.from_me != null && typeof m.from_me !== 'boolean') throw bad('invalid_message', `${where}.from_me must be a boolean`)
  const fromMe = m.from_me === true
  if ((m.text == null) === (m.raw == null)) throw bad('invalid_message', `${where} needs "text" or "raw" (a Message as proto JSON), not both`)
  const text = optString(m.text, 'invalid_message', `${where}.text`, 65536)
  let raw
  if (m.raw != null) {
    if (!isObject(m.raw)) throw bad('invalid_raw', `${where}.raw must be a Message as proto JSON`)
    raw = parseRaw(m.raw).toJSON() // checked now, kept as JSON (the state file's form)
  }
  const id = optString(m.id, 'invalid_message', `${where}.id`, 128) || randomId(16)
  if (m.status != null && !STATUSES.includes(m.status)) throw bad('invalid_status', `${where}.status must be one of ${STATUSES.join(', ')}`)
  let participant
  if (group && !fromMe) {
    participant = normalizePhone(m.participant)
    if (!participant) throw bad('invalid_participant', `${where}.participant must be the E.164 number of the member who wrote it`)
  } else if (m.participant != null) {
    throw bad('invalid_participant', `${where}.participant is for members' messages in a group only`)
  }
  return {
    id,
    from_me: fromMe,
    ...(text != null ? { text } : { raw }),
    timestamp: parseTimestamp(m.timestamp, where) ?? defaultTs,
    status: m.status ?? null,
    ...(participant ? { participant } : {}),
    ...(m.push_name != null ? { push_name: optString(m.push_name, 'invalid_message', `${where}.push_name`, 256) } : {})
  }
}

/** one conversation: { phone_number, addressing } (1:1) or { group_id } (a group), name, unread_count, messages */
const parseConversation = (c, where, emu, account) => {
  if (!isObject(c)) throw bad('invalid_conversation', `${where} must be an object`)
  if ((c.phone_number == null) === (c.group_id == null)) throw bad('invalid_conversation', `${where} needs "phone_number" (a 1:1 chat) or "group_id" (a group), not both`)
  const out = {}
  if (c.group_id != null) {
    if (typeof c.group_id !== 'string' || !GROUP_JID.test(c.group_id)) throw bad('invalid_group_id', `${where}.group_id must be a group jid (<digits>@g.us)`)
    const g = emu.groups.byJid(c.group_id)
    if (!g) throw apiError(404, 'group_unknown', `${where}.group_id names no group of this network`)
    if (!emu.groups.isMember(g, account)) throw apiError(409, 'not_a_member', `the account is not in ${c.group_id}`)
    if (c.addressing != null) throw bad('invalid_addressing', `${where}.addressing is for 1:1 chats (a group has its own)`)
    out.group_id = c.group_id
  } else {
    const phone = normalizePhone(c.phone_number)
    if (!phone) throw bad('invalid_phone_number', `${where}.phone_number must be an E.164 number`)
    if (phone === account.phone) throw bad('invalid_phone_number', `${where}.phone_number is the account itself`)
    if (c.addressing != null && !['pn', 'lid'].includes(c.addressing)) throw bad('invalid_addressing', `${where}.addressing must be "pn" or "lid"`)
    emu.directory.ensure(phone) // the contact exists from now on, with its LID
    out.phone_number = phone
    out.addressing = c.addressing || 'pn'
  }
  out.name = optString(c.name, 'invalid_name', `${where}.name`, 256) ?? null
  if (c.unread_count != null && (!Number.isInteger(c.unread_count) || c.unread_count < 0)) throw bad('invalid_unread_count', `${where}.unread_count must be a non-negative integer`)
  out.unread_count = c.unread_count ?? 0
  if (c.messages != null && !Array.isArray(c.messages)) throw bad('invalid_message', `${where}.messages must be a list`)
  const list = c.messages || []
  const now = unixNow()
  out.messages = list.map((m, i) => parseMessage(m, `${where}.messages[${i}]`, { group: !!out.group_id, defaultTs: now - (list.length - i) }))
  return out
}

/** one push name: { phone_number, push_name?, addressing? } (the contact's own push name by default) */
const parsePushName = (p, where, emu) => {
  if (!isObject(p)) throw bad('invalid_push_name', `${where} must be an object`)
  const phone = normalizePhone(p.phone_number)
  if (!phone) throw bad('invalid_phone_number', `${where}.phone_number must be an E.164 number`)
  if (p.addressing != null && !['pn', 'lid'].includes(p.addressing)) throw bad('invalid_addressing', `${where}.addressing must be "pn" or "lid"`)
  const u = emu.directory.ensure(phone)
  return { phone_number: phone, push_name: optString(p.push_name, 'invalid_push_name', `${where}.push_name`, 256) ?? u.name, addressing: p.addressing || 'pn' }
}

/**
 * the body of POST /accounts/{phone}/history, checked: { conversations, push_names, delivery }. Throws
 * ApiError 400 (404 group_unknown, 409 not_a_member) naming the first bad field.
 */
export const parseSeed = (body, emu, account) => {
  for (const k of Object.keys(body)) {
    if (!['conversations', 'push_names', 'delivery'].includes(k)) throw bad('invalid_field', `unknown field "${k}" (conversations, push_names, delivery)`)
  }
  if (body.conversations != null && !Array.isArray(body.conversations)) throw bad('invalid_conversation', '"conversations" must be a list')
  if (body.push_names != null && !Array.isArray(body.push_names)) throw bad('invalid_push_name', '"push_names" must be a list')
  const conversations = body.conversations || []
  const pushNames = body.push_names || []
  if (conversations.length > MAX_CONVERSATIONS) throw bad('too_many', `at most ${MAX_CONVERSATIONS} conversations`)
  if (pushNames.length > MAX_PUSH_NAMES) throw bad('too_many', `at most ${MAX_PUSH_NAMES} push names`)
  const total = conversations.reduce((n, c) => n + (Array.isArray(c?.messages) ? c.messages.length : 0), 0)
  if (total > MAX_MESSAGES) throw bad('too_many', `at most ${MAX_MESSAGES} messages in all`)
  const delivery = parseDelivery(body.delivery)
  const parsed = conversations.map((c, i) => parseConversation(c, `conversations[${i}]`, emu, account))
  const chats = new Set(parsed.map((c) => c.group_id || c.phone_number))
  if (chats.size !== parsed.length) throw bad('invalid_conversation', 'a chat is named by two conversations')
  return { conversations: parsed, push_names: pushNames.map((p, i) => parsePushName(p, `push_names[${i}]`, emu)), delivery: delivery || 'download' }
}

/** "download" (the blob on the media host, as WhatsApp sends every chunk) or "inline" (in the notification) */
export const parseDelivery = (v) => {
  if (v == null) return undefined
  if (!['download', 'inline'].includes(v)) throw bad('invalid_delivery', '"delivery" must be "download" or "inline"')
  return v
}
