// One WhatsApp session and its lifecycle, as an explicit state machine around a Baileys socket.
//
//   stopped ──start──▶ connecting ──QR──▶ qr ──scan──▶ (515) connecting ──▶ connected
//      ▲                   ▲  │ close (not 401)          │                     │
//      │ QR refs ran out   │  └── backoff ◀──────────────┴─────────────────────┘
//      └───────────────────┘                      401 / logout ──▶ logged_out
//   forbidden / bad session that cannot recover ──▶ failed
//
// Every socket gets a generation number; events from an older socket are ignored, so a reconnect
// never races the socket it replaces.
import { EventEmitter } from 'node:events'
import makeWASocket, { Browsers, DisconnectReason, makeCacheableSignalKeyStore, proto } from 'baileys'
import QRCode from 'qrcode'
import { openAuthStore, removeAuthStore } from './auth-store.js'
import { Backoff } from './backoff.js'
import { WorkerError } from './errors.js'
import { jidToPhone, phoneToJid } from './phone.js'

export const STATES = Object.freeze(['stopped', 'connecting', 'qr', 'connected', 'logged_out', 'failed'])

const STATUS_NAMES = {
  [proto.WebMessageInfo.Status.ERROR]: 'failed',
  [proto.WebMessageInfo.Status.PENDING]: 'pending',
  [proto.WebMessageInfo.Status.SERVER_ACK]: 'sent',
  [proto.WebMessageInfo.Status.DELIVERY_ACK]: 'delivered',
  [proto.WebMessageInfo.Status.READ]: 'read',
  [proto.WebMessageInfo.Status.PLAYED]: 'played'
}

const QR_EXPIRED = 'QR refs attempts ended'
const ON_WHATSAPP_TTL_MS = 10 * 60 * 1000

const textOf = (message) => message?.conversation ??
  message?.extendedTextMessage?.text ??
  message?.ephemeralMessage?.message?.extendedTextMessage?.text ??
  null

export class WhatsAppSession extends EventEmitter {
  constructor ({ settings, logger, journal }) {
    super()
    this.settings = settings
    this.log = logger.child({ component: 'session' })
    this.baileysLog = logger.child({ component: 'baileys' }, { level: settings.baileysLogLevel })
    this.journal = journal
    this.state = 'stopped'
    this.qr = null
    this.qrImage = null
    this.lastError = null
    this.me = null
    this.sock = null
    this.store = null
    this.generation = 0
    this.reconnectTimer = null
    this.stableTimer = null
    this.backoff = new Backoff({ baseMs: settings.reconnectBaseMs, maxMs: settings.reconnectMaxMs })
    this.onWhatsAppCache = new Map()
    this.closing = false
  }

  status () {
    return {
      connected: this.state === 'connected',
      state: this.state,
      phone_number: this.me ? jidToPhone(this.me.id) : null,
      name: this.me?.name ?? null,
      qr: this.state === 'qr' ? this.qr : null,
      qr_image: this.state === 'qr' ? this.qrImage : null,
      last_error: this.lastError,
      reconnect: {
        attempt: this.backoff.attempt,
        scheduled: this.reconnectTimer !== null,
        delays_ms: [...this.backoff.history]
      }
    }
  }

  setState (state, fields = {}) {
    if (!STATES.includes(state)) throw new Error(`unknown state ${state}`)
    const changed = state !== this.state
    this.state = state
    if (state !== 'qr') { this.qr = null; this.qrImage = null }
    if (changed) {
      this.log.info({ state, last_error: this.lastError, ...fields }, 'session.state')
      this.journal.push('session.status', { state, last_error: this.lastError })
    }
    this.emit('state', state)
  }

  async hasSession () {
    const store = await this.openStore()
    return store.isRegistered()
  }

  async openStore () {
    if (!this.store) this.store = await openAuthStore(this.settings.sessionDir, { logger: this.log })
    return this.store
  }

  // Start the session unless it is already running; resolves once the socket is being opened.
  async start () {
    if (['connecting', 'qr', 'connected'].includes(this.state)) return
    this.lastError = null
    this.backoff.reset()
    await this.open()
  }

