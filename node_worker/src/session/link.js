// The link with WhatsApp: the QR code while pairing, the liveness of the link while connected, and the
// unlinking of the device at logout.
//
// Logout never leaves a linked device behind at WhatsApp: a registered session is unlinked over the
// open socket, or else over a short connection made for that purpose (bounded in time).
import makeWASocket, { DisconnectReason, S_WHATSAPP_NET } from 'baileys'
import QRCode from 'qrcode'
import { LinkMonitor } from '../link-monitor.js'
import { WorkerError } from '../errors.js'
import { PAIRING_ERROR, STATE } from '../states.js'

function withTimeout (promise, ms) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

// Baileys' message tags are a per-socket prefix and a counter: the tag after `tag`.
const nextTag = (tag) => tag.replace(/\d+$/, (n) => String(Number(n) + 1))

const errorOf = (iq) => {
  const error = iq.attrs.type === 'error' && Array.isArray(iq.content) ? iq.content.find((c) => c.tag === 'error') : null
  return error ? `${error.attrs.code} ${error.attrs.text}` : null
}

// The server's error answer to a pairing-code hello, as the WorkerError POST /connect answers: 429
// rate-overlimit (too many codes asked for this number lately; WhatsApp says so, not when it ends), any other
// (400 bad-request: a number WhatsApp will not link by code, not on WhatsApp) 422. Null for a result.
const pairingRefusal = (iq, phone) => {
  const error = errorOf(iq)
  if (!error) return null
  if (error.startsWith('429 ')) {
    return new WorkerError(429, PAIRING_ERROR.PAIRING_RATE_LIMITED,
      `WhatsApp refuses new pairing codes for ${phone} for now (${error}): too many were asked for this number lately.`)
  }
  return new WorkerError(422, PAIRING_ERROR.PAIRING_CODE_REFUSED,
    `WhatsApp refused a pairing code for ${phone} (${error}): check that it is the account's own number, on WhatsApp.`)
}

export class Link {
  constructor (session) {
    this.session = session
    this.unlinking = null // the AbortController of unlinkByConnecting while it runs
  }

  // A new QR (every 20 s until scanned) from the socket of `generation`; false when that socket was
  // retired meanwhile (nothing shown).
  async showQr (qr, generation) {
    const s = this.session
    const image = await QRCode.toDataURL(qr, { margin: 2, scale: 6 })
    if (generation !== s.generation) return false
    s.qr = qr
    s.qrImage = image
    s.log.info('session.qr') // a new QR (every 20 s until scanned) is expected: info, no payload
    s.lifecycle.setState(STATE.QR)
    return true
  }

  // Linking by code: asks the socket of `generation` for a pairing code for s.pairingPhone (once per socket,
  // unless `again`: a new number or a new code asked for by POST /connect) and shows it formatted as the phone
  // shows it, once WhatsApp took it; false when that socket was retired meanwhile, could not ask, or WhatsApp
  // refused (s.pairingRefusal says why, and the socket ends: lifecycle.onClose stops the session).
  async showCode (sock, generation, { again = false } = {}) {
    const s = this.session
    if (s.pairingGeneration === generation && !again) return true
    let code
    let answer
    try {
      // Baileys' requestPairingCode returns its code without waiting for the server's answer to the hello, so
      // a code WhatsApp refused (too many asked for this number, a number it will not link) would be shown as
      // good. The hello's id is the message tag Baileys draws next: one drawn here just before the call gives
      // it (nothing runs in between, and requestPairingCode draws the hello's before its first await).
      const answering = sock.waitForMessage(nextTag(sock.generateMessageTag()), s.settings.connectTimeoutMs)
      answering.catch(() => {}) // a socket closed meanwhile: the failure is handled below
      code = await sock.requestPairingCode(s.pairingPhone.slice(1))
      answer = await answering
    } catch (err) {
      s.log.warn({ err }, 'session.pairing_code_failed')
      return false
    }
    if (generation !== s.generation) return false
    if (!answer) { // as when the hello could not be sent: the socket's next QR ref asks again
      s.log.warn({ timeout_ms: s.settings.connectTimeoutMs }, 'session.pairing_code_unanswered')
      return false
    }
    const refusal = pairingRefusal(answer, s.pairingPhone)
    if (refusal) {
      s.pairingRefusal = refusal
      s.log.warn({ code: refusal.code, whatsapp: errorOf(answer) }, 'session.pairing_code_refused')
      sock.end(Object.assign(new Error(refusal.message), { data: { code: refusal.code } }))
      return false
    }
    s.pairingGeneration = generation
    s.pairingCode = `${code.slice(0, 4)}-${code.slice(4)}`
    s.log.info('session.pairing_code') // the code itself is a secret: never logged
    s.lifecycle.setState(STATE.PAIRING_CODE)
    return true
  }

