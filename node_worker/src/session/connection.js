// The Baileys socket of the session: its configuration (with the durability hooks), its opening, its
// events, its end. Every socket has a generation number; events of an older one are ignored, so a
// retired socket never writes into a store that was closed or deleted after it.
import makeWASocket, { Browsers, makeCacheableSignalKeyStore } from 'baileys'
import { makeDurableSignalRepository } from '../decrypt-cache.js'
import { jidToPhone } from '../phone.js'
import { connectionProxy } from '../proxy.js'
import { sandboxMediaAgents } from '../sandbox-trust.js'
import { STATE } from '../states.js'

// The close code of an attempt that got an HTTP answer instead of a websocket: none of Baileys'
// DisconnectReason codes, so it is handled as a failure to reach (502: a bad gateway on the way).
const HTTP_ANSWER_CODE = 502

export class Connection {
  constructor (session) {
    this.session = session
  }

  socketConfig (store, logger) {
    const s = this.session
    // WA_PROXY_URL or the account's own (src/proxy.js), read at each socket: { redacted, agent } or null
    s.proxy = connectionProxy(s.settings, s.account)
    // the sandbox only (WA_SANDBOX_MEDIA_CA): media uploads and downloads trust the emulator's media CA too.
    // Through a proxy the proxy's agents win (the sandbox's emulator is on loopback, never behind one).
    const media = s.proxy ? null : sandboxMediaAgents(s.settings.sandboxMediaCa)
    const fetchAgent = s.proxy?.agent ?? media?.agent
    const dispatcher = s.proxy?.dispatcher ?? media?.dispatcher
    s.fetchOptions = dispatcher ? { dispatcher } : {} // the history hook downloads as Baileys does (history.js)
    s.mediaRoute = media?.route ?? null // the sandbox: where history blobs' default host goes (sandbox-trust.js)
    return {
      waWebSocketUrl: s.settings.serverUrl,
      // the websocket, and media uploads (Baileys passes fetchAgent to http(s).request), through the proxy
      agent: s.proxy?.agent,
      fetchAgent,
      // Baileys' fetch calls (media, history-sync and app-state downloads) take an undici dispatcher
      ...(dispatcher ? { options: { dispatcher } } : {}),
      auth: { creds: store.state.creds, keys: makeCacheableSignalKeyStore(store.state.keys, logger) },
      logger,
      browser: Browsers.ubuntu('wa-gateway'),
      printQRInTerminal: false,
      markOnlineOnConnect: false,
      syncFullHistory: false,
      // Every history sync the phone sends is processed (Baileys' default skips FULL ones) and journaled as
      // `history.sync` events before its receipt (history.js, through beforeMessageReceipt).
      shouldSyncHistoryMessage: () => true,
      qrTimeout: s.settings.qrTimeoutMs,
      keepAliveIntervalMs: s.settings.keepAliveMs,
      connectTimeoutMs: s.settings.connectTimeoutMs,
      defaultQueryTimeoutMs: s.settings.connectTimeoutMs,
      // A recipient device that could not decrypt sends a retry receipt; Baileys resends what this
      // returns (its own recent-message cache only covers the socket that sent the message).
      getMessage: async (key) => s.sender.storedMessage(key),
      // A group send's participants (relayMessage's fan-out) from the worker's bounded cache, refreshed on group
      // events, instead of a w:g2 query per send (session/group-metadata.js); undefined: Baileys asks the server.
      cachedGroupMetadata: async (jid) => s.groups.metadata.get(jid),
      // Decryption results on disk before the key change that produced them (src/decrypt-cache.js).
      makeSignalRepository: makeDurableSignalRepository(() => s.decrypted),
      // Durable before acknowledged (patches/baileys+7.0.0-rc14+002+durable-before-receipt.patch):
      // a decrypted message and a receipt are in the event journal before WhatsApp hears of them.
      beforeMessageReceipt: (msg, node) => s.inbound.onDecrypted(msg, node),
      // (a contact's receipt: statuses of our messages; our own phone's read-self: a chat it read, inbound.js)
      beforeReceiptAck: async (node) => { await s.statuses.onReceiptNode(node); await s.inbound.onReceiptNode(node) },
      // patches/*006*: a group's change (w:gp2 notification) is a journal event before its ack (group-events.js)
      beforeNotificationAck: (node) => s.groupEvents.onNotificationNode(node),
      // patches/*004*: an <unavailable> stub's key is in the session store before its ack (placeholders.js)
      beforePlaceholderAck: (msg, node) => s.placeholders.remember(msg, node)
    }
  }

