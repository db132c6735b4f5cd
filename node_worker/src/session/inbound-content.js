// What a contact's message holds beyond text and media (issue 25): the kind the gateway shows, the message
// it quotes (a reply), and a location, contact cards or a poll. A kind the gateway does not know is
// `unsupported` with WhatsApp's own field name (`raw_type`), so that it is stored and delivered, never dropped.
import { unwrap, MEDIA_KINDS } from './media-info.js'

// Fields of a proto.Message that are no content of their own: key shares, context, protocol notices.
const NOT_CONTENT = new Set(['messageContextInfo', 'senderKeyDistributionMessage', 'protocolMessage', 'deviceSentMessage'])

const KINDS = {
  conversation: 'text',
  extendedTextMessage: 'text',
  locationMessage: 'location',
  liveLocationMessage: 'location',
  contactMessage: 'contacts',
  contactsArrayMessage: 'contacts',
  pollCreationMessage: 'poll',
  pollCreationMessageV2: 'poll',
  pollCreationMessageV3: 'poll',
  ...Object.fromEntries(MEDIA_KINDS.map((k) => [`${k}Message`, k]))
}

/**
 * {kind, field, raw_type} of a message's first content field (out of its containers): `raw_type` is the field's
 * name for a kind we do not know (`kind` then `unsupported`), else null; null for protocol-only messages.
 */
export function contentOf (message) {
  const inner = unwrap(message) ?? {}
  for (const [field, value] of Object.entries(inner)) {
    if (value == null || NOT_CONTENT.has(field)) continue
    const kind = KINDS[field]
    return { kind: kind ?? 'unsupported', field, raw_type: kind ? null : field }
  }
  return null
}

const str = (value) => (typeof value === 'string' && value !== '' ? value : null)
const num = (value) => (typeof value === 'number' && Number.isFinite(value) ? value : null)

/** The WhatsApp id of the message a reply quotes (contextInfo.stanzaId of its content), or null. */
export function quotedIdOf (message, field) {
  const content = unwrap(message)?.[field]
  return str(content?.contextInfo?.stanzaId)
}

const card = (c) => ({ name: str(c?.displayName), vcard: str(c?.vcard) })

/** The kind's own fields for the `message` event: {location}, {contacts} or {poll}; {} for the others. */
export function detailsOf (message, { kind, field }) {
  const c = unwrap(message)?.[field]
  if (kind === 'location') {
    return { location: { latitude: num(c.degreesLatitude), longitude: num(c.degreesLongitude), name: str(c.name), address: str(c.address) } }
  }
  if (kind === 'contacts') {
    return { contacts: field === 'contactMessage' ? [card(c)] : (c.contacts ?? []).map(card) }
  }
  if (kind === 'poll') {
    const options = (c.options ?? []).map((o) => str(o?.optionName)).filter((o) => o !== null)
    return { poll: { question: str(c.name), options, multiple: (c.selectableOptionsCount ?? 0) !== 1 } }
  }
  return {}
}
