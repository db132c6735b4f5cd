// One WhatsApp session: the record of its state (what GET /status shows) and its public operations,
// composed of collaborators with one job each (src/session/):
//   lifecycle.js   the state machine and its operations (resume, start, logout, release, shutdown),
//                  a closed socket's transitions, reconnects with backoff
//   connection.js  the Baileys socket: its configuration with the durability hooks, its events
//   link.js        the QR while pairing, the link's liveness, the unlinking at logout
//   store.js       the session store and what lives beside it: open, fail, delete
//   fencing.js     sessions in PostgreSQL: the lease (adopt, check, fenced when lost)
//   send.js        sending (one message, a batch) and the stored copy for retry receipts
//   statuses.js    the statuses of the messages this worker sent: the one path into the journal
//   inbound.js     what contacts send: `message` and `message.undecryptable` events
//   contacts.js    who contacts are: `contact.updated` events, and the live lookup of one number (GET /contacts/{phone})
//   history.js     history sync as `history.sync` events (history-view.js), durable before the notification's receipt
//   groups.js      the account's groups (list, create, change, participants, invites) and their metadata cache;
//                  group-events.js: group changes as `group.participants` / `group.updated` events
//   media-download.js  the file of a contact's media message, downloaded, verified and stored (media-fetch.js)
// Each collaborator gets this session and reads or sets its shared state (state, sock, store, the
// generation of the socket, timers); what only one of them needs, it keeps itself. See lifecycle.js for
// the state machine and for the rule that only lifecycle operations open, close or delete the store.
import { EventEmitter } from 'node:events'
import { Backoff } from './backoff.js'
import { makeBaileysLogger } from '../lib/logger.js'
import { jidToPhone } from './phone.js'
import { SentIds } from './sent-ids.js'
import { SerialQueue } from './serial.js'
import { ServerAcks } from './server-acks.js'
import { UndecryptableMessages } from './undecryptable.js'
import { Placeholders } from './placeholders.js'
import { PeerMessages } from './peer-messages.js'
import { DEFAULT_ACCOUNT, STATE, WORKER_STATES } from './states.js'
import { Connection } from './session/connection.js'
import { Fencing } from './session/fencing.js'
import { Groups } from './session/groups.js'
import { GroupEvents } from './session/group-events.js'
import { GROUP_METADATA_MAX } from './session/group-metadata.js'
import { Inbound } from './session/inbound.js'
import { Contacts, KNOWN_NAMES_MAX } from './session/contacts.js'
import { History, JOURNALED_MAX } from './session/history.js'
import { Lifecycle } from './session/lifecycle.js'
import { Link } from './session/link.js'
import { MediaDownloads } from './session/media-download.js'
import { Sender, ON_WHATSAPP_CACHE_SIZE } from './session/send.js'
import { Statuses, STATUS_MEMORY } from './session/statuses.js'
import { DECRYPTED_MAX, Stores } from './session/store.js'

export const STATES = WORKER_STATES // the name importers knew; states.js holds the list

