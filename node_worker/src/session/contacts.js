// Who the account's contacts are (issue 27): `contact.updated` events from what Baileys learns, and the live lookup
// of one number (GET /contacts/{phone}).
//
// Baileys tells of contacts in three events (rc14 sources):
//   contacts.upsert     the phone's address book through app-state sync (contactAction: id, name, lid, phoneNumber;
//                       lidContactAction: a LID's name)
//   contacts.update     a contact's push name from each message it sends ({id, notify}), a picture change ({id,
//                       imgUrl}: no name, nothing to journal)
//   lid-mapping.update  a LID <-> phone-number pair (app-state pnForLidChatAction / contactAction, linked-profile
//                       notifications)
// Each becomes one `contact.updated` event per at most 200 contacts, {contacts: [{phone_number, lid, push_name?,
// name?}], source}, journaled before the event handler returns. A key left out means unknown, never cleared. A contact
// is named by phone number (E.164) and LID, resolved from the event itself, else from the LID mapping store on this
// device (never a network query inside the event handler). Push names arrive with every message: one is journaled
// only when it changed since this process last journaled that contact's (bounded memory; after a restart the first
// one is journaled again, which the gateway stores idempotently).
import { jidToPhone, phoneToJid } from '../phone.js'
import { WorkerError } from '../errors.js'
import { SEND_RETRY } from '../states.js'

export const CONTACTS_PER_EVENT = 200
export const KNOWN_NAMES_MAX = 20000
const PERSON = /@(s\.whatsapp\.net|lid)$/

const str = (v) => (typeof v === 'string' && v !== '' ? v : null)
const bare = (jid) => (typeof jid === 'string' ? jid.replace(/:\d+@/, '@') : null)
const pnOf = (jid) => (jid?.endsWith('@s.whatsapp.net') ? jidToPhone(jid) : null)
const lidOf = (jid) => (jid?.endsWith('@lid') ? bare(jid) : null)

/** Splits `list` into chunks of at most `size` (none for an empty list). */
export const chunks = (list, size) => {
  const out = []
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size))
  return out
}

/**
 * {phone, lid} of a person's jid: its other address from `alt` (the event's own), else `known` (a Map of bare jid ->
 * other jid, e.g. a history sync's own pairs), else this device's LID mapping store, read locally only: Baileys'
 * getLIDForPN would ask WhatsApp (usync) for a number it does not know, which an event handler must not wait for.
 */
export async function resolvePerson (sock, jid, alt = null, known = null) {
  const id = bare(jid)
  if (!id || !PERSON.test(id)) return { phone: null, lid: null }
  const other = bare(alt) ?? known?.get(id) ?? await storedOther(sock, id)
  return id.endsWith('@lid') ? { phone: pnOf(other), lid: id } : { phone: pnOf(id), lid: lidOf(other) }
}

async function storedOther (sock, id) {
  const mapping = sock?.signalRepository?.lidMapping
  if (!mapping) return null
  try {
    if (id.endsWith('@lid')) return await mapping.getPNForLID(id) // local only (the store's reverse entry)
    const user = id.split('@')[0]
    const stored = await mapping.keys.get('lid-mapping', [user])
    return typeof stored?.[user] === 'string' ? `${stored[user]}@lid` : null
  } catch {
    return null
  }
}

export class Contacts {
  constructor (session) {
    this.session = session
    this.names = new Map() // phone or lid -> "push|name" last journaled by this process (bounded, oldest first)
  }

  /** The Baileys events of one batch (connection.js): journaled, each kind in its own events, before returning. */
  async onEvents (events) {
    const upserts = events['contacts.upsert'] ?? []
    const updates = events['contacts.update'] ?? []
    if (upserts.length || updates.length) await this.record([...upserts, ...updates], 'contacts')
    const pair = events['lid-mapping.update']
    if (pair?.lid && pair?.pn) await this.record([{ id: pair.pn, lid: pair.lid }], 'lid_mapping')
  }

  // Baileys contacts ({id, lid?, phoneNumber?, name?, notify?}) -> `contact.updated` events of at most 200.
  async record (list, source) {
    const s = this.session
    const found = []
    for (const c of list) {
      const entry = await this.entryOf(c)
      if (entry && this.isNews(entry)) found.push(entry)
    }
    for (const part of chunks(found, CONTACTS_PER_EVENT)) {
      await s.mustPersist(s.journal.push('contact.updated', { contacts: part, source }))
      s.log.info({ contacts: part.length, source }, 'contact.updated')
    }
  }

  async entryOf (c) {
    const id = bare(c?.id)
    if (!id || !PERSON.test(id)) return null // groups, broadcasts, newsletters: no contacts
    const alt = id.endsWith('@lid') ? c.phoneNumber : c.lid
    const { phone, lid } = await resolvePerson(this.session.sock, id, str(alt))
    const entry = { phone_number: phone, lid }
    if (str(c.notify)) entry.push_name = c.notify
    if (str(c.name)) entry.name = c.name
    // who it is with nothing about them (a picture change): nothing to tell
    return (phone && lid) || entry.push_name || entry.name ? entry : null
  }

  // Whether `entry` tells more than this process last journaled of the contact (a repeated push name does not).
  isNews (entry) {
    const key = entry.phone_number ?? entry.lid
    const value = `${entry.lid ?? ''}|${entry.push_name ?? ''}|${entry.name ?? ''}`
    if (this.names.get(key) === value) return false
    this.names.delete(key)
    this.names.set(key, value)
    if (this.names.size > KNOWN_NAMES_MAX) this.names.delete(this.names.keys().next().value)
    return true
  }

  /**
   * GET /contacts/{phone}: whether `phone` is on WhatsApp (usync), its LID (the mapping store, else usync) and, with
   * `picture`, its profile picture's URL (null when it has none or its privacy refuses us). 409 when not connected.
   */
  async lookup (phone, { picture = false } = {}) {
    const sock = await this.session.groups.connected()
    const jid = phoneToJid(phone)
    const results = await sock.onWhatsApp(jid).catch((err) => { throw lookupError(err) })
    if (results === undefined) throw timeout()
    const onWhatsApp = !!results[0]?.exists
    if (!onWhatsApp) return { phone_number: phone, on_whatsapp: false, lid: null, picture_url: null }
    let lid = null
    try {
      lid = lidOf(await sock.signalRepository.lidMapping.getLIDForPN(jid))
    } catch (err) {
      this.session.log.debug({ err: { message: err.message } }, 'contact.lid_lookup_failed')
    }
    const url = picture ? await this.pictureOf(sock, jid) : null
    return { phone_number: phone, on_whatsapp: true, lid, picture_url: url }
  }

  async pictureOf (sock, jid) {
    try {
      return str(await sock.profilePictureUrl(jid, 'image')) // Baileys' default timeout: the socket's query timeout
    } catch (err) {
      if ([401, 403, 404].includes(err?.data)) return null // none, or not shown to us
      throw lookupError(err)
    }
  }
}

const timeout = () => new WorkerError(504, SEND_RETRY.WHATSAPP_TIMEOUT, 'WhatsApp did not answer the contact query; retry later.')

function lookupError (err) {
  if (err instanceof WorkerError) return err
  const status = err?.output?.statusCode
  if (status === 408) return timeout()
  if (status === 428) return new WorkerError(409, SEND_RETRY.NOT_CONNECTED, 'The WhatsApp connection closed during the contact query.')
  const code = typeof err?.data === 'number' ? ` (${err.data})` : ''
  return new WorkerError(502, SEND_RETRY.WHATSAPP_ERROR, `WhatsApp refused the contact query${code}.`)
}
