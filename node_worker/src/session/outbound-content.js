// What a send carries besides text and media (issue 25, item 1; the shapes: node_worker/api/openapi.json): a reply
// (`quoted`), a reaction, an edit, a revoke, a location, contact cards, a poll, and two things that are no
// messages, a read receipt and a chat presence. Checked here strictly (400 invalid_message, a field a content does
// not take 400 unknown_field), then turned into Baileys' own content (AnyMessageContent, rc14
// Utils/messages.js generateWAMessageContent) so that Baileys builds every protobuf: reaction, edit, revoke,
// location, contact cards, poll (with the gateway's secret as its messageSecret) and the reply's contextInfo.
// Nothing here logs: `describe(content)` is what a log line may show (kind, lengths, counts, never a body).
import { proto } from 'baileys'
import { WorkerError } from '../errors.js'
import { SEND_FAILURE } from '../states.js'
import { isE164, phoneToJid } from '../phone.js'
import { parseMedia } from './media.js'

// The contents a send takes, exactly one of them; `quoted` goes beside the ones that can be a reply.
export const CONTENT_KINDS = Object.freeze(['text', 'media', 'reaction', 'edit', 'revoke', 'location', 'contacts', 'poll', 'read', 'presence'])
export const QUOTABLE = Object.freeze(['text', 'media', 'location', 'contacts', 'poll'])
// Not messages: nothing is stored and no server ack is awaited (answered once written to the socket).
export const CHAT_ACTIONS = Object.freeze(['read', 'presence'])
export const CHAT_STATES = Object.freeze(['composing', 'recording', 'paused', 'available', 'unavailable'])

export const POLL_OPTIONS = Object.freeze([2, 12])
export const MAX_POLL_QUESTION = 255
export const MAX_POLL_OPTION = 100
export const MAX_CARDS = 50
export const MAX_VCARD = 16384
export const MAX_PLACE = 1024
export const MAX_NAME = 256
export const MAX_READ_IDS = 1000
export const MAX_EMOJI = 32
// `mentions` (contextInfo.mentionedJid) go beside these; at most a group's size (WhatsApp's 1,024 participants)
export const MENTIONABLE = Object.freeze(['text', 'media'])
export const MAX_MENTIONS = 1024
// A WhatsApp message id as other clients make them: printable ASCII without spaces (ours are letters and digits).
const WA_ID = /^[\x21-\x7e]{1,128}$/
const LID_JID = /^[0-9]{1,20}(:[0-9]{1,4})?@lid$/
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/
const VCARD = /^\s*BEGIN:VCARD\r?\n[\s\S]*\r?\nEND:VCARD\s*$/i
// Lengths in characters (code points) as the gateway counts them (Python), not in UTF-16 units: an emoji is one.
const chars = (s) => [...s].length

const invalid = (message) => new WorkerError(400, SEND_FAILURE.INVALID_MESSAGE, message)
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const object = (v, name, fields, onlyKnown) => {
  if (!isObject(v)) throw invalid(`${name} must be an object.`)
  onlyKnown(Object.keys(v), fields, `field of ${name}`)
  return v
}
const waId = (v, name) => {
  if (typeof v !== 'string' || !WA_ID.test(v)) throw invalid(`${name} must be a WhatsApp message id (1 to 128 printable characters, no spaces).`)
  return v
}
const bool = (v, name) => {
  if (typeof v !== 'boolean') throw invalid(`${name} must be true or false.`)
  return v
}
// A short text WhatsApp shows as is: not blank, no NUL, within its bound (the gateway's own rule, models/conversation.py).
const shown = (v, name, max) => {
  if (typeof v !== 'string' || !v.trim() || v.includes('\u0000') || chars(v) > max) throw invalid(`${name} must be 1 to ${max} characters (not blank).`)
  return v
}
const optionalShown = (v, name, max) => v == null ? undefined : shown(v, name, max)
const text = (v, name) => {
  if (typeof v !== 'string' || !v.trim()) throw invalid(`${name} must be a non-empty string.`)
  return v
}
const coordinate = (v, name, bound) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > bound) throw invalid(`${name} must be a number from -${bound} to ${bound}.`)
  return v
}

// The sender of a group message a reaction or reply names, as a jid, or null: in a group the key of another's
// message needs its participant (in a chat with a contact the chat names the sender). Given as +E.164 or as the
// participant's jid (the `from_jid` of its message event: a phone-number or LID jid; a device suffix is dropped).
const PARTICIPANT_JID = /^([0-9]{1,20})(:[0-9]{1,4})?@(s\.whatsapp\.net|lid)$/
const participantOf = (v, name) => {
  if (v == null) return null
  if (isE164(v)) return phoneToJid(v)
  const m = typeof v === 'string' ? PARTICIPANT_JID.exec(v) : null
  if (!m) throw invalid(`${name} must be the sender's phone number (+E.164) or jid (digits@s.whatsapp.net, digits@lid), or null.`)
  return `${m[1]}@${m[3]}`
}

