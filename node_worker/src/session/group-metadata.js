// The groups the account sends to: their metadata (participants, addressing mode) as Baileys' relayMessage needs
// it for a group's sender-key fan-out. Baileys asks the socket config's `cachedGroupMetadata(jid)` first and
// otherwise queries the server (a w:g2 iq) on every send; this bounded cache answers instead, filled by the
// worker's own queries (a send's membership check, GET /groups/{id}) and dropped when a group event says it
// changed (participants added or removed, a subject), so that the next send sees the new members (they then get
// the sender key) and no send waits for a round trip it does not need. Bounded in entries and age: a missed
// notification heals by itself after GROUP_METADATA_TTL_MS.
import { isJidGroup } from 'baileys'
import { WorkerError } from '../errors.js'
import { SEND_FAILURE, SEND_RETRY } from '../states.js'

export const GROUP_METADATA_MAX = 1000
export const GROUP_METADATA_TTL_MS = 10 * 60 * 1000
// WhatsApp's group ids: "<digits>@g.us" (new groups) or "<creator digits>-<digits>@g.us" (older ones).
const GROUP_JID = /^[0-9]{1,30}(-[0-9]{1,30})?@g\.us$/

/** Whether `value` is a WhatsApp group id as the API takes it (at most 64 characters). */
export const isGroupId = (value) => typeof value === 'string' && value.length <= 64 && GROUP_JID.test(value)

/**
 * The WorkerError of a failed w:g2 query (a Boom: `data` is WhatsApp's error code, statusCode 408 a timeout):
 * 404 group_not_found for an unknown group or one the account is not in (WhatsApp answers 404 item-not-found or
 * 403 forbidden), 403 not_admin for a change only admins may make (401 not-authorized, or 403 once membership is
 * known), 504 whatsapp_timeout, 409 not_connected when the socket closed under it, else 502 whatsapp_error.
 */
export function groupError (err, { member = false } = {}) {
  if (err instanceof WorkerError) return err
  const code = typeof err?.data === 'number' ? err.data : null
  const status = err?.output?.statusCode
  if (status === 408) return new WorkerError(504, SEND_RETRY.WHATSAPP_TIMEOUT, 'WhatsApp did not answer the group query; retry later.')
  if (status === 428) return new WorkerError(409, SEND_RETRY.NOT_CONNECTED, 'The WhatsApp connection closed during the group query.')
  if (code === 404 || (code === 403 && !member)) return notFound()
  if (code === 401 || code === 403) return new WorkerError(403, SEND_FAILURE.NOT_ADMIN, 'Only a group admin may do that (WhatsApp refused it).')
  return new WorkerError(502, SEND_RETRY.WHATSAPP_ERROR, `WhatsApp refused the group query${code ? ` (${code})` : ''}.`)
}

export const notFound = () => new WorkerError(404, SEND_FAILURE.GROUP_NOT_FOUND, 'No such group, or the account is not in it.')

export class GroupMetadataCache {
  constructor ({ maxEntries = GROUP_METADATA_MAX, ttlMs = GROUP_METADATA_TTL_MS, now = Date.now } = {}) {
    this.entries = new Map() // jid -> { metadata, at }, oldest first
    this.maxEntries = maxEntries
    this.ttlMs = ttlMs
    this.now = now
    this.stats = { hits: 0, fetches: 0 }
  }

  get size () { return this.entries.size }

  /** Baileys' cachedGroupMetadata: the metadata while fresh, else undefined (Baileys then queries itself). */
  get (jid) {
    const entry = this.entries.get(jid)
    if (!entry) return undefined
    if (this.now() - entry.at > this.ttlMs) {
      this.entries.delete(jid)
      return undefined
    }
    this.stats.hits++
    return entry.metadata
  }

  set (metadata) {
    if (!metadata?.id || !isJidGroup(metadata.id) || !Array.isArray(metadata.participants)) return
    this.entries.delete(metadata.id)
    this.entries.set(metadata.id, { metadata, at: this.now() })
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value)
  }

  /** A group event changed the group (or the account left it): the next send or read asks the server. */
  forget (jid) { this.entries.delete(jid) }

  /** A group event's metadata: kept when whole (participants and all), else the cached one is forgotten. */
  refresh (metadata) {
    if (Array.isArray(metadata?.participants) && metadata.addressingMode) this.set(metadata)
    else if (metadata?.id) this.forget(metadata.id)
  }

  clear () { this.entries.clear() }

  /** The group's metadata, from the cache or the server (`sock.groupMetadata`); WorkerErrors as groupError. */
  async fetch (sock, jid) {
    const cached = this.get(jid)
    if (cached) return cached
    this.stats.fetches++
    let metadata
    try {
      metadata = await sock.groupMetadata(jid)
    } catch (err) {
      throw groupError(err)
    }
    this.set(metadata)
    return metadata
  }
}
