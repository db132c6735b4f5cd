// One WhatsApp session and its lifecycle, as an explicit state machine around a Baileys socket.
//
//   stopped ──start──▶ connecting ──QR──▶ qr ──scan──▶ (515) connecting ──▶ connected
//      ▲                   ▲  │ close (not 401)          │                     │
//      │ QR refs ran out   │  └── backoff ◀──────────────┴─────────────────────┘
//      └───────────────────┘                      401 / logout ──▶ logged_out
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
//
// Logout never leaves a linked device behind at WhatsApp: a registered session is unlinked over
// the open socket, or else over a short connection made for that purpose (bounded in time).
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import makeWASocket, { Browsers, DisconnectReason, generateMessageIDV2, generateWAMessage, jidDecode, makeCacheableSignalKeyStore, proto, S_WHATSAPP_NET } from 'baileys'
import QRCode from 'qrcode'
import { openAuthStore, removeAuthStore } from './auth-store.js'
import { checkLease, FencedError, hasPgSession, openPgAuthStore, removePgAuthStore, writtenAfter } from './auth-store-pg.js'
import { Backoff } from './backoff.js'
import { WorkerError } from './errors.js'
import { makeBaileysLogger } from '../lib/logger.js'
import { LinkMonitor } from './link-monitor.js'
import { jidToPhone, phoneToJid } from './phone.js'
import { SentIds } from './sent-ids.js'
import { SentMessages } from './sent-messages.js'
import { DecryptCache, makeDurableSignalRepository } from './decrypt-cache.js'
import { SerialQueue } from './serial.js'
import { isStorageError, storageRefusal, writeFailed } from './storage.js'
import { ServerAcks } from './server-acks.js'
import { UndecryptableMessages } from './undecryptable.js'
import { Placeholders } from './placeholders.js'
import { PeerMessages } from './peer-messages.js'

export const STATES = Object.freeze(['stopped', 'connecting', 'qr', 'connected', 'logged_out', 'failed', 'fenced'])

const STATUS_NAMES = {
  [proto.WebMessageInfo.Status.ERROR]: 'failed',
  [proto.WebMessageInfo.Status.PENDING]: 'pending',
  [proto.WebMessageInfo.Status.SERVER_ACK]: 'sent',
  [proto.WebMessageInfo.Status.DELIVERY_ACK]: 'delivered',
  [proto.WebMessageInfo.Status.READ]: 'read',
  [proto.WebMessageInfo.Status.PLAYED]: 'played'
}

// What a receipt's type says about a message we sent (no type: delivered). Other types (retry,
// read-self, sender, inactive, ...) are not statuses of the message at its recipient.
const RECEIPT_STATUS = {
  '': proto.WebMessageInfo.Status.DELIVERY_ACK,
  read: proto.WebMessageInfo.Status.READ,
  played: proto.WebMessageInfo.Status.PLAYED
}
const STATUS_MEMORY = 10000

const QR_EXPIRED = 'QR refs attempts ended'
const ON_WHATSAPP_CACHE_SIZE = 10000