// Each content's own check: its value as the send will use it.
const PARSERS = {
  text: (v) => text(v, 'text'),
  media: (v, onlyKnown) => parseMedia(v, onlyKnown),
  reaction: (v, onlyKnown) => {
    object(v, 'reaction', ['key', 'emoji'], onlyKnown)
    const key = object(v.key, 'reaction.key', ['id', 'from_me', 'participant'], onlyKnown)
    // One emoji is the gateway's check (with an emoji library); here a short string, '' to remove it.
    if (typeof v.emoji !== 'string' || chars(v.emoji) > MAX_EMOJI || v.emoji.includes('\u0000') || (v.emoji && !v.emoji.trim())) {
      throw invalid(`reaction.emoji must be an emoji (at most ${MAX_EMOJI} characters), or "" to remove the reaction.`)
    }
    const participant = participantOf(key.participant, 'reaction.key.participant')
    return { key: { id: waId(key.id, 'reaction.key.id'), from_me: bool(key.from_me, 'reaction.key.from_me'), ...(participant ? { participant } : {}) }, emoji: v.emoji }
  },
  edit: (v, onlyKnown) => {
    object(v, 'edit', ['key', 'text'], onlyKnown)
    const key = object(v.key, 'edit.key', ['id'], onlyKnown)
    return { key: { id: waId(key.id, 'edit.key.id') }, text: text(v.text, 'edit.text') }
  },
  revoke: (v, onlyKnown) => {
    object(v, 'revoke', ['key'], onlyKnown)
    const key = object(v.key, 'revoke.key', ['id', 'from_me'], onlyKnown)
    // In a chat with a contact WhatsApp revokes only the sender's own messages (an admin's delete is for groups).
    if (bool(key.from_me, 'revoke.key.from_me') !== true) throw invalid('revoke.key.from_me must be true: only our own message can be revoked in a chat with a contact.')
    return { key: { id: waId(key.id, 'revoke.key.id'), from_me: true } }
  },
  location: (v, onlyKnown) => {
    object(v, 'location', ['latitude', 'longitude', 'name', 'address'], onlyKnown)
    const out = { latitude: coordinate(v.latitude, 'location.latitude', 90), longitude: coordinate(v.longitude, 'location.longitude', 180) }
    const name = optionalShown(v.name, 'location.name', MAX_PLACE)
    const address = optionalShown(v.address, 'location.address', MAX_PLACE)
    return { ...out, ...(name !== undefined ? { name } : {}), ...(address !== undefined ? { address } : {}) }
  },
  contacts: (v, onlyKnown) => {
    object(v, 'contacts', ['display_name', 'vcards'], onlyKnown)
    if (!Array.isArray(v.vcards) || v.vcards.length < 1 || v.vcards.length > MAX_CARDS) throw invalid(`contacts.vcards must be a list of 1 to ${MAX_CARDS} vCards.`)
    for (const card of v.vcards) {
      if (typeof card !== 'string' || chars(card) > MAX_VCARD || card.includes('\u0000') || !VCARD.test(card)) {
        throw invalid(`Each of contacts.vcards must be one vCard (BEGIN:VCARD ... END:VCARD) of at most ${MAX_VCARD} characters.`)
      }
    }
    return { display_name: shown(v.display_name, 'contacts.display_name', MAX_NAME), vcards: [...v.vcards] }
  },
  poll: (v, onlyKnown) => {
    object(v, 'poll', ['name', 'values', 'selectable_count', 'secret'], onlyKnown)
    const [low, high] = POLL_OPTIONS
    if (!Array.isArray(v.values) || v.values.length < low || v.values.length > high) throw invalid(`poll.values must be a list of ${low} to ${high} options.`)
    for (const option of v.values) shown(option, 'Each of poll.values', MAX_POLL_OPTION)
    if (new Set(v.values).size !== v.values.length) throw invalid('poll.values must be distinct.')
    if (v.selectable_count !== 0 && v.selectable_count !== 1) throw invalid('poll.selectable_count must be 0 (several may be chosen) or 1.')
    // The gateway makes the secret (32 random bytes) and keeps it too; the votes are encrypted with it.
    if (typeof v.secret !== 'string' || !BASE64_32.test(v.secret)) throw invalid('poll.secret must be 32 bytes in base64 (44 characters).')
    return { name: shown(v.name, 'poll.name', MAX_POLL_QUESTION), values: [...v.values], selectable_count: v.selectable_count, secret: v.secret }
  },
  read: (v, onlyKnown) => {
    object(v, 'read', ['ids'], onlyKnown)
    if (!Array.isArray(v.ids) || v.ids.length < 1 || v.ids.length > MAX_READ_IDS) throw invalid(`read.ids must be a list of 1 to ${MAX_READ_IDS} message ids.`)
    return { ids: [...new Set(v.ids.map((id) => waId(id, 'Each of read.ids')))] }
  },
  presence: (v, onlyKnown) => {
    object(v, 'presence', ['state'], onlyKnown)
    if (!CHAT_STATES.includes(v.state)) throw invalid(`presence.state must be one of ${CHAT_STATES.join(', ')}.`)
    return { state: v.state }
  }
}

