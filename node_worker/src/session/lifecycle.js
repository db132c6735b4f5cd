// The session's state machine around its Baileys socket:
//
//   stopped ──start──▶ connecting ──QR──▶ qr ──scan──▶ (515) connecting ──▶ connected
//      ▲                   ▲  │ close (not 401)          │                     │
//      │ QR refs ran out   │  └── backoff ◀──────────────┴─────────────────────┘
//      └───────────────────┘                      401 / logout ──▶ logged_out
//   connecting ── the server cannot be reached (DNS, refused, TLS, proxy, timeout) ──▶ whatsapp_unreachable,
//      which retries with the same backoff and stays until a connection is made (QR or connected)
//   forbidden / bad session that cannot recover ──▶ failed
//   (sessions in PostgreSQL) lease lost: a write refused by the fence, a failed owner check, or 440
//   (another instance connected with these credentials) ──▶ fenced, until an attach with a newer generation
//
// One lifecycle at a time: connect, disconnect, reconnect, the handling of a closed socket, resume
// and shutdown run one after the other (serial.js), and only they open, close or delete the
// session store. Baileys writes keys and creds into the store while its socket runs; before the
// store is closed or deleted, the socket's events are cut off (every socket has a generation
// number and events of an older one are ignored) and close() waits for the writes in flight, so
// nothing is ever written to a closed or deleted store.
import { DisconnectReason } from 'baileys'
import { WorkerError } from '../errors.js'
import { classifyConnectFailure } from '../network-cause.js'
import { jidToPhone } from '../phone.js'
import { PAIRING_ERRORS, SEND_RETRY, SESSION_ERROR, STATE, WORKER_STATES } from '../states.js'