export class WhatsAppSession extends EventEmitter {
  constructor ({ settings, logger, journal, pg = null, account = DEFAULT_ACCOUNT, pacer = null }) {
    super()
    // the shard's ConnectPacer (src/connect-pacer.js, shared by its accounts), or null: dial at once
    this.pacer = pacer
    this.account = account // the account's name (its proxy setting in accounts.json: src/proxy.js)
    // Sessions in PostgreSQL (auth-store-pg.js): { pool, instanceId, account }, or null for the local store.
    this.pg = pg
    this.leaseGeneration = null // the lease generation the gateway attached the account with (PostgreSQL only)
    this.settings = settings
    this.log = logger.child({ component: 'session' })
    this.baileysLog = makeBaileysLogger(logger, settings.baileysLogLevel)
    this.journal = journal
    this.state = STATE.STOPPED
    this.qr = null
    this.qrImage = null
    // linking by code (POST /connect with phone_number): the account's number in E.164, and the code the
    // phone's user types ("ABCD-EFGH") once WhatsApp's socket of `pairingGeneration` asked for it
    this.pairingPhone = null
    this.pairingCode = null
    this.pairingGeneration = null
    this.pairingRefusal = null // WhatsApp's refusal of the code last asked for (a WorkerError), until the next ask
    this.lastError = null
    // whatsapp_unreachable: {cause, detail, hint, since, attempts} (session/lifecycle.js), else null
    this.unreachable = null
    this.socketOpened = false // the current socket reached the server (a QR, or logged in)
    this.me = null
    this.sock = null
    // { redacted, agent } while the current connection goes through a proxy (src/proxy.js), else null
    this.proxy = null
    this.store = null
    this.generation = 0
    this.reconnectTimer = null
    this.reconnectAt = null
    this.stableTimer = null
    this.linkMonitor = null // LinkMonitor of the open socket (link-monitor.js)
    this.backoff = new Backoff({ baseMs: settings.reconnectBaseMs, maxMs: settings.reconnectMaxMs })
    this.sentIds = new SentIds({ file: settings.sentIdsFile, logger: this.log })
    this.acks = new ServerAcks()
    this.sentMessages = null // SentMessages, opened with the session store
    this.decrypted = null // DecryptCache, opened with the session store
    this.serial = new SerialQueue() // one lifecycle operation at a time
    this.closing = false

    this.lifecycle = new Lifecycle(this)
    this.connection = new Connection(this)
    this.link = new Link(this)
    this.stores = new Stores(this)
    this.fencing = new Fencing(this)
    this.sender = new Sender(this)
    this.statuses = new Statuses(this)
    this.inbound = new Inbound(this)
    this.contacts = new Contacts(this)
    this.history = new History(this)
    this.groups = new Groups(this)
    this.groupEvents = new GroupEvents(this)
    this.mediaDownloads = new MediaDownloads(this)

    this.undecryptable = new UndecryptableMessages({
      afterMs: settings.undecryptableAfterMs,
      report: (msg, info) => this.durably(this.inbound.recordUndecryptable(msg, info))
    })
    // Placeholder resends and our own devices' protocol messages, durable before their acks (placeholders.js, peer-messages.js)
    this.placeholders = new Placeholders({
      keys: () => this.store?.state.keys ?? null,
      logger: this.log,
      abandoned: (stub, info) => this.mustPersist(this.inbound.recordUndecryptable(stub, info))
    })
    this.peerMessages = new PeerMessages({
      sock: () => this.sock,
      placeholders: this.placeholders,
      record: (msg, how) => this.mustPersist(this.inbound.recordInbound(msg, how)),
      logger: this.log
    })
  }

  status () {
    const nextMs = this.reconnectAt === null ? null : Math.max(0, this.reconnectAt - Date.now())
    return {
      connected: this.state === STATE.CONNECTED,
      state: this.state,
      phone_number: this.me ? jidToPhone(this.me.id) : null,
      name: this.me?.name ?? null,
      qr: this.state === STATE.QR ? this.qr : null,
      qr_image: this.state === STATE.QR ? this.qrImage : null,
      pairing_code: this.state === STATE.PAIRING_CODE ? this.pairingCode : null,
      last_error: this.lastError,
      unreachable: this.unreachable,
      // whether this device is linked (its creds registered): null while the session store is not open
      registered: this.store ? this.store.isRegistered() : null,
      // sessions in PostgreSQL: the lease generation this session writes and sends under (null otherwise)
      lease_generation: this.leaseGeneration,
      // while connected: whether the link demonstrably works (frames, pings answered, events flowing)
      link: this.state === STATE.CONNECTED && this.linkMonitor ? this.linkMonitor.snapshot() : null,
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
      status_memory: q(this.statuses.size, STATUS_MEMORY),
      on_whatsapp_cache: q(this.sender.onWhatsAppCache.size, ON_WHATSAPP_CACHE_SIZE),
      group_metadata: q(this.groups.metadata.size, GROUP_METADATA_MAX),
      sent_messages: q(this.sentMessages?.size ?? 0, this.settings.sentMessagesMax),
      decrypted: q(this.decrypted?.size ?? 0, DECRYPTED_MAX),
      contact_names: q(this.contacts.names.size, KNOWN_NAMES_MAX),
      history_items: q(this.history.journaled.size, JOURNALED_MAX)
    }
  }

  // ---- the operations of server.js and accounts.js -----------------------------------------

  resume () { return this.lifecycle.resume() }
  adoptLease (generation) { return this.fencing.adoptLease(generation) }
  start (phoneNumber) { return this.lifecycle.start(phoneNumber) }
  logout () { return this.lifecycle.logout() }
  release () { return this.lifecycle.release() }
  shutdown () { return this.lifecycle.shutdown() }
  sendText (phone, text, messageId) { return this.sender.sendText(phone, text, messageId) }
  /** `to`: a +E.164 number or a group id; `content`: a checked content (session/outbound-content.js parseContent) */
  send (to, content, messageId) { return this.sender.send(to, content, messageId) }
  sendBatch (items) { return this.sender.sendBatch(items) }
  /** `request`: session/media-download.js parseDownload; { sha256, size, descriptor } once stored */
  downloadMedia (request) { return this.mediaDownloads.download(request) }

  // ---- durability ----------------------------------------------------------------------------

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
}