  async open () {
    this.clearTimers()
    this.endSocket()
    const generation = ++this.generation
    this.setState('connecting') // before any await: a concurrent start() sees it and returns
    let store
    try {
      store = await this.openStore()
    } catch (err) {
      this.lastError = `the session store cannot be read: ${err.message}`
      this.setState('failed')
      throw new WorkerError(500, 'session_store_error', this.lastError)
    }
    if (generation !== this.generation) return // superseded while the store was opening
    const sock = makeWASocket({
      waWebSocketUrl: this.settings.serverUrl,
      auth: { creds: store.state.creds, keys: makeCacheableSignalKeyStore(store.state.keys, this.baileysLog) },
      logger: this.baileysLog,
      browser: Browsers.ubuntu('wa-gateway'),
      printQRInTerminal: false,
      markOnlineOnConnect: false,
      syncFullHistory: false,
      qrTimeout: this.settings.qrTimeoutMs,
      keepAliveIntervalMs: this.settings.keepAliveMs,
      connectTimeoutMs: this.settings.connectTimeoutMs,
      defaultQueryTimeoutMs: this.settings.connectTimeoutMs,
      getMessage: async () => undefined
    })
    this.sock = sock
    sock.ev.process(async (events) => {
      if (generation !== this.generation) return
      try {
        await this.handleEvents(sock, events)
      } catch (err) {
        this.log.error({ err }, 'session.event_handler_failed')
      }
    })
  }

  async handleEvents (sock, events) {
    if (events['creds.update']) await this.store.saveCreds()
    if (events['connection.update']) await this.onConnectionUpdate(sock, events['connection.update'])
    if (events['messages.upsert']) this.onUpsert(events['messages.upsert'])
    if (events['messages.update']) this.onMessagesUpdate(events['messages.update'])
  }

  async onConnectionUpdate (sock, update) {
    const { connection, lastDisconnect, qr } = update
    if (qr) {
      this.qr = qr
      this.qrImage = await QRCode.toDataURL(qr, { margin: 2, scale: 6 })
      this.log.info('session.qr')
      this.setState('qr')
    }
    if (connection === 'open') {
      this.me = sock.user ? { id: sock.user.id, name: sock.user.name ?? sock.user.verifiedName ?? null } : null
      this.lastError = null
      this.setState('connected', { phone_number: this.me ? jidToPhone(this.me.id) : null })
      this.stableTimer = setTimeout(() => {
        this.stableTimer = null
        this.backoff.reset()
      }, this.settings.reconnectStableMs)
    }
    if (connection === 'close') await this.onClose(lastDisconnect?.error)
  }

  async onClose (error) {
    const code = error?.output?.statusCode
    const message = error?.message || 'connection closed'
    this.sock = null
    this.clearTimers()
    if (this.closing) return
    this.emit('closed', code)
    if (code === DisconnectReason.loggedOut) {
      this.lastError = 'logged out: the device was unlinked from the phone'
      await this.clearSession()
      this.setState('logged_out', { code })
      return
    }
    if (code === DisconnectReason.restartRequired) {
      // Expected right after pairing: WhatsApp asks for a fresh connection with the new creds.
      this.log.info({ code }, 'session.restart_required')
      await this.open()
      return
    }
    if (this.state === 'qr' && message === QR_EXPIRED) {
      this.lastError = 'qr_expired: nobody scanned the QR code in time; POST /connect for a new one'
      this.setState('stopped', { code })
      return
    }
    if (code === DisconnectReason.forbidden || code === DisconnectReason.multideviceMismatch) {
      this.lastError = `${message} (${code}): WhatsApp refused this session`
      this.setState('failed', { code })
      return
    }
    this.lastError = `${message}${code ? ` (${code})` : ''}`
    this.scheduleReconnect(code)
  }

