// The emulator core: owns the directory, connections, faults and persistence, and routes
// each client node to the module that handles it.
import { Directory, e164 } from './accounts.js'
import { Connection } from './connection.js'
import { makeCertChain } from './certs.js'
import { generateKeyPair } from './crypto.js'
import { Pairing } from './pairing.js'
import { Login } from './login.js'
import { Messaging } from './messaging.js'
import { Faults } from './faults.js'
import { StateSaver, loadState } from './state-file.js'
import { nodeToJSON, nodeFromJSON } from './wa.js'
import { errorFields } from './log.js'

const CERT_VALID_SECONDS = 7 * 24 * 3600
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
    this.pairing = new Pairing(this)
    this.login = new Login(this)
    this.messaging = new Messaging(this)
    this.faults = new Faults(this)
    this.saver = new StateSaver({ file: this.settings.stateFile, snapshot: () => this.snapshotState(), log })
    const saved = loadState(this.settings.stateFile)
    if (saved) {
      this.directory.load(saved.users)
      log.info('state.loaded', { users: this.directory.users.size })
    }
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
    return { users: this.directory.toJSON() }
  }

  persist () { this.saver.schedule() }

  // ------------------------------------------------------------ connections
  accept (ws, req) {
    const conn = new Connection({ ws, emulator: this, remote: req?.socket?.remoteAddress })
    this.connections.set(conn.id, conn)
    conn.log.info('connection.opened')
    return conn
  }

  onConnectionClosed (conn) {
    this.connections.delete(conn.id)
    conn.log.info('connection.ended', { jid: conn.jid, state_before: conn.device ? 'connected' : conn.pairing ? 'pairing' : 'handshake' })
  }

  connectionsOfDevice (user, device) {
    return [...this.connections.values()].filter((c) => c.state === 'connected' && c.user === user && c.device === device)
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
          return this.messaging.onClientReceipt(conn, node)
        case 'ack':
        case 'presence':
        case 'chatstate':
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
    if (await this.login.handleIq(conn, iq)) return
    if (await this.messaging.handleIq(conn, iq)) return
    // anything else: a harmless empty result so the client never waits for its query timeout
    const first = Array.isArray(iq.content) ? iq.content[0]?.tag : undefined
    conn.log.info('iq.unhandled', { xmlns: iq.attrs.xmlns || null, type, child: first || null })
    conn.result(iq)
  }

  // ------------------------------------------------------------ delivery to companions
  /** sends a node to a linked device now, or queues it for its next login; returns 'sent' | 'queued' */
  deliverToDevice (user, device, node) {
    for (const c of this.connectionsOfDevice(user, device)) {
      if (!this.faults.isBlackholed(c) && c.offlineSent && c.sendNode(node)) return 'sent'
    }
    device.pending.push(nodeToJSON(node))
    if (device.pending.length > 5000) device.pending.splice(0, device.pending.length - 5000)
    this.persist()
    return 'queued'
  }

  takePending (device) {
    const list = device.pending.map(nodeFromJSON)
    device.pending = []
    return list
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
            queued: d.pending.length
          }))
        })
      } else {
        contacts.push({
          phone_number: e164(u.phone),
          lid: u.onWhatsApp ? u.lidJid : null,
          on_whatsapp: u.onWhatsApp,
          messages_received: u.inbox.length,
          receipts_received: u.receiptsReceived.length,
          fail_decrypt_once: u.failDecryptOnce,
          retry_receipts_sent: u.retryReceiptsSent
        })
      }
    }
    return {
      accounts,
      contacts,
      connections: [...this.connections.values()].map((c) => c.describe()),
      root_public_key: Buffer.from(this.rootKey.public).toString('base64'),
      cert_mode: this.certMode,
      handshakes: { ...this.handshakes },
      // black holes still in force (read-only; lets a test wait for one to end instead of sleeping)
      blackholes: this.faults.blackholes.filter((b) => b.until > Date.now())
        .map((b) => ({ phone_number: b.phone == null ? null : e164(b.phone), until: new Date(b.until).toISOString() }))
    }
  }

  /** closes every connection (used on shutdown) and writes the state */
  shutdown () {
    for (const c of [...this.connections.values()]) c.terminate()
    this.saver.flush()
  }
}
