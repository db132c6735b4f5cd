// Fault injection: what a real network/WhatsApp does to a companion connection, and what a
// contact's phone can do to its Signal sessions (damaged ciphertexts, a lost or rolled-back session).
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'

export const FAULT_KINDS = ['disconnect', 'restart_required', 'conflict', 'logout', 'blackhole', 'forbidden', 'multidevice_mismatch', 'slow_offline', 'garble', 'unavailable', 'media_expire', 'media_tamper']
export const SESSION_ACTIONS = ['snapshot', 'rollback', 'forget']

export class Faults {
  constructor (emu) {
    this.emu = emu
    this.blackholes = [] // { until (ms), phone | null }
    this.offlineDelays = [] // { ms, phone | null }: one-shot, for the next login
    this.garbles = new Map() // contact phone -> how many of its next messages are damaged in every copy
    this.unavailables = new Map() // contact phone -> how many of its next messages devices get as <unavailable> stubs
    this.sessionSnapshots = new Map() // "<contact>|<peer>" -> the contact's serialised sessions with peer's devices
  }

  /** true when this message of `phone` must be damaged (a `garble` fault, used up here) */
  takeGarble (phone) {
    const left = this.garbles.get(phone) || 0
    if (!left) return false
    if (left > 1) this.garbles.set(phone, left - 1)
    else this.garbles.delete(phone)
    return true
  }

  /**
   * POST /contacts/{phone}/session {action, peer}: the contact's phone saves (`snapshot`), restores
   * (`rollback`: what a phone restored from an old backup has) or loses (`forget`) its Signal sessions
   * with every device of `peer` (a phone number), as a test's way to break a session for real.
   * Snapshots live in memory only.
   */
  contactSession (phoneInput, { action, peer }) {
    const phone = normalizePhone(phoneInput)
    const peerPhone = normalizePhone(peer)
    if (!phone || !peerPhone) throw apiError(400, 'invalid_phone_number', 'the contact in the path and "peer" must be E.164 numbers')
    if (!SESSION_ACTIONS.includes(action)) throw apiError(400, 'invalid_action', `action must be one of ${SESSION_ACTIONS.join(', ')}`)
    const contact = this.emu.directory.get(phone)
    if (!contact) throw apiError(404, 'contact_unknown', `${e164(phone)} is not known`)
    const key = `${phone}|${peerPhone}`
    let sessions
    if (action === 'snapshot') {
      sessions = contact.signal.sessionsOf(peerPhone)
      this.sessionSnapshots.set(key, sessions)
    } else if (action === 'rollback') {
      sessions = this.sessionSnapshots.get(key)
      if (!sessions) throw apiError(409, 'no_snapshot', 'take a snapshot of these sessions first')
      contact.signal.restoreSessionsOf(peerPhone, sessions)
    } else {
      sessions = new Map()
      contact.signal.restoreSessionsOf(peerPhone, sessions)
    }
    this.emu.log.info('fault.contact_session', { action, sessions: sessions.size })
    this.emu.persist()
    return { action, sessions: sessions.size }
  }

  /** true when this message of `phone` must reach the devices as an <unavailable> stub (an `unavailable` fault, used up here) */
  takeUnavailable (phone) {
    const left = this.unavailables.get(phone) || 0
    if (!left) return false
    if (left > 1) this.unavailables.set(phone, left - 1)
    else this.unavailables.delete(phone)
    return true
  }

  /** ms by which this login's end-of-offline marker is late (a slow_offline fault, used up here), or 0 */
  takeOfflineDelay (phone) {
    const i = this.offlineDelays.findIndex((d) => d.phone == null || d.phone === phone)
    if (i < 0) return 0
    return this.offlineDelays.splice(i, 1)[0].ms
  }

  /** true while the connection must get no answer at all */
  isBlackholed (conn) {
    if (!this.blackholes.length) return false // asked for every frame of every connection
    const now = Date.now()
    this.blackholes = this.blackholes.filter((b) => b.until > now)
    for (const b of this.blackholes) {
      if (b.phone == null) return true
      const phone = conn.user?.phone || conn.loginPhone
      if (phone && phone === b.phone) return true
    }
    return false
  }

  // garble, unavailable: `messages` more messages of the contact `phone` (1 by default) get the fault.
  countMessages (counts, kind, phone, messages) {
    const n = messages == null ? 1 : Number(messages)
    if (!phone) throw apiError(400, 'invalid_phone_number', `${kind} needs the phone_number of a contact`)
    if (!Number.isInteger(n) || n < 1 || n > 10000) throw apiError(400, 'invalid_messages', 'messages must be an integer between 1 and 10000')
    counts.set(phone, (counts.get(phone) || 0) + n)
    return n
  }