// What kind of message a contact sent: the first content field of the proto.Message, unwrapped from
// the containers (ephemeral, view once, edited, device-sent); null for protocol-only messages.
const WRAPPERS = ['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'viewOnceMessageV2Extension', 'documentWithCaptionMessage', 'editedMessage']
const NOT_CONTENT = new Set(['messageContextInfo', 'senderKeyDistributionMessage', 'protocolMessage', 'deviceSentMessage'])
const contentOf = (message) => {
  for (const wrapper of WRAPPERS) if (message?.[wrapper]?.message) return contentOf(message[wrapper].message)
  for (const [key, value] of Object.entries(message ?? {})) {
    if (value != null && !NOT_CONTENT.has(key)) return key === 'extendedTextMessage' ? 'text' : key === 'conversation' ? 'text' : key.replace(/Message$/, '')
  }
  return null
}

const textOf = (message) => message?.conversation ??
  message?.extendedTextMessage?.text ??
  message?.ephemeralMessage?.message?.extendedTextMessage?.text ??
  null

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`

export class WhatsAppSession extends EventEmitter {
  constructor ({ settings, logger, journal, pg = null }) {
    super()
    // Sessions in PostgreSQL (auth-store-pg.js): { pool, instanceId, account }, or null for the local store.
    this.pg = pg
    this.leaseGeneration = null // the lease generation the gateway attached the account with (PostgreSQL only)
    this.settings = settings
    this.log = logger.child({ component: 'session' })
    this.baileysLog = makeBaileysLogger(logger, settings.baileysLogLevel)
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
    this.reconnectAt = null
    this.stableTimer = null
    this.link = null // LinkMonitor of the open socket (link-monitor.js)
    this.backoff = new Backoff({ baseMs: settings.reconnectBaseMs, maxMs: settings.reconnectMaxMs })
    this.onWhatsAppCache = new Map()
    this.sentIds = new SentIds({ file: settings.sentIdsFile, logger: this.log })
    this.acks = new ServerAcks()
    this.undecryptable = new UndecryptableMessages({
      afterMs: settings.undecryptableAfterMs,
      report: (msg, info) => this.durably(this.recordUndecryptable(msg, info))
    })
    this.sentMessages = null // SentMessages, opened with the session store
    this.decrypted = null // DecryptCache, opened with the session store
    this.statusRank = new Map() // id -> highest status reported (the journal gets each step once)
    // Placeholder resends and our own devices' protocol messages, durable before their acks (placeholders.js, peer-messages.js)
    this.placeholders = new Placeholders({
      keys: () => this.store?.state.keys ?? null,
      logger: this.log,
      abandoned: (stub, info) => this.mustPersist(this.recordUndecryptable(stub, info))
    })
    this.peerMessages = new PeerMessages({
      sock: () => this.sock,
      placeholders: this.placeholders,
      record: (msg, how) => this.mustPersist(this.recordInbound(msg, how)),
      logger: this.log
    })
    this.lifecycle = new SerialQueue()
    this.unlinking = null
    this.closing = false
  }

  status () {
    const nextMs = this.reconnectAt === null ? null : Math.max(0, this.reconnectAt - Date.now())
    return {
      connected: this.state === 'connected',
      state: this.state,
      phone_number: this.me ? jidToPhone(this.me.id) : null,
      name: this.me?.name ?? null,
      qr: this.state === 'qr' ? this.qr : null,
      qr_image: this.state === 'qr' ? this.qrImage : null,
      last_error: this.lastError,
      // sessions in PostgreSQL: the lease generation this session writes and sends under (null otherwise)
      lease_generation: this.leaseGeneration,
      // while connected: whether the link demonstrably works (frames, pings answered, events flowing)
      link: this.state === 'connected' && this.link ? this.link.snapshot() : null,
      reconnect: {
        attempt: this.backoff.attempt,
        scheduled: this.reconnectTimer !== null,
        next_retry_ms: nextMs,
        next_retry_at: nextMs === null ? null : new Date(this.reconnectAt).toISOString(),
        delays_ms: [...this.backoff.history]
      },
      // What this session holds in memory (or in its bounded stores), each with its bound: /metrics shows them.
      queues: this.queueSizes()
    }
  }

  queueSizes () {
    const q = (size, bound) => ({ size, bound })
    return {
      events_pending: q(this.journal.pending, this.settings.eventBufferSize),
      acks_waiting: q(this.acks.size, null), // sends in flight: bounded by the gateway's dispatch concurrency
      undecryptable_waiting: q(this.undecryptable.waiting, this.undecryptable.maxWaiting),
      placeholders_pending: q(this.placeholders.pending, Placeholders.maxPending),
      sent_ids: q(this.sentIds.ids.size, this.sentIds.capacity),
      status_memory: q(this.statusRank.size, STATUS_MEMORY),
      on_whatsapp_cache: q(this.onWhatsAppCache.size, ON_WHATSAPP_CACHE_SIZE),
      sent_messages: q(this.sentMessages?.size ?? 0, this.settings.sentMessagesMax),
      decrypted: q(this.decrypted?.size ?? 0, 20000)
    }
  }

  setState (state, fields = {}) {
    if (!STATES.includes(state)) throw new Error(`unknown state ${state}`)
    const changed = state !== this.state
    this.state = state
    if (state !== 'qr') { this.qr = null; this.qrImage = null }
    if (changed) {
      this.log.info({ state, last_error: this.lastError, ...fields }, 'session.state')
      this.durably(this.journal.push('session.status', {
        state, last_error: this.lastError, phone_number: this.me ? jidToPhone(this.me.id) : null
      }))
    }
    this.emit('state', state)
  }

  // ---- lifecycle operations (each runs alone, see serial.js) ---------------------------------

  /**
   * At worker start (and on attach): a linked device logs straight back in; a new one waits for POST
   * /connect. A session that already runs is left alone: a repeated attach must not drop its link.
   */
  resume () {
    return this.lifecycle.run('resume', async () => {
      if (this.closing || ['connecting', 'qr', 'connected', 'fenced'].includes(this.state) || !(await this.sessionExists())) return
      let store
      try {
        store = await this.openStore()
      } catch (err) {
        // state failed, logged; with PostgreSQL, not_owner (fenced) and store_unavailable go to the caller (attach)
        if (err instanceof WorkerError && err.code === 'session_store_error') return
        throw err
      }
      if (!store.isRegistered()) return
      this.log.info('worker.resuming_session')
      await this.openSocket()
    })
  }

  /**
   * Attach with sessions in PostgreSQL: the lease generation the gateway holds for this account. The
   * same generation again changes nothing; an older one is refused (409 stale_lease); a newer one is
   * adopted in place while this session's memory is still the truth, or else (fenced, or another owner
   * wrote since) the socket ends and the store is reloaded from PostgreSQL at the next resume.
   */
  adoptLease (generation) {
    return this.lifecycle.run('lease', async () => {
      const previous = this.leaseGeneration
      if (previous !== null && generation < previous) {
        throw new WorkerError(409, 'stale_lease', `The account is attached with lease generation ${previous}; ${generation} is older.`,
          { lease_generation: previous })
      }
      if (generation === previous) return
      this.leaseGeneration = generation
      const store = this.store
      if (store) {
        // New writes go out under the new generation; one still in flight under the old one may be
        // fenced now, which the checks below see.
        store.setGeneration(generation)
        await store.flush().catch(() => {})
        const stale = this.state === 'fenced' || store.fenced ||
          await writtenAfter(this.pg.pool, this.pg.account, previous).catch(() => true) // unknown: reload to be safe
        if (!stale) {
          this.log.info({ lease_generation: generation, previous }, 'session.lease_adopted')
          return
        }
        this.generation += 1 // the current socket's events are ignored from now on
        this.clearTimers()
        this.endSocket()
        this.store = null
        await store.close()
        this.lastError = null
        this.log.info({ lease_generation: generation, previous, reload: true }, 'session.lease_adopted')
        this.setState('stopped') // resume (attach) logs in again with what PostgreSQL holds
        return
      }
      this.log.info({ lease_generation: generation, previous }, 'session.lease_adopted')
      if (this.state === 'fenced') {
        this.lastError = null
        this.setState('stopped')
      }
    })
  }

  /** POST /connect: start the session unless it is already running; resolves once the socket is being opened. */
  start () {
    return this.lifecycle.run('connect', async () => {
      if (this.closing) throw new WorkerError(503, 'worker_stopping', 'The worker is shutting down.')
      if (this.pg && (this.leaseGeneration === null || this.state === 'fenced')) throw this.notOwner()
      if (['connecting', 'qr', 'connected'].includes(this.state)) return
      this.lastError = null
      this.backoff.reset()
      await this.openSocket()
    })
  }

  /** POST /disconnect: unlink the device at WhatsApp and forget it locally. */
  logout () {
    return this.lifecycle.run('disconnect', async () => {
      // Sessions in PostgreSQL: only the owner may unlink the device and delete the session.
      if (this.pg) await this.assertOwner()
      const sock = this.sock
      const open = sock !== null && this.state === 'connected'
      this.generation += 1 // the current socket's events (its own close included) are ignored now
      this.clearTimers()
      let registered = false
      if (this.store || (await this.sessionExists())) {
        try {
          // In memory: Baileys sets creds.me before it answers pair-success, so a pairing that the
          // server may complete any moment already counts as registered here.
          registered = (await this.openStore()).isRegistered()
        } catch (err) {
          this.log.warn({ err }, 'session.unreadable_store_removed')
        }
      }
      let unlinked = false
      if (open && registered) unlinked = await this.unlinkOver(sock)
      this.endSocket()
      if (registered && !unlinked && !this.closing) unlinked = await this.unlinkByConnecting()
      if (registered && !unlinked) this.log.warn({ hint: 'remove the device on the phone: Settings, Linked devices' }, 'session.unlink_failed')
      await this.clearSession()
      this.lastError = null
      this.setState('logged_out', { unlinked })
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
    return this.lifecycle.run('release', async () => {
      this.generation += 1 // the current socket's events (its own close included) are ignored from now on
      this.clearTimers()
      this.endSocket()
      const store = this.store
      this.store = null
      if (store) {
        if (this.state !== 'fenced') await store.saveCreds().catch((err) => this.log.info({ err }, 'session.save_skipped'))
        await store.close()
      }
      if (this.pg) this.decrypted = null // its rows belong to the store
      this.lastError = null
      this.log.info({ lease_generation: this.leaseGeneration }, 'session.released')
      this.setState('stopped')
    })
  }

  /** SIGTERM: keep the device linked; save creds and close the socket. */
  async shutdown () {
    this.closing = true
    this.undecryptable.stop()
    this.unlinking?.abort()
    this.clearTimers()
    this.endSocket()
    await this.lifecycle.run('shutdown', async () => {
      this.clearTimers()
      this.endSocket()
      const store = this.store
      this.store = null
      if (store) {
        // a fenced session writes nothing (the creds are the new owner's now)
        if (this.state !== 'fenced') await store.saveCreds().catch((err) => this.log.warn({ err }, 'session.save_failed'))
        await store.close()
      }
      const sent = this.sentMessages
      this.sentMessages = null
      await sent?.close()
      const decrypted = this.decrypted
      this.decrypted = null
      await decrypted?.close()
    })
  }

  // ---- helpers of the lifecycle operations (call only from inside one) -----------------------

  storeExists () {
    try {
      return fs.readdirSync(this.settings.sessionDir).length > 0
    } catch {
      return false
    }
  }

  // Whether there is a session to log in with: the local directory, or (PostgreSQL) the account's rows,
  // or a local directory to import into them. Never before the gateway attached the account with a lease.
  async sessionExists () {
    if (!this.pg) return this.storeExists()
    if (this.leaseGeneration === null) return false
    if (this.store || this.storeExists()) return true
    try {
      return await hasPgSession(this.pg.pool, this.pg.account)
    } catch (err) {
      throw this.storeUnavailable(err)
    }
  }

  // 503 store_unavailable: PostgreSQL cannot be reached (one log line; the caller may retry).
  storeUnavailable (err) {
    this.log.error({ err: { message: err.message, code: err.code } }, 'session.store_unavailable')
    return new WorkerError(503, 'store_unavailable', `The session store (PostgreSQL) cannot be reached: ${err.message}`)
  }

  lease () {
    return { account: this.pg.account, instanceId: this.pg.instanceId, generation: this.leaseGeneration }
  }

  // PostgreSQL only: the owner check (a read) before every (re)connect, send and logout. A lost lease
  // fences the session and throws 409 not_owner; an unreachable database throws 503 store_unavailable.
  async assertOwner () {
    if (!this.pg) return
    if (this.state === 'fenced' || this.leaseGeneration === null) throw this.notOwner()
    try {
      await checkLease(this.pg.pool, this.lease())
    } catch (err) {
      if (err instanceof FencedError) {
        this.fence(err.message)
        throw this.notOwner()
      }
      throw this.storeUnavailable(err)
    }
  }

  // The lease is lost (PostgreSQL only): a write refused by the fence, a failed owner check, or 440.
  // Stop at once WITHOUT logging out (the device stays linked, for the instance that owns the account
  // now): the socket ends, no reconnect is scheduled, sends are refused with 409 not_owner, and nothing
  // starts again until an attach with a newer generation (adoptLease). Synchronous, outside the
  // lifecycle queue: it may be called from inside a lifecycle operation.
  fence (reason) {
    if (this.closing || this.state === 'fenced') return
    this.generation += 1 // the current socket's events (its own close included) are ignored from now on
    this.store?.markFenced?.(reason) // writes still coming from the retired socket are refused without a query
    this.clearTimers()
    this.endSocket()
    this.lastError = `not_owner: ${reason}`
    this.log.warn({ reason, lease_generation: this.leaseGeneration }, 'session.fenced')
    this.setState('fenced', { lease_generation: this.leaseGeneration })
  }

  // A PostgreSQL write failed for another reason (connection lost, outcome of a COMMIT unknown): the
  // store is read-only, so the socket ends and the next attempt reloads the store from the database.
  onStoreFailed (err) {
    if (this.closing || this.state === 'fenced') return
    const store = this.store
    this.store = null
    store?.close().catch(() => {})
    this.generation += 1
    this.clearTimers()
    this.endSocket()
    this.lastError = `the session store failed: ${err.message}`
    this.scheduleReconnect()
  }

  async openPgStore () {
    if (this.leaseGeneration === null) throw this.notOwner()
    const { pool, instanceId, account } = this.pg
    let store = null
    try {
      store = await openPgAuthStore({
        pool,
        account,
        instanceId,
        generation: this.leaseGeneration,
        logger: this.log,
        // a session directory from before PostgreSQL is imported once (migration from one machine)
        importDir: this.settings.sessionDir,
        onFenced: (err) => { if (store === null || this.store === store) this.fence(err.message) },
        onFailed: (err) => { if (store !== null && this.store === store) this.onStoreFailed(err) }
      })
    } catch (err) {
      if (err instanceof FencedError) {
        this.fence(err.message)
        throw this.notOwner()
      }
      if (err instanceof SyntaxError) throw err // a row that is not BufferJSON: the store is unreadable
      this.lastError = `the session store (PostgreSQL) cannot be reached: ${err.message}`
      throw this.storeUnavailable(err)
    }
    return store
  }

  async openStore () {
    if (this.store) return this.store
    try {
      this.store = this.pg ? await this.openPgStore() : await openAuthStore(this.settings.sessionDir, { logger: this.log })
      const sent = { maxAgeMs: this.settings.sentMessagesMaxAgeMs, maxEntries: this.settings.sentMessagesMax }
      if (this.pg) {
        // With PostgreSQL everything that must move with the keys lives beside them, fenced like them: the
        // decryption results (a message redelivered after a crash is answered from there), the sent messages
        // (the next owner answers retry receipts for them) and the event journal (what a dead instance had
        // acknowledged to WhatsApp but not handed to the gateway is taken over, not stranded on its disk).
        this.decrypted = new DecryptCache(this.store.prefixed('decrypted/'), { maxAgeMs: 24 * 3600 * 1000, maxEntries: 20000 })
        this.sentMessages = await SentMessages.inMap(this.store.prefixed('sent/'), sent)
        await this.journal.attach(this.store.prefixed('events/'))
      } else {
        this.sentMessages ??= await SentMessages.open({ dir: this.settings.sentMessagesDir, ...sent, logger: this.log })
        this.decrypted ??= await DecryptCache.open({ dir: this.settings.decryptedDir, logger: this.log })
      }
    } catch (err) {
      if (err instanceof WorkerError) throw err // fenced (not_owner) or PostgreSQL unreachable: not a broken store
      if (err instanceof FencedError) { // the journal's or the sent messages' first write under a lost lease
        this.fence(err.message)
        throw this.notOwner()
      }
      // A full (or failing) disk is no broken store: the worker stops and opens it again later (storage.js).
      const disk = isStorageError(err) ? err : await storageRefusal(this.settings.dataDir)
      if (disk) writeFailed(disk, this.settings.sessionDir)
      this.lastError = `the session store cannot be read: ${err.message}`
      this.log.error({ err }, 'session.store_unreadable')
      this.setState('failed')
      throw new WorkerError(500, 'session_store_error', this.lastError)
    }
    return this.store
  }

  socketConfig (store, logger) {
    return {
      waWebSocketUrl: this.settings.serverUrl,
      auth: { creds: store.state.creds, keys: makeCacheableSignalKeyStore(store.state.keys, logger) },
      logger,
      browser: Browsers.ubuntu('wa-gateway'),
      printQRInTerminal: false,
      markOnlineOnConnect: false,
      syncFullHistory: false,
      qrTimeout: this.settings.qrTimeoutMs,
      keepAliveIntervalMs: this.settings.keepAliveMs,
      connectTimeoutMs: this.settings.connectTimeoutMs,
      defaultQueryTimeoutMs: this.settings.connectTimeoutMs,
      // A recipient device that could not decrypt sends a retry receipt; Baileys resends what this
      // returns (its own recent-message cache only covers the socket that sent the message).
      getMessage: async (key) => this.storedMessage(key),
      // Decryption results on disk before the key change that produced them (src/decrypt-cache.js).
      makeSignalRepository: makeDurableSignalRepository(() => this.decrypted),
      // Durable before acknowledged (patches/baileys+7.0.0-rc14+002+durable-before-receipt.patch):
      // a decrypted message and a receipt are in the event journal before WhatsApp hears of them.
      beforeMessageReceipt: (msg, node) => this.onDecrypted(msg, node),
      beforeReceiptAck: (node) => this.onReceiptNode(node),
      // patches/*004*: an <unavailable> stub's key is in the session store before its ack (placeholders.js)
      beforePlaceholderAck: (msg, node) => this.placeholders.remember(msg, node)
    }
  }

  async openSocket () {
    this.clearTimers()
    this.endSocket()
    const generation = ++this.generation
    this.setState('connecting')
    const store = await this.openStore()
    if (this.closing) return
    // Sessions in PostgreSQL: still the owner? (a read; a lost lease fences and throws not_owner)
    if (this.pg) await this.assertOwner()
    if (this.closing || generation !== this.generation || this.state === 'fenced') return
    const sock = makeWASocket(this.socketConfig(store, this.baileysLog))
    this.sock = sock
    sock.ev.process((events) => this.onEvents({ sock, store, generation }, events))
    this.watchStatuses(sock, generation)
    this.placeholders.attach(sock, () => generation === this.generation && !this.closing)
  }

  // The server ack ('sent') straight from the socket: rc14 emits no status at all for it. The
  // receipts come through the beforeReceiptAck hook (onReceiptNode), not messages.update, which can
  // sit in the event buffer (ev.buffer: connect, offline delivery, initial sync) for up to 30 s.
  watchStatuses (sock, generation) {
    const live = () => generation === this.generation && !this.closing
    sock.ws.on('CB:ack,class:message', (node) => {
      if (!live()) return
      const { id, error } = node.attrs
      this.acks.settle(id, error)
      if (!this.sentIds.has(id)) return
      if (error) this.durably(this.recordStatus(id, proto.WebMessageInfo.Status.ERROR, { error: String(error) }))
      else this.durably(this.recordStatus(id, proto.WebMessageInfo.Status.SERVER_ACK))
    })
  }

  // Link liveness while connected: any frame from the server counts; after WA_LINK_PROBE_MS of
  // silence one ping goes out (fire and forget: its answer is a frame like any other), and with no
  // frame WA_LINK_TIMEOUT_MS after it the link is dead: the socket is ended with 408 (timedOut), so
  // onClose schedules the usual reconnect with backoff instead of waiting 35 s for Baileys' keep-alive.
  watchLink (sock, generation) {
    this.link?.stop()
    const monitor = new LinkMonitor({
      probeAfterMs: this.settings.linkProbeMs,
      timeoutMs: this.settings.linkTimeoutMs,
      isBuffering: () => sock.ev.isBuffering?.() ?? false,
      probe: () => sock.sendNode({
        tag: 'iq',
        attrs: { id: sock.generateMessageTag(), to: S_WHATSAPP_NET, type: 'get', xmlns: 'w:p' },
        content: [{ tag: 'ping', attrs: {} }]
      }),
      onDead: (info) => {
        if (generation !== this.generation || this.closing || this.link !== monitor) return
        this.log.warn({ reason: info.reason, last_frame_age_ms: info.last_frame_age_ms, probe_after_ms: this.settings.linkProbeMs,
          timeout_ms: this.settings.linkTimeoutMs }, 'session.link_dead')
        const err = Object.assign(new Error(`link dead: ${info.message}`), { output: { statusCode: DisconnectReason.timedOut } })
        Promise.resolve(sock.end(err)).catch((e) => this.log.debug({ err: e }, 'session.end_failed'))
      }
    })
    this.link = monitor
    sock.ws.on('frame', () => monitor.frame())
    monitor.start()
  }

  // beforeReceiptAck: the statuses a contact's receipt gives messages this worker sent, journaled
  // before Baileys acks the receipt (an unacked receipt is delivered again at the next login).
  async onReceiptNode (node) {
    const { attrs } = node
    const status = RECEIPT_STATUS[attrs.type ?? '']
    if (status === undefined || attrs.recipient || this.isOwnJid(attrs.participant || attrs.from)) return
    const list = Array.isArray(node.content) ? node.content.find((c) => c.tag === 'list') : undefined
    const ids = [attrs.id, ...(Array.isArray(list?.content) ? list.content.map((item) => item.attrs?.id) : [])]
    await this.mustPersist(Promise.all(ids.filter((id) => this.sentIds.has(id)).map((id) => this.recordStatus(id, status))))
  }

  // beforeMessageReceipt: a contact's decrypted message, journaled before the receipt goes out.
  async onDecrypted (msg, node) {
    // our own devices' key shares, LID mappings and placeholder answers: applied (and journaled) first
    if (this.peerMessages.handles(msg)) return this.peerMessages.apply(msg, node)
    const how = msg.key?.fromMe ? null : (node?.attrs?.offline ? 'append' : 'live')
    await this.mustPersist(this.recordInbound(msg, how))
  }

  // A failed journal write is fail-stop (journal.js): nothing later could be acknowledged honestly,
  // so the worker ends before Baileys acknowledges anything; supervisord restarts it and WhatsApp
  // redelivers what was not acknowledged.
  async mustPersist (promise) {
    try {
      return await promise
    } catch (err) {
      this.log.fatal({ err }, 'events.write_failed')
      process.exit(1)
    }
  }

  durably (promise) {
    this.mustPersist(promise)
  }

  isOwnJid (jid) {
    const user = jidDecode(jid ?? '')?.user
    if (!user) return false
    const me = this.store?.state.creds.me
    return user === jidDecode(me?.id ?? '')?.user || user === jidDecode(me?.lid ?? '')?.user
  }

  // getMessage: the stored copy of a message this worker sent, for the recipient it was sent to.
  async storedMessage (key) {
    const entry = this.sentMessages?.get(key?.id)
    if (!entry) {
      this.log.info({ message_id: key?.id ?? null }, 'message.retry_not_found')
      return undefined
    }
    const asker = jidDecode(key.remoteJid ?? '')
    let askerPhone = asker?.server === 's.whatsapp.net' ? asker.user : null
    if (asker?.server === 'lid') {
      const pn = await this.sock?.signalRepository?.lidMapping?.getPNForLID(key.remoteJid).catch(() => null)
      askerPhone = pn ? jidDecode(pn)?.user : null
    }
    if (askerPhone && askerPhone !== jidDecode(entry.jid)?.user) {
      this.log.warn({ message_id: key.id }, 'message.retry_refused_other_recipient')
      return undefined
    }
    this.log.info({ message_id: key.id }, 'message.retry_resent')
    return entry.message
  }

  // Unlinks over the open socket (the remove-companion-device query goes out before it closes).
  async unlinkOver (sock) {
    try {
      await withTimeout(sock.logout('wa-gateway disconnect'), this.settings.connectTimeoutMs)
      return true
    } catch (err) {
      this.log.warn({ err }, 'session.logout_failed')
      return false
    }
  }

  // The session is registered but its socket is not open (pairing just done, a 515 restart or a
  // reconnect under way, a worker that never connected): connect once, bounded, just to unlink.
  async unlinkByConnecting () {
    const abort = new AbortController()
    this.unlinking = abort
    const log = this.baileysLog.child({ purpose: 'unlink' })
    let sock
    try {
      sock = makeWASocket(this.socketConfig(this.store, log))
      let timer
      const outcome = await new Promise((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.settings.connectTimeoutMs)
        abort.signal.addEventListener('abort', () => resolve('aborted'))
        sock.ev.on('connection.update', ({ connection, lastDisconnect }) => {
          if (connection === 'open') resolve('open')
          if (connection === 'close') {
            resolve(lastDisconnect?.error?.output?.statusCode === DisconnectReason.loggedOut ? 'not_linked' : 'closed')
          }
        })
      })
      clearTimeout(timer)
      this.log.info({ outcome }, 'session.unlink_connection')
      if (outcome === 'open') return await this.unlinkOver(sock)
      return outcome === 'not_linked' // the server no longer knows this device: nothing is left there
    } catch (err) {
      this.log.warn({ err }, 'session.logout_failed')
      return false
    } finally {
      this.unlinking = null
      try { sock?.end(undefined) } catch {}
    }
  }

  async clearSession () {
    const store = this.store
    this.store = null
    if (store) await store.close() // waits for the writes in flight; later ones are refused
    if (this.pg && this.leaseGeneration !== null) {
      try {
        await removePgAuthStore(this.pg.pool, this.lease()) // behind the fence, like every write
      } catch (err) {
        if (!(err instanceof FencedError)) throw err
        this.fence(err.message)
        throw this.notOwner()
      }
    }
    await removeAuthStore(this.settings.sessionDir) // with PostgreSQL too: a local session would be imported again
    this.sentMessages = null
    await SentMessages.remove(this.settings.sentMessagesDir)
    this.decrypted = null
    await DecryptCache.remove(this.settings.decryptedDir)
    this.sentIds.clear()
    this.statusRank.clear()
    this.me = null
    this.onWhatsAppCache.clear()
    this.log.info('session.data_removed')
  }

  clearTimers () {
    this.link?.stop()
    this.link = null
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    if (this.stableTimer) clearTimeout(this.stableTimer)
    this.reconnectTimer = null
    this.reconnectAt = null
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
      this.log.debug({ err }, 'session.end_failed')
    }
  }

  // ---- events of the current socket ----------------------------------------------------------

  async onEvents ({ sock, store, generation }, events) {
    const live = () => generation === this.generation && !this.closing
    if (!live()) return
    try {
      if (events['creds.update']) await store.saveCreds()
      if (events['connection.update'] && live()) await this.onConnectionUpdate(sock, generation, events['connection.update'])
      if (events['messages.upsert'] && live()) this.onUpsert(events['messages.upsert'])
      if (events['messages.update'] && live()) this.onMessagesUpdate(events['messages.update'])
    } catch (err) {
      // A socket that was just retired may still try to save into its (now closed) store.
      if (live()) this.log.error({ err }, 'session.event_handler_failed')
      else this.log.debug({ err }, 'session.retired_socket_event_dropped')
    }
  }

  async onConnectionUpdate (sock, generation, update) {
    const { connection, lastDisconnect, qr } = update
    if (qr) {
      const image = await QRCode.toDataURL(qr, { margin: 2, scale: 6 })
      if (generation !== this.generation) return
      this.qr = qr
      this.qrImage = image
      this.log.info('session.qr') // a new QR (every 20 s until scanned) is expected: info, no payload
      this.setState('qr')
    }
    if (connection === 'open') {
      this.me = sock.user ? { id: sock.user.id, name: sock.user.name ?? sock.user.verifiedName ?? null } : null
      this.lastError = null
      this.setState('connected', { phone_number: this.me ? jidToPhone(this.me.id) : null })
      this.watchLink(sock, generation)
      this.stableTimer = setTimeout(() => {
        this.stableTimer = null
        this.backoff.reset()
      }, this.settings.reconnectStableMs)
    }
    if (connection === 'close') {
      await this.lifecycle.run('close', async () => {
        if (generation !== this.generation || this.closing) return
        await this.onClose(lastDisconnect?.error)
      })
    }
  }

  // Runs as a lifecycle operation.
  async onClose (error) {
    const code = error?.output?.statusCode
    const message = error?.message || 'connection closed'
    this.sock = null
    this.acks.failAll(message)
    this.clearTimers()
    if (this.closing) return
    this.emit('closed', code)
    if (this.pg && code === DisconnectReason.connectionReplaced) {
      // Another instance connected with these credentials: it owns the account now. Without
      // PostgreSQL a 440 reconnects like any other drop.
      this.fence(`connection replaced (${code}): another instance connected with these credentials`)
      return
    }
    if (code === DisconnectReason.loggedOut) {
      this.lastError = 'logged out: the device was unlinked from the phone'
      try {
        await this.clearSession()
      } catch (err) {
        if (this.state === 'fenced') return // not the owner any more: the rows are the new owner's
        throw err
      }
      this.setState('logged_out', { code })
      return
    }
    if (code === DisconnectReason.restartRequired) {
      // Expected right after pairing: WhatsApp asks for a fresh connection with the new creds.
      this.log.info({ code }, 'session.restart_required')
      await this.openSocket()
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
    if (error?.data?.code === 'untrusted_server') {
      // The server failed certificate verification (patches/baileys+7.0.0-rc14+001+server-auth.patch): retrying the
      // same server would only repeat the refusal, so stop until an operator acts (POST /connect).
      this.lastError = message
      this.setState('failed', { code, reason: error.data.reason })
      return
    }
    this.lastError = `${message}${code ? ` (${code})` : ''}`
    this.scheduleReconnect(code)
  }

  scheduleReconnect (code) {
    const delay = this.backoff.next()
    const generation = this.generation
    this.log.warn({ code, delay_ms: delay, attempt: this.backoff.attempt, last_error: this.lastError },
      'session.reconnect_scheduled')
    this.setState('connecting')
    this.reconnectAt = Date.now() + delay
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.reconnectAt = null
      this.lifecycle.run('reconnect', async () => {
        if (generation !== this.generation || this.closing || this.state !== 'connecting') return
        await this.openSocket()
      }).catch((err) => {
        this.log.error({ err }, 'session.reconnect_failed')
        if (this.state !== 'failed' && this.state !== 'fenced' && !this.closing) {
          this.lastError = `reconnect failed: ${err.message}`
          this.scheduleReconnect()
        }
      })
    }, delay)
  }

  onUpsert ({ messages, type }) {
    for (const msg of messages) {
      const id = msg.key?.id
      if (this.placeholders.isResolved(id)) continue // a placeholder's stub or Baileys' upsert of its journaled content
      if (msg.key?.fromMe) {
        // Only messages this worker sent have a status to report; the phone's own messages and
        // history syncs (type 'append') are not ours.
        if (this.sentIds.has(id) && msg.status != null && STATUS_NAMES[msg.status]) this.durably(this.recordStatus(id, msg.status))
        continue
      }
      if (msg.messageStubType === proto.WebMessageInfo.StubType.CIPHERTEXT && !msg.message && msg.category !== 'peer' &&
          /@(s\.whatsapp\.net|lid)$/.test(msg.key?.remoteJid ?? '')) {
        this.undecryptable.failed(msg) // a retry receipt asked for it again: undecryptable only if none follows
        continue
      }
      // Normally journaled already by the beforeMessageReceipt hook (same event id, not repeated);
      // 'append' is what Baileys calls a message delivered while this device was offline.
      if (type === 'notify' || type === 'append') this.durably(this.recordInbound(msg, type))
    }
  }

  // One `message` event per message a contact sent (the event id is stable, so a redelivery is the
  // same event). The sender is given by phone number (E.164) and, when known, LID.
  async recordInbound (msg, how) {
    if (!how || !msg?.key?.id || msg.key.fromMe || !msg.message) return null
    this.undecryptable.decrypted(msg.key.remoteJid, msg.key.id)
    const content = contentOf(msg.message)
    if (!content) return null // protocol messages (key shares, history notices, edits of state) are no messages
    const chat = msg.key.remoteJid ?? ''
    if (!/@(s\.whatsapp\.net|lid)$/.test(chat)) return null // groups, broadcasts, newsletters: not yet
    const { phone, lid } = await this.identify(chat, msg.key.remoteJidAlt ?? msg.key.senderPn ?? null)
    const text = textOf(msg.message)
    const event = {
      id: msg.key.id,
      from: phone,
      lid,
      from_jid: chat,
      push_name: msg.pushName ?? null,
      timestamp: Number(msg.messageTimestamp ?? 0),
      kind: content,
      text,
      offline: how === 'append'
    }
    const recorded = await this.journal.push('message', event, `in:${chat}:${msg.key.id}`)
    if (recorded && recorded.seq === this.journal.seq) {
      this.log.info({ message_id: msg.key.id, from: phone, lid, kind: content, length: text?.length ?? 0, offline: event.offline }, 'message.received')
    }
    return recorded
  }

  // One `message.undecryptable` event per message no readable copy followed (undecryptable.js).
  async recordUndecryptable (msg, { stubs, error }) {
    const chat = msg.key.remoteJid
    const { phone, lid } = await this.identify(chat, msg.key.remoteJidAlt ?? msg.key.senderPn ?? null)
    this.log.warn({ message_id: msg.key.id, from: phone, lid, attempts: stubs, error }, 'message.undecryptable')
    return this.journal.push('message.undecryptable', {
      id: msg.key.id, from: phone, lid, from_jid: chat, timestamp: Number(msg.messageTimestamp ?? 0), attempts: stubs, error
    }, `undecryptable:${chat}:${msg.key.id}`)
  }

  // The phone number and LID of a contact's chat jid: from the message itself (Baileys puts the
  // other address in remoteJidAlt) or from Baileys' LID mapping store.
  async identify (chat, alt) {
    const mapping = this.sock?.signalRepository?.lidMapping
    let phone = null
    let lid = null
    const pnOf = (jid) => (jid && jid.endsWith('@s.whatsapp.net')) ? jidToPhone(jid) : null
    const lidOf = (jid) => (jid && jid.endsWith('@lid')) ? jid.replace(/:\d+@/, '@') : null
    if (chat.endsWith('@lid')) {
      lid = lidOf(chat)
      phone = pnOf(alt)
      if (!phone && mapping) {
        try { phone = pnOf(await mapping.getPNForLID(chat)) } catch (err) { this.log.debug({ err }, 'lid.lookup_failed') }
      }
    } else {
      phone = pnOf(chat)
      lid = lidOf(alt)
      if (!lid && mapping) {
        try { lid = lidOf(await mapping.getLIDForPN(chat)) } catch (err) { this.log.debug({ err }, 'lid.lookup_failed') }
      }
    }
    return { phone, lid }
  }

  onMessagesUpdate (updates) {
    for (const { key, update } of updates) {
      if (key?.fromMe && update?.status != null && this.sentIds.has(key.id)) this.durably(this.recordStatus(key.id, update.status))
    }
  }

  // Each step once per message, in order (a late or repeated one is dropped): the socket's raw ack,
  // the receipt hook and Baileys' events all report here. Not 'pending': that is no step at WhatsApp.
  // A dropped repeat resolves with the write of the step that covers it, so a hook that awaits it
  // still acknowledges nothing before that step is on disk.
  recordStatus (id, status, extra = {}) {
    const name = STATUS_NAMES[status] ?? String(status)
    if (status === proto.WebMessageInfo.Status.PENDING) return Promise.resolve()
    const rank = status === proto.WebMessageInfo.Status.ERROR ? Infinity : status
    const known = this.statusRank.get(id)
    if (known && known.rank >= rank) return known.written
    this.statusRank.delete(id)
    this.log.info({ message_id: id, status: name, ...extra }, 'message.status')
    const written = this.journal.push('message.status', { id, status: name, ...extra }, `status:${id}:${name}`)
    this.statusRank.set(id, { rank, written })
    if (this.statusRank.size > STATUS_MEMORY) this.statusRank.delete(this.statusRank.keys().next().value)
    return written
  }

  // ---- sending -------------------------------------------------------------------------------

  /** 409 not_owner: sessions in PostgreSQL, and this instance does not (or no longer) hold the account's lease. */
  notOwner () {
    const message = this.leaseGeneration === null
      ? 'This instance does not own the account: the gateway has not attached it with a lease generation.'
      : `This instance no longer owns the account (its lease generation ${this.leaseGeneration} was taken over); nothing was sent. ` +
        'It acts again only after an attach with a newer generation.'
    return new WorkerError(409, 'not_owner', message, { state: this.state, lease_generation: this.leaseGeneration, last_error: this.lastError })
  }

  /** 409 not_connected that says why: reconnecting (attempt, next try, last error), pairing, or stopped. */
  notConnected () {
    if (this.state === 'fenced') return this.notOwner()
    const details = { state: this.state, attempt: this.backoff.attempt, last_error: this.lastError }
    const why = this.lastError ? `; last error: ${this.lastError}` : ''
    if (this.reconnectTimer !== null) {
      const nextMs = Math.max(0, this.reconnectAt - Date.now())
      return new WorkerError(409, 'not_connected',
        `WhatsApp is reconnecting (attempt ${this.backoff.attempt}, next try in ${seconds(nextMs)}${why}); retry later.`,
        { ...details, next_retry_ms: nextMs, next_retry_at: new Date(this.reconnectAt).toISOString() })
    }
    if (this.state === 'connecting') {
      return new WorkerError(409, 'not_connected',
        `WhatsApp is connecting${this.backoff.attempt ? ` (attempt ${this.backoff.attempt})` : ''}${why}; retry in a few seconds.`, details)
    }
    if (this.state === 'qr') {
      return new WorkerError(409, 'not_connected', 'WhatsApp is waiting for the QR code to be scanned.', details)
    }
    return new WorkerError(409, 'not_connected', `WhatsApp is not connected (state: ${this.state}${why}); POST /connect first.`, details)
  }

  async isOnWhatsApp (sock, jid) {
    const now = Date.now()
    const cached = this.onWhatsAppCache.get(jid)
    if (cached && cached.until > now) return cached.exists
    const results = await sock.onWhatsApp(jid)
    if (results === undefined) {
      // Baileys answers undefined when the query timed out: unknown, not "not on WhatsApp"; never cached.
      throw new WorkerError(504, 'whatsapp_timeout', 'WhatsApp did not answer whether the number is on WhatsApp; retry later.')
    }
    const exists = !!results[0]?.exists
    const ttl = exists ? this.settings.onWhatsAppTtlMs : this.settings.notOnWhatsAppTtlMs
    this.onWhatsAppCache.delete(jid)
    if (ttl > 0) this.onWhatsAppCache.set(jid, { exists, until: now + ttl })
    if (this.onWhatsAppCache.size > ON_WHATSAPP_CACHE_SIZE) this.onWhatsAppCache.delete(this.onWhatsAppCache.keys().next().value)
    return exists
  }

  /** Sends and waits for the server's ack (server-acks.js): `sent` means WhatsApp has it. */
  async sendText (phone, text, messageId) {
    const { id, acked } = await this.relayText(phone, text, messageId)
    await acked
    return { id, status: 'sent' }
  }

  /** Hands the message to the socket; `acked` settles with the server's ack (never rejects unhandled). */
  async relayText (phone, text, messageId) {
    const sock = this.sock
    if (this.state !== 'connected' || !sock) throw this.notConnected()
    const jid = phoneToJid(phone)
    try {
      if (!(await this.isOnWhatsApp(sock, jid))) {
        throw new WorkerError(422, 'not_on_whatsapp', `${phone} is not on WhatsApp.`)
      }
      // Known before the server acks it, and its content stored (fsync'ed) before it leaves, so that a
      // retry receipt is answered even after a crash. A repeated id (a resend after a crash) goes out
      // with the very protobuf stored the first time: the recipient sees one message.
      const id = messageId ?? generateMessageIDV2(sock.user?.id)
      const sentStore = this.sentMessages
      if (!sentStore) throw this.notConnected()
      // Sessions in PostgreSQL: a former owner stores and hands nothing to Baileys (409 not_owner, fenced).
      if (this.pg) await this.assertOwner()
      this.sentIds.add(id)
      const stored = sentStore.get(id)
      const resend = !!stored && jidDecode(stored.jid)?.user === jidDecode(jid)?.user
      let message = resend ? stored.message : null
      if (!message) {
        message = (await generateWAMessage(jid, { text }, { userJid: sock.user?.id, messageId: id, logger: this.baileysLog })).message
        try {
          await sentStore.put(id, jid, message)
        } catch (err) {
          if (err?.code === 'not_owner') { // the sent messages are fenced with the session (PostgreSQL)
            this.fence(err.message)
            throw this.notOwner()
          }
          this.log.error({ err, message_id: id }, 'message.store_failed')
          throw new WorkerError(500, 'store_error', 'The worker could not store the message before sending it; nothing was sent.')
        }
      }
      if (this.pg && (this.sock !== sock || this.state !== 'connected')) throw this.notConnected()
      const acked = this.acks.expect(id, this.settings.sendAckTimeoutMs)
      acked.catch(() => {}) // awaited by the caller; a relay that throws below drops it
      try {
        await sock.relayMessage(jid, message, { messageId: id })
      } catch (err) {
        this.acks.forget(id)
        throw err
      }
      this.log.info({ message_id: id, length: text.length, resend }, 'message.relayed')
      return { id, acked: acked.then(() => this.log.info({ message_id: id }, 'message.sent')) }
    } catch (err) {
      if (err instanceof WorkerError) throw err
      if (this.state === 'fenced') throw this.notOwner()
      if (this.sock !== sock || this.state !== 'connected' || err?.output?.statusCode === DisconnectReason.connectionClosed) {
        // The connection went away under the send (a disconnect, a drop): a state, not a failure.
        throw new WorkerError(409, 'not_connected', `The WhatsApp connection closed while sending: ${err.message}.`,
          { state: this.state, last_error: this.lastError })
      }
      this.log.warn({ err }, 'message.send_failed')
      throw new WorkerError(502, 'whatsapp_error', `WhatsApp did not take the message: ${err.message}.`)
    }
  }

  /**
   * Messages to one recipient, in order (POST /send/batch). A message that cannot go for its own reason
   * (not on WhatsApp) fails alone; any other failure stops the batch there, and the messages after it are
   * `not_attempted`: sending them would overtake the one that will be retried.
   */
  async sendBatch (items) {
    const relayed = [] // per item: { id, acked } or { id, error }, in order
    let stopped = null
    for (const item of items) {
      if (stopped) {
        relayed.push({ id: item.id, error: { status: 409, code: 'not_attempted', message: `Not sent: an earlier message of this batch failed (${stopped}).` } })
        continue
      }
      try {
        relayed.push(await this.relayText(item.phone_number, item.text, item.id))
      } catch (err) {
        const error = this.asWorkerError(err, item.id)
        relayed.push({ id: item.id, error: { status: error.status, code: error.code, message: error.message, ...error.details } })
        if (error.code !== 'not_on_whatsapp') stopped = error.code
      }
    }
    // All of the run is on the wire in order; now the server's acks, one round trip for the run.
    const results = []
    for (const r of relayed) {
      if (!r.acked) { results.push(r); continue }
      try {
        await r.acked
        results.push({ id: r.id, status: 'sent' })
      } catch (err) {
        const error = this.asWorkerError(err, r.id)
        results.push({ id: r.id, error: { status: error.status, code: error.code, message: error.message, ...error.details } })
      }
    }
    return { results }
  }

  asWorkerError (err, id) {
    if (err instanceof WorkerError) return err
    this.log.error({ err, message_id: id }, 'message.send_failed')
    return new WorkerError(500, 'worker_error', 'The worker failed while sending.')
  }
}

function withTimeout (promise, ms) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}