// The message a reply quotes: {id (WhatsApp's), from_me, text ('' when not a text), lid (the contact's, or null),
// participant (a group message's sender as a jid, or null)}.
const parseQuoted = (v, onlyKnown) => {
  object(v, 'quoted', ['id', 'from_me', 'text', 'lid', 'participant'], onlyKnown)
  if (typeof v.text !== 'string' || chars(v.text) > 65536) throw invalid('quoted.text must be a string (the quoted message\'s text, or "").')
  if (v.lid != null && (typeof v.lid !== 'string' || !LID_JID.test(v.lid))) throw invalid('quoted.lid must be a LID jid (digits@lid) or null.')
  return { id: waId(v.id, 'quoted.id'), from_me: bool(v.from_me, 'quoted.from_me'), text: v.text, lid: v.lid ?? null, participant: participantOf(v.participant, 'quoted.participant') }
}

// `mentions`: distinct +E.164 numbers, the people a text or caption mentions (its "@<number>" WhatsApp highlights).
const parseMentions = (v) => {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_MENTIONS) throw invalid(`mentions must be a list of 1 to ${MAX_MENTIONS} phone numbers (+E.164).`)
  for (const phone of v) if (!isE164(phone)) throw invalid('Each of mentions must be a phone number in +E.164.')
  return Object.freeze([...new Set(v)])
}

/** The fields of a send body that name its content. */
export const CONTENT_FIELDS = Object.freeze([...CONTENT_KINDS, 'quoted', 'mentions'])

/**
 * The content of a send body (POST /send, a /send/batch item): exactly one of CONTENT_KINDS, checked, and a
 * reply's `quoted` beside a quotable one: a frozen `{ <kind>: value, quoted? }`. 400 invalid_message.
 */
export function parseContent (body, onlyKnown) {
  const given = CONTENT_KINDS.filter((kind) => body[kind] !== undefined)
  if (given.length !== 1) {
    throw invalid(`A message has exactly one content, one of: ${CONTENT_KINDS.join(', ')}${given.length ? ` (not ${given.join(' and ')})` : ''}.`)
  }
  const [kind] = given
  const content = { [kind]: PARSERS[kind](body[kind], onlyKnown) }
  if (body.quoted != null) {
    if (!QUOTABLE.includes(kind)) throw invalid(`quoted (a reply) goes with ${QUOTABLE.join(', ')}, not ${kind}.`)
    content.quoted = Object.freeze(parseQuoted(body.quoted, onlyKnown))
  }
  if (body.mentions != null) {
    if (!MENTIONABLE.includes(kind)) throw invalid(`mentions go with ${MENTIONABLE.join(' or ')}, not ${kind}.`)
    content.mentions = parseMentions(body.mentions)
  }
  return Object.freeze(content)
}

/**
 * A content sent to a group (issue 26): a read receipt or a chat presence is for a chat with a contact (400); a
 * reaction to, or a reply quoting, another's message names its sender (`participant`, or the reply's `lid`).
 */
export function assertGroupContent (content) {
  const kind = kindOf(content)
  if (isChatAction(content)) throw invalid(`${kind} is for a chat with a contact, not a group.`)
  if (kind === 'reaction' && !content.reaction.key.from_me && !content.reaction.key.participant) {
    throw invalid('In a group, reaction.key.participant must name the sender of the message reacted to.')
  }
  if (content.quoted && !content.quoted.from_me && !content.quoted.participant && !content.quoted.lid) {
    throw invalid('In a group, quoted.participant (or quoted.lid) must name the sender of the quoted message.')
  }
}

/** The mentionedJid of a content's `mentions`: Baileys' content takes them as `mentions` (contextInfo.mentionedJid). */
export const mentionsOf = (content) => content.mentions ? { mentions: content.mentions.map(phoneToJid) } : {}

/** The kind of a checked content (its one CONTENT_KINDS key). */
export const kindOf = (content) => CONTENT_KINDS.find((kind) => content[kind] !== undefined)