const QR_EXPIRED = 'QR refs attempts ended'
const RUNNING = [STATE.CONNECTING, STATE.WHATSAPP_UNREACHABLE, STATE.QR, STATE.PAIRING_CODE, STATE.CONNECTED]

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`

export class Lifecycle {
  constructor (session) {
    this.session = session
  }

  setState (state, fields = {}) {
    const s = this.session
    if (!WORKER_STATES.includes(state)) throw new Error(`unknown state ${state}`)
    const changed = state !== s.state
    s.state = state
    if (state !== STATE.QR) { s.qr = null; s.qrImage = null }
    if (state !== STATE.PAIRING_CODE) s.pairingCode = null
    if (state === STATE.CONNECTED) s.pairingPhone = null
    if (state !== STATE.WHATSAPP_UNREACHABLE) s.unreachable = null
    if (changed) {
      const unreachable = s.unreachable && { cause: s.unreachable.cause, detail: s.unreachable.detail }
      s.log.info({ state, last_error: s.lastError, ...(unreachable ? { unreachable } : {}), ...fields }, 'session.state')
      // linking by code, the code for an app that shows it to its user (an event, never a log line)
      const code = state === STATE.PAIRING_CODE ? { pairing_code: s.pairingCode } : {}
      s.durably(s.journal.push('session.status', {
        state, last_error: s.lastError, phone_number: s.me ? jidToPhone(s.me.id) : null, unreachable, ...code
      }))
    }
    s.emit('state', state)
  }

  // ---- lifecycle operations (each runs alone, see serial.js) ---------------------------------

  /**
   * At worker start (and on attach): a linked device logs straight back in; a new one waits for POST
   * /connect. A session that already runs is left alone: a repeated attach must not drop its link.
   */
  resume () {
    const s = this.session
    return s.serial.run('resume', async () => {
      if (s.closing || [...RUNNING, STATE.FENCED].includes(s.state) || !(await s.stores.sessionExists())) return
      let store
      try {
        store = await s.stores.openStore()
      } catch (err) {
        // state failed, logged; with PostgreSQL, not_owner (fenced) and store_unavailable go to the caller (attach)
        if (err instanceof WorkerError && err.code === SESSION_ERROR.SESSION_STORE_ERROR) return
        throw err
      }
      if (!store.isRegistered()) return
      s.log.info('worker.resuming_session')
      await this.dialPaced()
    })
  }

  /**
   * Opens the socket now when the shard's pacer (src/connect-pacer.js) has a slot; otherwise the session
   * is `connecting` and waits for its slot on the reconnect timer, which release, logout and shutdown
   * cancel: a thousand resumes or attaches at once dial WhatsApp at the configured rate.
   */
  async dialPaced () {
    const s = this.session
    const waitMs = s.pacer?.reserve() ?? 0
    if (!waitMs) return s.connection.openSocket()
    s.log.info({ wait_ms: waitMs }, 'session.dial_paced')
    if (s.state !== STATE.WHATSAPP_UNREACHABLE) this.setState(STATE.CONNECTING)
    this.armReconnect(waitMs, { booked: true })
  }

  /**
   * POST /connect: start the session unless it is already running; resolves once the socket is being opened.
   * With `phoneNumber` (E.164) an unlinked device asks WhatsApp for a pairing code for that number instead of
   * showing a QR; a session already waiting for a QR or a code asks for one at once.
   */
  start (phoneNumber = null) {
    const s = this.session
    return s.serial.run('connect', async () => {
      if (s.closing) throw new WorkerError(503, SESSION_ERROR.WORKER_STOPPING, 'The worker is shutting down.')
      if (s.pg && (s.leaseGeneration === null || s.state === STATE.FENCED)) throw s.fencing.notOwner()
      if (phoneNumber) s.pairingRefusal = null // WhatsApp's answer to this request's code (link.showCode)
      if ([STATE.QR, STATE.PAIRING_CODE].includes(s.state) && phoneNumber) {
        s.pairingPhone = phoneNumber
        await s.link.showCode(s.sock, s.generation, { again: true })
        return
      }
      if (RUNNING.includes(s.state)) return
      s.pairingPhone = phoneNumber
      s.lastError = null
      s.backoff.reset()
      s.pacer?.reserve({ wait: false }) // a user's request dials now; the paced attempts make room
      await s.connection.openSocket()
    })
  }

  /** POST /disconnect: unlink the device at WhatsApp and forget it locally. */
  logout () {
    const s = this.session
    return s.serial.run('disconnect', async () => {
      // Sessions in PostgreSQL: only the owner may unlink the device and delete the session.
      if (s.pg) await s.fencing.assertOwner()
      const sock = s.sock
      const open = sock !== null && s.state === STATE.CONNECTED
      s.generation += 1 // the current socket's events (its own close included) are ignored now
      s.connection.clearTimers()
      let registered = false
      if (s.store || (await s.stores.sessionExists())) {
        try {
          // In memory: Baileys sets creds.me before it answers pair-success, so a pairing that the
          // server may complete any moment already counts as registered here.
          registered = (await s.stores.openStore()).isRegistered()
        } catch (err) {
          s.log.warn({ err }, 'session.unreadable_store_removed')
        }
      }
      let unlinked = false
      if (open && registered) unlinked = await s.link.unlinkOver(sock)
      s.connection.endSocket()
      if (registered && !unlinked && !s.closing) unlinked = await s.link.unlinkByConnecting()
      if (registered && !unlinked) s.log.warn({ hint: 'remove the device on the phone: Settings, Linked devices' }, 'session.unlink_failed')
      await s.stores.clearSession()
      s.lastError = null
      this.setState(STATE.LOGGED_OUT, { unlinked })
      return unlinked
    })
  }

  /**
   * POST /release: the account's lease moves to another instance. Close the socket WITHOUT logging out
   * (the device stays linked for the next owner), cancel reconnects and close the store (saving the
   * creds first while still the owner; a fenced session writes nothing); state `stopped`. A later attach
   * (a newer generation) opens the session again from the shared store.
   */
  release () {
    const s = this.session
    return s.serial.run('release', async () => {
      s.generation += 1 // the current socket's events (its own close included) are ignored from now on
      s.connection.clearTimers()
      s.connection.endSocket()
      const store = s.store
      s.store = null
      if (store) {
        if (s.state !== STATE.FENCED) await store.saveCreds().catch((err) => s.log.info({ err }, 'session.save_skipped'))
        await store.close()
      }
      if (s.pg) s.decrypted = null // its rows belong to the store
      s.lastError = null
      s.log.info({ lease_generation: s.leaseGeneration }, 'session.released')
      this.setState(STATE.STOPPED)
    })
  }

  /** SIGTERM: keep the device linked; save creds and close the socket. */
  async shutdown () {
    const s = this.session
    s.closing = true
    s.undecryptable.stop()
    s.link.unlinking?.abort()
    s.connection.clearTimers()
    s.connection.endSocket()
    await s.serial.run('shutdown', async () => {
      s.connection.clearTimers()
      s.connection.endSocket()
      const store = s.store
      s.store = null
      if (store) {
        // a fenced session writes nothing (the creds are the new owner's now)
        if (s.state !== STATE.FENCED) await store.saveCreds().catch((err) => s.log.warn({ err }, 'session.save_failed'))
        await store.close()
      }
      const sent = s.sentMessages
      s.sentMessages = null
      await sent?.close()
      const decrypted = s.decrypted
      s.decrypted = null
      await decrypted?.close()
    })
  }

  // ---- the socket closed (runs as a lifecycle operation) -------------------------------------

  async onClose (error) {
    const s = this.session
    const code = error?.output?.statusCode
    const message = error?.message || 'connection closed'
    s.sock = null
    s.acks.failAll(message)
    s.connection.clearTimers()
    if (s.closing) return
    s.emit('closed', code)
    if (s.pg && code === DisconnectReason.connectionReplaced) {
      // Another instance connected with these credentials: it owns the account now. Without
      // PostgreSQL a 440 reconnects like any other drop.
      s.fencing.fence(`connection replaced (${code}): another instance connected with these credentials`)
      return
    }
    if (code === DisconnectReason.loggedOut) return this.loggedOutByPhone(code)
    if (code === DisconnectReason.restartRequired) {
      // Expected right after pairing: WhatsApp asks for a fresh connection with the new creds.
      s.log.info({ code }, 'session.restart_required')
      s.pacer?.reserve({ wait: false }) // the link's second connection, which WhatsApp asked for: now
      await s.connection.openSocket()
      return
    }
    if (PAIRING_ERRORS.includes(error?.data?.code)) {
      // WhatsApp refused the pairing code (link.showCode ended the socket): asking again at once would only
      // be refused again, so stop until POST /connect asks anew.
      s.lastError = `${error.data.code}: ${message}`
      this.setState(STATE.STOPPED, { code: error.data.code })
      return
    }
    if ([STATE.QR, STATE.PAIRING_CODE].includes(s.state) && message === QR_EXPIRED) {
      s.lastError = s.state === STATE.QR
        ? 'qr_expired: nobody scanned the QR code in time; POST /connect for a new one'
        : 'pairing_code_expired: nobody entered the pairing code in time; POST /connect for a new one'
      this.setState(STATE.STOPPED, { code })
      return
    }
    if (code === DisconnectReason.forbidden || code === DisconnectReason.multideviceMismatch) {
      s.lastError = `${message} (${code}): WhatsApp refused this session`
      this.setState(STATE.FAILED, { code })
      return
    }
    if (error?.data?.code === 'untrusted_server') {
      // The server failed certificate verification (patches/baileys+7.0.0-rc14+001+server-auth.patch): retrying the
      // same server would only repeat the refusal, so stop until an operator acts (POST /connect).
      s.lastError = message
      this.setState(STATE.FAILED, { code, reason: error.data.reason })
      return
    }
    const unreachable = s.socketOpened ? null : classifyConnectFailure(error, { proxied: !!s.proxy })
    if (unreachable) return this.unreachable(unreachable, code)
    s.lastError = `${message}${code ? ` (${code})` : ''}`
    this.scheduleReconnect(code)
  }

  // The attempt could not reach the server: a named state with its cause, retried with the same backoff.
  unreachable ({ cause, detail, hint }, code) {
    const s = this.session
    const before = s.unreachable
    s.unreachable = {
      cause,
      detail,
      hint,
      since: before?.since ?? new Date().toISOString(),
      attempts: (before?.attempts ?? 0) + 1
    }
    s.lastError = `WhatsApp is unreachable (${cause}): ${detail}; ${hint}`
    this.scheduleReconnect(code, STATE.WHATSAPP_UNREACHABLE)
  }

  // 401: the device was unlinked from the phone; the session's data goes.
  async loggedOutByPhone (code) {
    const s = this.session
    s.lastError = 'logged out: the device was unlinked from the phone'
    try {
      await s.stores.clearSession()
    } catch (err) {
      if (s.state === STATE.FENCED) return // not the owner any more: the rows are the new owner's
      throw err
    }
    this.setState(STATE.LOGGED_OUT, { code })
  }

  // After the backoff delay the attempt still takes its slot from the shard's pacer: when a server restart
  // drops every socket at once, the reconnect timers fire within the backoff's +-20% and the pacer spreads
  // the dials over N/rate seconds; one account alone finds the bucket full and dials at once.
  scheduleReconnect (code, state = STATE.CONNECTING) {
    const s = this.session
    const delay = s.backoff.next()
    s.log.warn({ code, delay_ms: delay, attempt: s.backoff.attempt, last_error: s.lastError },
      'session.reconnect_scheduled')
    this.setState(state)
    this.armReconnect(delay, { booked: false })
  }

  // The reconnect timer: after `delayMs` the socket opens, unless the session moved on meanwhile (a newer
  // socket, a release, a logout, the shutdown). `booked`: the delay is the pacer's slot already; otherwise
  // the attempt books one when the timer fires and waits for it if the shard is dialing a crowd.
  armReconnect (delayMs, { booked }) {
    const s = this.session
    const generation = s.generation
    s.reconnectAt = Date.now() + delayMs
    s.reconnectTimer = setTimeout(() => {
      s.reconnectTimer = null
      s.reconnectAt = null
      s.serial.run('reconnect', async () => {
        if (generation !== s.generation || s.closing || (s.state !== STATE.CONNECTING && s.state !== STATE.WHATSAPP_UNREACHABLE)) return
        const waitMs = booked ? 0 : (s.pacer?.reserve() ?? 0)
        if (waitMs) return this.armReconnect(waitMs, { booked: true })
        await s.connection.openSocket()
      }).catch((err) => {
        s.log.error({ err }, 'session.reconnect_failed')
        if (s.state !== STATE.FAILED && s.state !== STATE.FENCED && !s.closing) {
          s.lastError = `reconnect failed: ${err.message}`
          this.scheduleReconnect()
        }
      })
    }, delayMs)
  }

  /** 409 not_connected that says why: reconnecting (attempt, next try, last error), pairing, or stopped. */
  notConnected () {
    const s = this.session
    if (s.state === STATE.FENCED) return s.fencing.notOwner()
    const details = { state: s.state, attempt: s.backoff.attempt, last_error: s.lastError, unreachable: s.unreachable }
    const why = s.lastError ? `; last error: ${s.lastError}` : ''
    if (s.reconnectTimer !== null) {
      const nextMs = Math.max(0, s.reconnectAt - Date.now())
      // attempt 0: a resume or attach waiting for its slot under WA_CONNECT_RATE (dialPaced)
      const what = s.backoff.attempt ? `reconnecting (attempt ${s.backoff.attempt}, next try` : 'connecting (its turn under WA_CONNECT_RATE'
      return new WorkerError(409, SEND_RETRY.NOT_CONNECTED,
        `WhatsApp is ${what} in ${seconds(nextMs)}${why}); retry later.`,
        { ...details, next_retry_ms: nextMs, next_retry_at: new Date(s.reconnectAt).toISOString() })
    }
    if (s.state === STATE.CONNECTING) {
      return new WorkerError(409, SEND_RETRY.NOT_CONNECTED,
        `WhatsApp is connecting${s.backoff.attempt ? ` (attempt ${s.backoff.attempt})` : ''}${why}; retry in a few seconds.`, details)
    }
    if (s.state === STATE.QR) {
      return new WorkerError(409, SEND_RETRY.NOT_CONNECTED, 'WhatsApp is waiting for the QR code to be scanned.', details)
    }
    if (s.state === STATE.PAIRING_CODE) {
      return new WorkerError(409, SEND_RETRY.NOT_CONNECTED, 'WhatsApp is waiting for the pairing code to be entered on the phone.', details)
    }
    return new WorkerError(409, SEND_RETRY.NOT_CONNECTED, `WhatsApp is not connected (state: ${s.state}${why}); POST /connect first.`, details)
  }
}
