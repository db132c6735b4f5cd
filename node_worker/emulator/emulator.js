// The emulator core: owns the directory, connections, faults and persistence, and routes
// each client node to the module that handles it.
import { Directory, e164 } from './accounts.js'
import { Connection } from './connection.js'
import { makeCertChain } from './certs.js'
import { generateKeyPair } from './crypto.js'
import { Pairing } from './pairing.js'
import { PairCode } from './pair-code.js'
import { Login } from './login.js'
import { Messaging } from './messaging.js'
import { Retries, RETRY_COUNTERS } from './retries.js'
import { Placeholders } from './placeholders.js'
import { Lookups } from './lookups.js'
import { Faults } from './faults.js'
import { MediaStore } from './media-store.js'
import { MediaServer } from './media-server.js'
import { MediaMessages } from './media-messages.js'
import { Conversation } from './conversation.js'
import { PhoneReads } from './phone-reads.js'
import { MediaRetry } from './media-retry.js'
import { Groups } from './groups.js'
import { GroupMessaging } from './group-messaging.js'
import { HistorySync } from './history.js'
import { ProfilePictures } from './profile-pictures.js'
import { StateSaver, loadState } from './state-file.js'
import { ConnectStats } from './connect-stats.js'
import { nodeToJSON, nodeFromJSON, jidDecode } from './wa.js'
import { errorFields } from './log.js'

const CERT_VALID_SECONDS = 7 * 24 * 3600
const QUEUE_BOUND = 5000 // per device and queue (pending, unacked): the oldest are dropped beyond it
const NEEDS_ACK = new Set(['message', 'receipt', 'notification']) // stanzas a device must acknowledge
const CERT_RENEW_MS = 24 * 3600 * 1000

export class Emulator {
  /**
   * @param {{ log, rootKey: {public, private}, settings: { qrRefs, gatewayUrl, apiKey, stateFile, receiptDelayMs } }} opts
   */
  constructor ({ log, rootKey, settings }) {
    this.log = log
    this.rootKey = rootKey
    this.settings = { qrRefs: 6, receiptDelayMs: 100, ...settings }
    this.serverStatic = generateKeyPair()
    this.setCertMode(this.settings.certMode || 'valid')
    this.handshakes = { started: 0, completed: 0 } // serverHellos sent, clientFinishes accepted
    this.directory = new Directory()
    this.connections = new Map()
    // device -> its logged-in connections: a delivery finds them without a scan over every connection
    this.online = new Map()
    this.stats = new ConnectStats() // GET /stats
    this.pairing = new Pairing(this)
    this.pairCode = new PairCode(this)
    this.login = new Login(this)
    this.messaging = new Messaging(this)
    this.retries = new Retries(this)
    this.placeholders = new Placeholders(this)
    this.lookups = new Lookups(this)
    this.faults = new Faults(this)
    this.phoneReads = new PhoneReads(this)
    this.groups = new Groups(this)
    this.groupMessaging = new GroupMessaging(this)
    this.history = new HistorySync(this)
    this.setUpMedia()
    this.saver = new StateSaver({ file: this.settings.stateFile, snapshot: () => this.snapshotState(), log })
    const saved = loadState(this.settings.stateFile)
    if (saved) {
      this.directory.load(saved.users)
      this.groups.load(saved.groups)
      log.info('state.loaded', { users: this.directory.users.size, groups: this.groups.groups.size })
    }
  }

  /** the media host (media-server.js; started by server.js), its store, and the phones' side of media */
  setUpMedia () {
    const s = this.settings
    this.mediaStore = new MediaStore({ dir: s.mediaDir || null, log: this.log, maxBytes: s.mediaMaxBytes ?? 256 * 1024 * 1024, expirySeconds: s.mediaExpirySeconds ?? 30 * 24 * 3600 })
    this.mediaServer = new MediaServer({ emu: this, store: this.mediaStore, tlsDir: s.mediaDir || null, host: s.host || '127.0.0.1', publicHost: s.mediaHost, maxUploadBytes: s.mediaMaxUploadBytes ?? 64 * 1024 * 1024 })
    this.mediaMessages = new MediaMessages(this)
    this.conversation = new Conversation(this)
    this.mediaRetry = new MediaRetry(this)
    this.pictures = new ProfilePictures({ emu: this, dir: s.mediaDir || null }) // profile pictures, served by the media host
  }

