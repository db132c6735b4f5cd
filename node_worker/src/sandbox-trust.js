// Which server the worker trusts.
//
// Baileys authenticates the server during the Noise handshake: the certificate chain must lead to
// WA_CERT_DETAILS.PUBLIC_KEY and its leaf must be the server's Noise static key. rc14 does not really
// check that; node_worker/patches/baileys+7.0.0-rc14+001+server-auth.patch (applied by `npm ci`) makes it strict, and
// the worker refuses to start without it rather than trust any server.
//
// The one place that can make the worker trust a server other than WhatsApp is the sandbox emulator:
// WA_CERT_DETAILS is an exported, mutable object, and replacing PUBLIC_KEY with the emulator's test
// root is how a test CA is trusted. It is off unless WA_SANDBOX_ROOT_KEY is set, which settings.js
// refuses (exit 78) outside the sandbox (WA_SANDBOX=true) or for a server URL that is not loopback, and
// it is logged loudly when it is on.
//
// The keys of contacts and of the phone are trusted only when signed (issue 21): libsignal+6.0.0.patch
// verifies a bundle's signed pre-key signature before a session is built from it, and
// baileys+7.0.0-rc14+005+adv-hmac-constant-time.patch compares the pairing HMAC in constant time. The
// worker refuses to start without them (assertStrictKeyChecks).
import { readFileSync } from 'node:fs'
import https from 'node:https'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import * as baileys from 'baileys'
import { Agent as UndiciAgent, Dispatcher } from 'undici'

const { Curve, WA_CERT_DETAILS } = baileys

/** throws unless the installed Baileys carries our strict server-authentication patch */
export function assertStrictServerAuth () {
  const keys = Curve.generateKeyPair()
  const message = Buffer.from('wa-gateway server-auth self-check')
  const forged = Buffer.from(Curve.sign(keys.private, message))
  forged[0] ^= 0x01
  if (typeof baileys.verifyServerCertChain !== 'function' || Curve.verify(keys.public, message, forged)) {
    throw new Error('Baileys is installed without node_worker/patches (strict server authentication); ' +
      'reinstall with `npm ci` in node_worker')
  }
}

const source = (path, pkg) => readFileSync(fileURLToPath(new URL(path, import.meta.resolve(pkg))), 'utf8')

/** throws unless the installed libsignal verifies signed pre-keys and Baileys compares the ADV HMAC in constant time */
export function assertStrictKeyChecks () {
  if (!source('./src/session_builder.js', 'libsignal').includes('throw new errors.SessionError("Invalid signed pre-key signature")')) {
    throw new Error('libsignal is installed without node_worker/patches (signed pre-key signatures); ' +
      'reinstall with `npm ci` in node_worker')
  }
  if (!source('./Utils/validate-connection.js', 'baileys').includes('timingSafeEqual(Buffer.from(hmac), advSign)')) {
    throw new Error('Baileys is installed without node_worker/patches (ADV HMAC in constant time); ' +
      'reinstall with `npm ci` in node_worker')
  }
}

export function applySandboxTrust (rootKeyB64, logger) {
  assertStrictServerAuth()
  assertStrictKeyChecks()
  if (!rootKeyB64) return false
  const key = Buffer.from(rootKeyB64, 'base64')
  if (key.length !== WA_CERT_DETAILS.PUBLIC_KEY.length) {
    throw new Error(`WA_SANDBOX_ROOT_KEY must be a base64 ${WA_CERT_DETAILS.PUBLIC_KEY.length}-byte key`)
  }
  WA_CERT_DETAILS.PUBLIC_KEY = key
  logger.warn({ root_key_prefix: rootKeyB64.slice(0, 8) },
    'sandbox.trust_enabled: this worker trusts a TEST server root, not WhatsApp. Never use this in production.')
  return true
}

// The emulator's media host has a certificate from the emulator's own test CA (WA_SANDBOX_MEDIA_CA, which
// settings.js takes only in the sandbox). The agents that trust it besides the public roots: `agent` for
// Baileys' uploads (node https, the socket config's fetchAgent), `dispatcher` for its downloads (fetch,
// options.dispatcher). One pair per CA, kept: their pools outlive a reconnect.
//
// History-sync blobs name no host: Baileys fetches them from WhatsApp's default media host,
// https://mmg.whatsapp.net{directPath} (Utils/history.js). In the sandbox that host is the emulator's media host,
// which the worker learns from media_conn (session/history.js sets `route.origin`); until then, and for every
// other host, the dispatcher goes where it is asked.
export const DEFAULT_MEDIA_HOST = 'mmg.whatsapp.net'

class SandboxMediaRoute extends Dispatcher {
  constructor (agent) {
    super()
    this.agent = agent
    this.origin = null // https://<the emulator's media host>, once known
  }

  dispatch (opts, handler) {
    const to = this.origin && new URL(opts.origin).hostname === DEFAULT_MEDIA_HOST ? { ...opts, origin: this.origin } : opts
    return this.agent.dispatch(to, handler)
  }

  close () { return this.agent.close() }
  destroy (err) { return this.agent.destroy(err) }
}

const mediaAgents = new Map()
export function sandboxMediaAgents (sandboxMediaCa) {
  if (!sandboxMediaCa) return null
  if (!mediaAgents.has(sandboxMediaCa.pem)) {
    const ca = [...tls.rootCertificates, sandboxMediaCa.pem]
    const route = new SandboxMediaRoute(new UndiciAgent({ connect: { ca } }))
    mediaAgents.set(sandboxMediaCa.pem, { agent: new https.Agent({ ca, keepAlive: true }), dispatcher: route, route })
  }
  return mediaAgents.get(sandboxMediaCa.pem)
}
