// One WebSocket connection from a client: framing, Noise handshake, binary nodes in and out.
// What a node means is decided by the emulator's handlers (pairing.js, login.js, messaging.js).
import { proto, encodeBinaryNode, decodeBinaryNode } from './wa.js'
import { FrameReader, encodeFrame } from './frame.js'
import { NoiseResponder } from './noise.js'
import { randomId } from './crypto.js'
import { errorFields } from './log.js'

let nextConnectionNumber = 1

export class Connection {
  constructor ({ ws, emulator, remote }) {
    this.id = `c${nextConnectionNumber++}`
    this.ws = ws
    this.emu = emulator
    this.log = emulator.log.child({ conn: this.id })
    this.remote = remote
    this.state = 'handshake' // handshake -> pairing | connected -> closed
    this.reader = new FrameReader()
    this.noise = new NoiseResponder({ staticKeyPair: emulator.serverStatic, certChain: emulator.certChain })
    this.handshakeStep = 0
    this.user = null // User once logged in / paired
    this.device = null // Device once logged in
    this.pendingIqs = new Map() // id -> {resolve, reject, timer}
    this.queue = Promise.resolve()
    this.openedAt = Date.now()
    ws.on('message', (data) => this.onData(data))
    ws.on('close', (code) => this.onClose(code))
    // a WebSocket-level error (a protocol violation, a reset): the connection ends with it, so it is told
    ws.on('error', (err) => this.log.warn('ws.error', errorFields(err)))
  }

  get jid () { return this.device ? this.device.jid : null }
  get isOpen () { return this.state !== 'closed' && this.ws.readyState === 1 }

  onData (data) {
    let frames
    try {
      frames = this.reader.push(Buffer.from(data))
    } catch (err) {
      this.log.warn('frame.invalid', errorFields(err))
      this.terminate()
      return
    }
    for (const frame of frames) {
      // frames are handled strictly in order (Signal sessions and Noise counters depend on it)
      this.queue = this.queue.then(() => this.onFrame(frame)).catch((err) => {
        this.log.error('frame.handler_failed', { ...errorFields(err), stack: err?.stack?.split('\n').slice(0, 4).join(' | ') })
      })
    }
  }

  async onFrame (frame) {
    if (this.silenced) return
    if (this.state === 'closed') {
      // frames that arrived before the close still reached the server: their acknowledgements count
      if (this.handshakeStep < 2 || !this.device || this.undecodable) return
      return this.onLateFrame(frame)
    }
    if (this.handshakeStep < 2) {
      if (this.emu.faults.isBlackholed(this)) {
        // a black hole answers no handshake either; this connection stays mute until the client gives up
        this.silenced = true
        return
      }
      return this.onHandshakeFrame(frame)
    }
    let node
    try {
      node = await decodeBinaryNode(this.noise.decrypt(frame))
    } catch (err) {
      this.log.warn('frame.undecodable', errorFields(err))
      this.terminate()
      return
    }
    if (this.emu.faults.isBlackholed(this)) {
      this.log.debug('blackhole.dropped', { tag: node.tag })
      return
    }
    this.log.trace('node.recv', { tag: node.tag, attrs: node.attrs })
    // answers to iqs the server sent
    if (node.tag === 'iq' && (node.attrs.type === 'result' || node.attrs.type === 'error') && this.pendingIqs.has(node.attrs.id)) {
      const p = this.pendingIqs.get(node.attrs.id)
      this.pendingIqs.delete(node.attrs.id)
      clearTimeout(p.timer)
      p.resolve(node)
      return
    }
    await this.emu.handleNode(this, node)
  }

  /** an <ack> or <receipt> the client sent before its connection closed (anything else is dropped) */
  async onLateFrame (frame) {
    let node
    try {
      node = await decodeBinaryNode(this.noise.decrypt(frame))
    } catch {
      this.undecodable = true
      return
    }
    if (this.emu.faults.isBlackholed(this)) return
    if (node.tag === 'ack' || node.tag === 'receipt') {
      this.log.debug('node.after_close', { tag: node.tag })
      await this.emu.handleNode(this, node)
    }
  }