  /** what every later serverHello presents (CERT_MODES in certs.js); throws on an unknown mode */
  setCertMode (mode) {
    this.certChainCache = { chain: makeCertChain(this.rootKey, this.serverStatic.public, { mode, validSeconds: CERT_VALID_SECONDS }), mode, builtAt: Date.now() }
    this.certMode = mode
    return mode
  }

  /** the chain for the next handshake, re-issued daily so that a long-running sandbox never presents an expired one */
  get certChain () {
    if (Date.now() - this.certChainCache.builtAt > CERT_RENEW_MS) this.setCertMode(this.certMode)
    return this.certChainCache.chain
  }

  snapshotState () {
    return { users: this.directory.toJSON(), groups: this.groups.toJSON() }
  }

  persist () { this.saver.schedule() }

  // ------------------------------------------------------------ connections
  accept (ws, req) {
    const conn = new Connection({ ws, emulator: this, remote: req?.socket?.remoteAddress })
    this.connections.set(conn.id, conn)
    this.stats.connected()
    conn.log.info('connection.opened')
    return conn
  }

  /** the connection logged in as its device (login.js) */
  onLoggedIn (conn) {
    let conns = this.online.get(conn.device)
    if (!conns) this.online.set(conn.device, (conns = new Set()))
    conns.add(conn)
    this.stats.loggedIn(Date.now() - conn.openedAt)
  }

  onConnectionClosed (conn) {
    this.connections.delete(conn.id)
    const conns = conn.device && this.online.get(conn.device)
    if (conns) {
      conns.delete(conn)
      if (!conns.size) this.online.delete(conn.device)
    }
    conn.log.info('connection.ended', { jid: conn.jid, state_before: conn.device ? 'connected' : conn.pairing ? 'pairing' : 'handshake' })
  }

  connectionsOfDevice (user, device) {
    const conns = this.online.get(device)
    return conns ? [...conns].filter((c) => c.state === 'connected' && c.user === user) : []
  }

  async handleClientPayload (conn, payload) {
    if (payload.devicePairingData) return this.pairing.begin(conn, payload)
    if (payload.username != null) return this.login.handle(conn, payload)
    conn.log.warn('handshake.unknown_payload')
    conn.failure(400)
  }

  async handleNode (conn, node) {
    try {
      switch (node.tag) {
        case 'iq':
          return await this.handleIq(conn, node)
        case 'message':
          return await this.messaging.onClientMessage(conn, node)
        case 'receipt':
          return await this.messaging.onClientReceipt(conn, node)
        case 'ack':
          return this.onClientAck(conn, node)
        case 'presence':
        case 'chatstate':
          return this.conversation.onClientPresence(conn, node)
        case 'ib':
          return
        case 'call':
          conn.sendNode({ tag: 'ack', attrs: { class: 'call', id: node.attrs.id, from: node.attrs.to || 's.whatsapp.net' } })
          return
        default:
          conn.log.debug('node.unhandled', { tag: node.tag })
      }
    } catch (err) {
      conn.log.error('node.handler_failed', { tag: node.tag, ...errorFields(err), stack: err?.stack?.split('\n').slice(0, 5).join(' | ') })
      if (node.tag === 'iq' && (node.attrs.type === 'get' || node.attrs.type === 'set')) conn.errorResult(node, 500, 'internal-server-error')
    }
  }

  async handleIq (conn, iq) {
    const type = iq.attrs.type
    if (type !== 'get' && type !== 'set') return // stray result/error for an iq we no longer wait for
    if (this.pairCode.handleIq(conn, iq)) return
    if (this.pictures.handleIq(conn, iq)) return
    if (await this.login.handleIq(conn, iq)) return
    if (await this.lookups.handleIq(conn, iq)) return
    if (await this.groups.handleIq(conn, iq)) return
    if (this.mediaServer.handleIq(conn, iq)) return
    // anything else: a harmless empty result so the client never waits for its query timeout
    const first = Array.isArray(iq.content) ? iq.content[0]?.tag : undefined
    conn.log.info('iq.unhandled', { xmlns: iq.attrs.xmlns || null, type, child: first || null })
    conn.result(iq)
  }