  // Link liveness while connected: any frame from the server counts; after WA_LINK_PROBE_MS of
  // silence one ping goes out (fire and forget: its answer is a frame like any other), and with no
  // frame WA_LINK_TIMEOUT_MS after it the link is dead: the socket is ended with 408 (timedOut), so
  // onClose schedules the usual reconnect with backoff instead of waiting 35 s for Baileys' keep-alive.
  watchLink (sock, generation) {
    const s = this.session
    s.linkMonitor?.stop()
    const monitor = new LinkMonitor({
      probeAfterMs: s.settings.linkProbeMs,
      timeoutMs: s.settings.linkTimeoutMs,
      isBuffering: () => sock.ev.isBuffering?.() ?? false,
      probe: () => sock.sendNode({
        tag: 'iq',
        attrs: { id: sock.generateMessageTag(), to: S_WHATSAPP_NET, type: 'get', xmlns: 'w:p' },
        content: [{ tag: 'ping', attrs: {} }]
      }),
      onDead: (info) => {
        if (generation !== s.generation || s.closing || s.linkMonitor !== monitor) return
        s.log.warn({ reason: info.reason, last_frame_age_ms: info.last_frame_age_ms, probe_after_ms: s.settings.linkProbeMs,
          timeout_ms: s.settings.linkTimeoutMs }, 'session.link_dead')
        const err = Object.assign(new Error(`link dead: ${info.message}`), { output: { statusCode: DisconnectReason.timedOut } })
        Promise.resolve(sock.end(err)).catch((e) => s.log.debug({ err: e }, 'session.end_failed'))
      }
    })
    s.linkMonitor = monitor
    sock.ws.on('frame', () => monitor.frame())
    monitor.start()
  }

  // Unlinks over the open socket (the remove-companion-device query goes out before it closes).
  async unlinkOver (sock) {
    try {
      await withTimeout(sock.logout('wa-gateway disconnect'), this.session.settings.connectTimeoutMs)
      return true
    } catch (err) {
      this.session.log.warn({ err }, 'session.logout_failed')
      return false
    }
  }

  // The session is registered but its socket is not open (pairing just done, a 515 restart or a
  // reconnect under way, a worker that never connected): connect once, bounded, just to unlink.
  async unlinkByConnecting () {
    const s = this.session
    const abort = new AbortController()
    this.unlinking = abort
    const log = s.baileysLog.child({ purpose: 'unlink' })
    let sock
    try {
      sock = makeWASocket(s.connection.socketConfig(s.store, log))
      const outcome = await this.firstOutcome(sock, abort.signal)
      s.log.info({ outcome }, 'session.unlink_connection')
      if (outcome === 'open') return await this.unlinkOver(sock)
      return outcome === 'not_linked' // the server no longer knows this device: nothing is left there
    } catch (err) {
      s.log.warn({ err }, 'session.logout_failed')
      return false
    } finally {
      this.unlinking = null
      try { sock?.end(undefined) } catch { /* already ended */ }
    }
  }

  // How the connection made to unlink turned out: open, not_linked (401), closed, timeout or aborted.
  async firstOutcome (sock, signal) {
    let timer
    const outcome = await new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.session.settings.connectTimeoutMs)
      signal.addEventListener('abort', () => resolve('aborted'))
      sock.ev.on('connection.update', ({ connection, lastDisconnect }) => {
        if (connection === 'open') resolve('open')
        if (connection === 'close') {
          resolve(lastDisconnect?.error?.output?.statusCode === DisconnectReason.loggedOut ? 'not_linked' : 'closed')
        }
      })
    })
    clearTimeout(timer)
    return outcome
  }
}