export const isChatAction = (content) => CHAT_ACTIONS.includes(kindOf(content))

/** What a log line may say of a content: its kind and sizes, never a text, emoji, vCard, question or secret. */
export function describe (content) {
  const kind = kindOf(content)
  const v = content[kind]
  const out = { kind, reply: !!content.quoted, ...(content.mentions ? { mentions: content.mentions.length } : {}) }
  switch (kind) {
    case 'text': return { ...out, length: v.length }
    case 'media': return { ...out, media_kind: v.kind }
    case 'reaction': return { ...out, target_id: v.key.id, removes: v.emoji === '' }
    case 'edit': return { ...out, target_id: v.key.id, length: v.text.length }
    case 'revoke': return { ...out, target_id: v.key.id }
    case 'contacts': return { ...out, cards: v.vcards.length }
    case 'poll': return { ...out, options: v.values.length }
    case 'read': return { ...out, ids: v.ids.length }
    case 'presence': return { ...out, state: v.state }
    default: return out
  }
}

// A single card's name is the one given; each of several shows its vCard's own FN (WhatsApp's apps do the same).
const cardName = (vcard) => {
  const line = vcard.replace(/\r?\n[ \t]/g, '').split(/\r?\n/).find((l) => /^FN[;:]/i.test(l))
  const name = line ? line.slice(line.indexOf(':') + 1).replace(/\\([,;\\])/g, '$1').trim() : ''
  return name || undefined
}

/**
 * Baileys' content (AnyMessageContent) of a checked message content that is neither media nor a chat action, for
 * the chat `jid`: Baileys' generateWAMessage makes the protobuf from it.
 */
export function baileysContent (content, jid) {
  const kind = kindOf(content)
  const v = content[kind]
  switch (kind) {
    case 'text': return { text: v }
    case 'reaction': {
      // a group message of another: its key names the sender (Baileys copies the key as given)
      const participant = !v.key.from_me && v.key.participant ? { participant: v.key.participant } : {}
      return { react: { text: v.emoji, key: { remoteJid: jid, fromMe: v.key.from_me, id: v.key.id, ...participant } } }
    }
    case 'edit': return { text: v.text, edit: { remoteJid: jid, fromMe: true, id: v.key.id } }
    case 'revoke': return { delete: { remoteJid: jid, fromMe: true, id: v.key.id } }
    case 'location': return { location: { degreesLatitude: v.latitude, degreesLongitude: v.longitude, name: v.name, address: v.address } }
    case 'contacts': {
      const one = v.vcards.length === 1
      const cards = v.vcards.map((vcard) => ({ displayName: one ? v.display_name : (cardName(vcard) ?? v.display_name), vcard }))
      return { contacts: { displayName: v.display_name, contacts: cards } }
    }
    case 'poll': return { poll: { name: v.name, values: v.values, selectableCount: v.selectable_count, messageSecret: Buffer.from(v.secret, 'base64') } }
  }
  throw new Error(`no Baileys content for ${kind}`)
}

/**
 * The WAMessage a reply quotes, as Baileys' generateWAMessage takes it (options.quoted): it writes the
 * contextInfo (stanzaId, participant: us for our own message, else the contact, by LID when the gateway knows it;
 * quotedMessage). The quoted message's own content is its text as a conversation.
 */
export function quotedMessage (quoted, jid) {
  if (!quoted) return undefined
  // a group message of another: its sender, by LID when the gateway knows it, else by phone number
  const sender = quoted.lid ?? quoted.participant
  const participant = !quoted.from_me && sender ? sender : undefined
  return {
    key: { remoteJid: jid, fromMe: quoted.from_me, id: quoted.id, ...(participant ? { participant } : {}) },
    message: { conversation: quoted.text }
  }
}

const P = proto.Message.ProtocolMessage.Type
/**
 * The stanza attributes Baileys' sendMessage adds for a kind (rc14 Socket/messages-send.js), derived from the
 * stored protobuf so that a resend of it goes out the same: edit="7" for a revoke, edit="1" for an edit, a
 * <meta polltype="creation"/> for a poll. Everything else: none.
 */
export function relayOptions (message) {
  const pm = message?.protocolMessage
  if (pm?.type === P.REVOKE) return { additionalAttributes: { edit: '7' } }
  if (pm?.type === P.MESSAGE_EDIT) return { additionalAttributes: { edit: '1' } }
  if (message?.pollCreationMessage || message?.pollCreationMessageV2 || message?.pollCreationMessageV3) {
    return { additionalNodes: [{ tag: 'meta', attrs: { polltype: 'creation' } }] }
  }
  return {}
}