  // Call only from inside a lifecycle operation (serial.js).
  async openSocket () {
    const s = this.session
    this.clearTimers()
    this.endSocket()
    const generation = ++s.generation
    s.socketOpened = false
    // An unreachable server stays the state while the next attempt runs (it changes once one gets through).
    if (s.state !== STATE.WHATSAPP_UNREACHABLE) s.lifecycle.setState(STATE.CONNECTING)
    const store = await s.stores.openStore()
    if (s.closing) return
    // Sessions in PostgreSQL: still the owner? (a read; a lost lease fences and throws not_owner)
    if (s.pg) await s.fencing.assertOwner()
    if (s.closing || generation !== s.generation || s.state === STATE.FENCED) return
    // A pairing code asked for on an earlier socket and never completed: Baileys set creds.me to the bare
    // number, so it would log in as that device instead of registering: start this socket unlinked again.
    const creds = store.state.creds
    if (creds.pairingCode && !creds.registered) { delete creds.me; delete creds.pairingCode }
    const sock = makeWASocket(this.socketConfig(store, s.baileysLog))
    s.sock = sock
    const live = () => generation === s.generation && !s.closing
    sock.ev.process((events) => this.onEvents({ sock, store, generation }, events))
    s.statuses.watchAcks(sock, live)
    s.placeholders.attach(sock, live)
    sock.ws.on('unexpected-response', (req, res) => this.onHttpAnswer(sock, live, res))
  }

  // The address answered plain HTTP instead of opening the websocket (a proxy's 407, a captive portal, a
  // wrong URL). Baileys listens for this event, so ws does not fail the connection on it and the attempt
  // would only end at the handshake timeout: end it now. Its HTTP status stays in the message, never as
  // the close code: a 401 or 403 from a proxy must not read as WhatsApp's logout or ban (lifecycle.js).
  onHttpAnswer (sock, live, res) {
    res.resume()
    if (!live()) return
    const message = `Unexpected server response: ${res.statusCode}`
    const data = { code: 'EUNEXPECTEDRESPONSE', message }
    sock.end(Object.assign(new Error(message), { output: { statusCode: HTTP_ANSWER_CODE }, data }))
  }

  async onEvents ({ sock, store, generation }, events) {
    const s = this.session
    const live = () => generation === s.generation && !s.closing
    if (!live()) return
    try {
      if (events['creds.update']) await store.saveCreds()
      if (events['connection.update'] && live()) await this.onConnectionUpdate(sock, generation, events['connection.update'])
      if (events['messages.upsert'] && live()) s.inbound.onUpsert(events['messages.upsert'])
      if (events['messages.update'] && live()) s.statuses.onMessagesUpdate(events['messages.update'])
      if (events['presence.update'] && live()) s.inbound.onPresence(events['presence.update'])
      // journaled before this handler returns (contacts.js, history.js)
      if (events['messaging-history.set'] && live()) await s.history.onSet(events['messaging-history.set'])
      if (live()) await s.contacts.onEvents(events)
      // a group changed: the metadata a send relays with is asked for again (group-metadata.js)
      // (a full metadata, as groupFetchAllParticipating and a create give, is kept; a partial change is forgotten)
      for (const name of ['groups.update', 'groups.upsert']) for (const g of events[name] ?? []) s.groups.metadata.refresh(g)
      if (events['group-participants.update']) s.groups.metadata.forget(events['group-participants.update'].id)
    } catch (err) {
      // A socket that was just retired may still try to save into its (now closed) store.
      if (live()) s.log.error({ err }, 'session.event_handler_failed')
      else s.log.debug({ err }, 'session.retired_socket_event_dropped')
    }
  }

  async onConnectionUpdate (sock, generation, update) {
    const s = this.session
    const { connection, lastDisconnect, qr } = update
    if (qr) s.socketOpened = true // the server answered: whatever ends this socket, it was reachable
    // a new QR (the socket waits to be linked): shown, or, linking by code, the code asked for once per socket
    if (qr && !(await (s.pairingPhone ? s.link.showCode(sock, generation) : s.link.showQr(qr, generation)))) return
    if (connection === 'open') {
      s.socketOpened = true
      s.me = sock.user ? { id: sock.user.id, name: sock.user.name ?? sock.user.verifiedName ?? null } : null
      s.lastError = null
      s.lifecycle.setState(STATE.CONNECTED, { phone_number: s.me ? jidToPhone(s.me.id) : null })
      s.link.watchLink(sock, generation)
      s.stableTimer = setTimeout(() => {
        s.stableTimer = null
        s.backoff.reset()
      }, s.settings.reconnectStableMs)
    }
    if (connection === 'close') {
      await s.serial.run('close', async () => {
        if (generation !== s.generation || s.closing) return
        await s.lifecycle.onClose(lastDisconnect?.error)
      })
    }
  }

  clearTimers () {
    const s = this.session
    s.linkMonitor?.stop()
    s.linkMonitor = null
    if (s.reconnectTimer) clearTimeout(s.reconnectTimer)
    if (s.stableTimer) clearTimeout(s.stableTimer)
    s.reconnectTimer = null
    s.reconnectAt = null
    s.stableTimer = null
  }

  endSocket () {
    const s = this.session
    const sock = s.sock
    s.sock = null
    if (!sock) return
    s.generation += 1
    try {
      sock.end(undefined)
    } catch (err) {
      s.log.debug({ err }, 'session.end_failed')
    }
  }
}