  /** POST /faults */
  apply ({ kind, seconds, messages, phone_number: phoneInput, direct_path: directPath }) {
    if (!FAULT_KINDS.includes(kind)) throw apiError(400, 'invalid_kind', `kind must be one of ${FAULT_KINDS.join(', ')}`)
    let phone = null
    if (phoneInput != null) {
      phone = normalizePhone(phoneInput)
      if (!phone) throw apiError(400, 'invalid_phone_number', 'phone_number must be an E.164 number')
    }
    const emu = this.emu
    const open = [...emu.connections.values()].filter((c) => c.state !== 'closed')
    const targets = open.filter((c) => phone == null || c.user?.phone === phone || c.loginPhone === phone)
    let applied = 0
    switch (kind) {
      case 'disconnect':
        for (const c of targets) { c.log.info('fault.disconnect'); c.markClosed(); try { c.ws.close() } catch { /* already closed */ } applied++ }
        break
      case 'restart_required':
        for (const c of targets) { c.log.info('fault.restart_required'); c.streamError({ code: '515' }); applied++ }
        break
      case 'conflict':
        for (const c of targets) { c.log.info('fault.conflict'); c.streamError({}, [{ tag: 'conflict', attrs: { type: 'replaced' } }]); applied++ }
        break
      // WhatsApp refusing the session: a <failure reason="403"> (banned / forbidden) or "411" (multi-device
      // mismatch) on the open connection, as the real server answers a login it will not accept.
      case 'forbidden':
      case 'multidevice_mismatch': {
        const reason = kind === 'forbidden' ? 403 : 411
        for (const c of targets) { c.failure(reason); applied++ }
        break
      }
      case 'logout': {
        // the phone removes linked devices: each is told (stream error 401 device_removed) and forgotten
        const users = phone == null ? [...emu.directory.users.values()] : [emu.directory.get(phone)].filter(Boolean)
        for (const u of users) {
          for (const dev of [...u.devices.values()]) {
            emu.unlinkDevice(u, dev, { notify: true })
            applied++
          }
        }
        break
      }
      case 'slow_offline': {
        // the next login (of this number, or any) gets its <ib><offline> marker `seconds` late: Baileys
        // keeps its connect-time event buffer (messages.update included) until that marker or 30 s
        const s = seconds == null ? 10 : Number(seconds)
        if (!Number.isFinite(s) || s <= 0 || s > 3600) throw apiError(400, 'invalid_seconds', 'seconds must be a number between 0 and 3600')
        this.offlineDelays.push({ ms: Math.round(s * 1000), phone })
        applied = 1
        break
      }
      case 'garble':
        // the next `messages` messages this contact's phone sends reach the devices damaged, every copy
        // (resends after a retry receipt too): a message the devices can never decrypt
        applied = this.countMessages(this.garbles, kind, phone, messages)
        break
      case 'unavailable':
        // the next `messages` messages of this contact reach the account's linked devices as <unavailable>
        // stubs: only a placeholder resend of the account's phone gives them the content (placeholders.js)
        applied = this.countMessages(this.unavailables, kind, phone, messages)
        break
      case 'media_expire':
      case 'media_tamper':
        // the media host (media-store.js): `direct_path` (default: every path) answers 410 from now on; or the
        // stored blob of `direct_path` (default: of the next `messages` uploads) gets one byte flipped
        if (directPath != null && (typeof directPath !== 'string' || !directPath.startsWith('/'))) throw apiError(400, 'invalid_direct_path', 'direct_path must be a directPath such as /v/t62.7118-24/...')
        if (kind === 'media_expire') applied = emu.mediaStore.expire(directPath)
        else applied = emu.mediaStore.tamper(directPath, directPath == null ? this.countMessages(new Map(), kind, 'any', messages) : 0)
        break
      case 'blackhole': {
        const s = seconds == null ? 30 : Number(seconds)
        if (!Number.isFinite(s) || s <= 0 || s > 3600) throw apiError(400, 'invalid_seconds', 'seconds must be a number between 0 and 3600')
        this.blackholes.push({ until: Date.now() + s * 1000, phone })
        applied = targets.length
        emu.log.info('fault.blackhole', { seconds: s, scope: phone ? 'phone' : 'all', connections: applied })
        break
      }
    }
    emu.log.info('fault.applied', { kind, applied_to: applied })
    return { applied_to: applied }
  }
}