  async onHandshakeFrame (frame) {
    let msg
    try {
      msg = proto.HandshakeMessage.decode(frame)
    } catch (err) {
      this.log.warn('handshake.undecodable', errorFields(err))
      return this.terminate()
    }
    if (this.handshakeStep === 0) {
      if (!msg.clientHello?.ephemeral) {
        this.log.warn('handshake.no_client_hello')
        return this.terminate()
      }
      const serverHello = this.noise.respondToHello(Buffer.from(msg.clientHello.ephemeral))
      this.emu.handshakes.started++
      this.handshakeStep = 1
      this.sendRaw(Buffer.from(proto.HandshakeMessage.encode({ serverHello }).finish()))
      return
    }
    if (!msg.clientFinish?.static || !msg.clientFinish?.payload) {
      this.log.warn('handshake.no_client_finish')
      return this.terminate()
    }
    let result
    try {
      result = this.noise.processFinish(msg.clientFinish.static, msg.clientFinish.payload)
    } catch (err) {
      this.log.warn('handshake.failed', errorFields(err))
      return this.terminate()
    }
    this.handshakeStep = 2
    this.emu.handshakes.completed++
    this.clientStatic = result.clientStatic
    let payload
    try {
      payload = proto.ClientPayload.decode(result.payload)
    } catch (err) {
      this.log.warn('handshake.bad_payload', errorFields(err))
      return this.terminate()
    }
    await this.emu.handleClientPayload(this, payload)
  }

  sendRaw (payload) {
    if (this.ws.readyState !== 1) return false
    this.ws.send(encodeFrame(payload))
    return true
  }

  /** sends a binary node; returns false when the socket is gone */
  sendNode (node) {
    if (this.state === 'closed' || this.ws.readyState !== 1 || this.handshakeStep < 2) return false
    this.log.trace('node.send', { tag: node.tag, attrs: node.attrs })
    return this.sendRaw(this.noise.encrypt(encodeBinaryNode(node)))
  }

  /** sends an iq to the client and waits for its result */
  query (node, timeoutMs = 10000) {
    const id = node.attrs.id || (node.attrs.id = randomId(6))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIqs.delete(id)
        reject(Object.assign(new Error('client did not answer'), { code: 'client_timeout' }))
      }, timeoutMs)
      this.pendingIqs.set(id, { resolve, reject, timer })
      if (!this.sendNode(node)) {
        clearTimeout(timer)
        this.pendingIqs.delete(id)
        reject(Object.assign(new Error('connection closed'), { code: 'connection_closed' }))
      }
    })
  }

  result (iq, content) {
    return this.sendNode({ tag: 'iq', attrs: { from: 's.whatsapp.net', type: 'result', id: iq.attrs.id }, ...(content ? { content } : {}) })
  }

  errorResult (iq, code, text) {
    return this.sendNode({
      tag: 'iq',
      attrs: { from: 's.whatsapp.net', type: 'error', id: iq.attrs.id },
      content: [{ tag: 'error', attrs: { code: String(code), text } }]
    })
  }

  /** sends <stream:error> with the given attributes/children, then closes */
  streamError (attrs = {}, content) {
    this.sendNode({ tag: 'stream:error', attrs, ...(content ? { content } : {}) })
    this.close()
  }

  /** sends <failure reason=...> (login refused), then closes */
  failure (reason, extra = {}) {
    this.sendNode({ tag: 'failure', attrs: { reason: String(reason), location: 'emu', ...extra } })
    this.close()
  }

  /** orderly close: a short delay lets the last frames leave first */
  close () {
    if (this.state === 'closed') return
    this.logClosing('close')
    this.markClosed()
    setTimeout(() => { try { this.ws.close() } catch { /* already closed */ } }, 20)
  }

  /** abrupt close without any stream end */
  terminate () {
    if (this.state !== 'closed') {
      this.logClosing('terminate')
      this.markClosed()
    }
    try { this.ws.terminate() } catch { /* already gone */ }
  }

  // The server's side ending a connection says where (the caller's frames): a companion that saw its link end
  // (Baileys: 428 Connection Terminated) can be matched to the emulator's reason in the logs.
  logClosing (how) {
    const by = (new Error().stack || '').split('\n').slice(3, 6).map((l) => l.trim().replace(/^at /, '')).join(' < ')
    this.log.info('connection.closing', { how, jid: this.jid, by })
  }

  markClosed () {
    const was = this.state
    this.state = 'closed'
    for (const [, p] of this.pendingIqs) {
      clearTimeout(p.timer)
      p.reject(Object.assign(new Error('connection closed'), { code: 'connection_closed' }))
    }
    this.pendingIqs.clear()
    if (was !== 'closed') this.emu.onConnectionClosed(this)
  }

  /** the WebSocket closed (`code`: the close frame's, 1006 when the TCP connection ended without one) */
  onClose (code) {
    if (this.state !== 'closed') {
      this.log.info('connection.closed_by_client', { jid: this.jid, ws_code: code ?? null })
      this.markClosed()
    }
  }

  describe () {
    return { id: this.id, jid: this.jid, state: this.silenced && this.state !== 'closed' ? 'blackholed' : this.state }
  }
}