  // ------------------------------------------------------------ delivery to companions
  // The server's delivery guarantee, as WhatsApp gives it: every <message>, <receipt> and <notification>
  // for a linked device is kept until that device acknowledges it (a <receipt> or an <ack>/nack for a
  // message, an <ack class=receipt|notification> for the others). A device that is offline gets it at
  // its next login (`pending`); one that was sent it but did not acknowledge it before its connection
  // ended (or whose connection is a black hole) gets it again at its next login (`unacked`). At a login
  // both are sent marked offline="1", the unacknowledged first (they are the older), before <ib><offline>.

  /** sends a node to a linked device now, or queues it for its next login; returns 'sent' | 'queued' */
  deliverToDevice (user, device, node) {
    for (const c of this.connectionsOfDevice(user, device)) {
      if (!c.offlineSent) continue
      if (this.faults.isBlackholed(c)) {
        // written into a dead link: the device never gets it nor acknowledges it, so it is redelivered
        this.keepUntilAcked(device, node)
        return 'sent'
      }
      if (c.sendNode(node)) {
        this.keepUntilAcked(device, node)
        return 'sent'
      }
    }
    this.pushBounded(device, 'pending', node)
    return 'queued'
  }

  /** sends a node on one connection and keeps it until its device acknowledges it; false when not sent */
  sendTracked (conn, node) {
    if (!conn.device || !conn.sendNode(node)) return false
    this.keepUntilAcked(conn.device, node)
    return true
  }

  keepUntilAcked (device, node) {
    if (NEEDS_ACK.has(node.tag)) this.pushBounded(device, 'unacked', node)
  }

  pushBounded (device, queue, node) {
    const list = device[queue]
    list.push(nodeToJSON(node))
    if (list.length > QUEUE_BOUND) {
      const dropped = list.splice(0, list.length - QUEUE_BOUND)
      this.log.warn('queue.dropped', { jid: device.jid, queue, dropped: dropped.length, bound: QUEUE_BOUND })
    }
    this.persist()
  }

  /**
   * what a login sends before its end-of-offline marker: with `unacked`, everything sent before and
   * not acknowledged, then everything queued; the queued ones now count as sent and unacknowledged
   */
  takeForLogin (device, { unacked }) {
    const nodes = [...(unacked ? device.unacked : []), ...device.pending]
    if (device.pending.length) {
      device.unacked.push(...device.pending)
      device.pending = []
      if (device.unacked.length > QUEUE_BOUND) {
        const dropped = device.unacked.splice(0, device.unacked.length - QUEUE_BOUND)
        this.log.warn('queue.dropped', { jid: device.jid, queue: 'unacked', dropped: dropped.length, bound: QUEUE_BOUND })
      }
      this.persist()
    }
    return nodes.map(nodeFromJSON)
  }

  /** removes from the device's queues the stanzas `matches` accepts; returns how many */
  acknowledge (device, matches) {
    let removed = 0
    for (const queue of ['unacked', 'pending']) {
      const keep = device[queue].filter((n) => !matches(n))
      removed += device[queue].length - keep.length
      device[queue] = keep
    }
    if (removed) this.persist()
    return removed
  }

  /** the user (or, unknown, the bare user@server) a jid names, to compare PN and LID forms of a party */
  partyOf (jid) {
    if (!jid) return undefined
    let d
    try { d = jidDecode(jid) } catch { return undefined }
    if (!d?.user) return undefined
    return this.directory.resolve(d) || `${d.user}@${d.server}`
  }

  /** true when the jids named by attribute names `a` of node x and `b` of node y share a party (or y names none) */
  sameParties (x, a, y, b) {
    const theirs = b.map((k) => this.partyOf(y.attrs[k])).filter(Boolean)
    if (!theirs.length) return true
    const ours = a.map((k) => this.partyOf(x.attrs[k])).filter(Boolean)
    return ours.some((p) => theirs.includes(p))
  }