  scheduleReconnect (code) {
    const delay = this.backoff.next()
    this.log.warn({ code, delay_ms: delay, attempt: this.backoff.attempt, last_error: this.lastError },
      'session.reconnect_scheduled')
    this.setState('connecting')
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.open().catch((err) => {
        this.lastError = `reconnect failed: ${err.message}`
        this.log.error({ err }, 'session.reconnect_failed')
        this.scheduleReconnect()
      })
    }, delay)
  }

  onUpsert ({ messages, type }) {
    for (const msg of messages) {
      const id = msg.key?.id
      if (msg.key?.fromMe) {
        if (msg.status != null && STATUS_NAMES[msg.status]) this.recordStatus(id, msg.status)
        continue
      }
      if (type !== 'notify') continue
      const text = textOf(msg.message)
      if (text === null) continue
      const fromJid = msg.key.remoteJidAlt?.endsWith('@s.whatsapp.net') ? msg.key.remoteJidAlt : msg.key.remoteJid
      const event = {
        id,
        from: jidToPhone(fromJid),
        from_jid: msg.key.remoteJid,
        push_name: msg.pushName ?? null,
        timestamp: Number(msg.messageTimestamp ?? 0),
        text
      }
      this.log.info({ message_id: id, from: event.from }, 'message.received')
      this.journal.push('message', event)
    }
  }

  onMessagesUpdate (updates) {
    for (const { key, update } of updates) {
      if (key?.fromMe && update?.status != null) this.recordStatus(key.id, update.status)
    }
  }

  recordStatus (id, status) {
    const name = STATUS_NAMES[status] ?? String(status)
    this.log.info({ message_id: id, status: name }, 'message.status')
    this.journal.push('message.status', { id, status: name })
  }

  async isOnWhatsApp (jid) {
    const cached = this.onWhatsAppCache.get(jid)
    if (cached && cached.until > Date.now()) return cached.exists
    const [result] = (await this.sock.onWhatsApp(jid)) ?? []
    const exists = !!result?.exists
    this.onWhatsAppCache.set(jid, { exists, until: Date.now() + ON_WHATSAPP_TTL_MS })
    return exists
  }

  async sendText (phone, text, messageId) {
    if (this.state !== 'connected' || !this.sock) {
      throw new WorkerError(409, 'not_connected', `WhatsApp is not connected (state: ${this.state}); POST /connect first.`)
    }
    const jid = phoneToJid(phone)
    if (!(await this.isOnWhatsApp(jid))) {
      throw new WorkerError(422, 'not_on_whatsapp', `${phone} is not on WhatsApp.`)
    }
    const sent = await this.sock.sendMessage(jid, { text }, messageId ? { messageId } : {})
    this.log.info({ message_id: sent.key.id }, 'message.sent')
    return { id: sent.key.id, status: 'pending' }
  }

  // POST /disconnect: unlink the device at WhatsApp when we can, and always forget it locally.
  async logout () {
    const sock = this.sock
    this.generation += 1 // the logout's own close event must not trigger anything
    this.clearTimers()
    let unlinked = false
    if (sock && this.state === 'connected') {
      try {
        await sock.logout('wa-gateway disconnect')
        unlinked = true
      } catch (err) {
        this.log.warn({ err: err.message }, 'session.logout_failed')
      }
    }
    this.endSocket()
    await this.clearSession()
    this.lastError = null
    this.setState('logged_out', { unlinked })
    return unlinked
  }

  async clearSession () {
    if (this.store) {
      await this.store.close()
      this.store = null
    }
    await removeAuthStore(this.settings.sessionDir)
    this.me = null
    this.onWhatsAppCache.clear()
    this.log.info('session.data_removed')
  }

  clearTimers () {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    if (this.stableTimer) clearTimeout(this.stableTimer)
    this.reconnectTimer = null
    this.stableTimer = null
  }

  endSocket () {
    const sock = this.sock
    this.sock = null
    if (!sock) return
    this.generation += 1
    try {
      sock.end(undefined)
    } catch (err) {
      this.log.debug({ err: err.message }, 'session.end_failed')
    }
  }

  // SIGTERM: keep the device linked; save creds and close the socket.
  async shutdown () {
    this.closing = true
    this.clearTimers()
    this.endSocket()
    if (this.store) {
      await this.store.saveCreds()
      await this.store.close()
      this.store = null
    }
  }
}