  /** <ack class=message|receipt|notification id ...> (or a nack, with error) from a device */
  onClientAck (conn, node) {
    const cls = node.attrs.class
    const id = node.attrs.id
    if (!conn.device || !id || !NEEDS_ACK.has(cls)) return
    const removed = this.acknowledge(conn.device, (q) => {
      if (q.tag !== cls || q.attrs.id !== id) return false
      // Baileys' buildAckStanza: to = the stanza's from, plus its type, participant and recipient
      if (cls === 'receipt') {
        return (q.attrs.type || '') === (node.attrs.type || '') && this.sameParties(q, ['from'], node, ['to'])
      }
      if (cls === 'message') return this.sameParties(q, ['from', 'recipient', 'participant'], node, ['to', 'participant', 'recipient'])
      return true
    })
    conn.log.debug('ack.received', { class: cls, id, type: node.attrs.type || null, error: node.attrs.error || null, cleared: removed })
  }

  /** a <receipt> from a device acknowledges the messages it names (any receipt type: delivered, read, retry, ...) */
  onReceiptFromDevice (conn, node, ids) {
    if (!conn.device) return 0
    return this.acknowledge(conn.device, (q) => q.tag === 'message' && ids.includes(q.attrs.id) &&
      this.sameParties(q, ['from', 'recipient', 'participant'], node, ['to', 'participant', 'recipient']))
  }

  /** forgets a linked device; with notify its open connections get the device_removed stream error */
  unlinkDevice (user, device, { notify }) {
    for (const c of this.connectionsOfDevice(user, device)) {
      if (notify) c.streamError({ code: '401' }, [{ tag: 'conflict', attrs: { type: 'device_removed' } }])
      else c.close()
    }
    user.devices.delete(device.id)
    this.log.info('device.unlinked', { jid: device.jid })
    this.persist()
  }

  // ------------------------------------------------------------ views for the control API
  overview () {
    const accounts = []
    const contacts = []
    for (const u of this.directory.users.values()) {
      if (u.isAccount || u.devices.size) {
        accounts.push({
          phone_number: e164(u.phone),
          lid: u.lidJid,
          devices: [...u.devices.values()].map((d) => ({
            jid: d.jid,
            lid: d.lidJid,
            platform: d.platform,
            connected: this.connectionsOfDevice(u, d).length > 0,
            prekeys: d.preKeys.size,
            queued: d.pending.length,
            unacked: d.unacked.length
          })),
          ...this.placeholders.counters(u)
        })
      } else {
        contacts.push({
          phone_number: e164(u.phone),
          lid: u.onWhatsApp ? u.lidJid : null,
          on_whatsapp: u.onWhatsApp,
          messages_received: u.inbox.length,
          receipts_received: u.receiptsReceived.filter((r) => r.type !== 'retry').length, // retries are no deliveries
          fail_decrypt_once: u.failDecryptOnce,
          ...this.retries.counters(u),
          addressing: u.addressing,
          signed_prekey_signature: u.signedPreKeySignature
        })
      }
    }
    const retries = {} // the contacts' retry counters summed: how often broken sessions had to heal
    for (const c of contacts) for (const k of RETRY_COUNTERS) retries[k] = (retries[k] || 0) + c[k]
    return {
      accounts,
      contacts,
      retries,
      connections: [...this.connections.values()].map((c) => c.describe()),
      root_public_key: Buffer.from(this.rootKey.public).toString('base64'),
      cert_mode: this.certMode,
      media: { ...this.mediaServer.describe(), ...this.mediaRetry.counters() },
      handshakes: { ...this.handshakes },
      // black holes still in force (read-only; lets a test wait for one to end instead of sleeping)
      blackholes: this.faults.blackholes.filter((b) => b.until > Date.now())
        .map((b) => ({ phone_number: b.phone == null ? null : e164(b.phone), until: new Date(b.until).toISOString() }))
    }
  }

  /** GET /stats: the connections now, and the dials and logins since the start or the last reset */
  statsView () {
    let loggedIn = 0
    for (const conns of this.online.values()) loggedIn += conns.size
    const saver = this.saver
    return { ...this.stats.view({ open: this.connections.size, loggedIn }), state_file: saver.file ? { writes: saver.writes, last_write_ms: saver.lastWriteMs } : null }
  }

  /** closes every connection (used on shutdown) and writes the state */
  shutdown () {
    for (const c of [...this.connections.values()]) c.terminate()
    this.saver.flush()
  }
}
