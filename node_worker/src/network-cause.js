// Why a connection to WhatsApp could not be made, in words an operator can act on. Baileys reports a
// failed connect as a Boom error whose `data` is the websocket's own error (Socket/socket.js,
// mapWebSocketError) and whose status code folds every system error into 408, which reads like an HTTP
// timeout; the system error's code (ENOTFOUND, ECONNREFUSED, a TLS code, ...) says what really happened.
// Only failures to *reach* the server are classified: a connection that opened and was later closed, or a
// server that answered and refused the session, is no question of reachability.
//
// The causes (states.js UNREACHABLE_CAUSE):
//   dns: the server's name did not resolve; refused: nothing listens at the address (or a firewall
//   rejects); tls: the TLS handshake failed (certificate, protocol, an intercepting middlebox); proxy: the
//   configured proxy could not be reached, refused, or asked for credentials; timeout: no answer within the
//   connect timeout (a firewall that drops, a dead route); network: any other network failure (no route,
//   a reset before the handshake, an HTTP answer instead of a websocket).
import { UNREACHABLE_CAUSE as CAUSE } from './states.js'

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA'])
const NETWORK_CODES = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ECONNRESET', 'EPIPE',
  'ECONNABORTED', 'EADDRNOTAVAIL'])
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT'])
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$|ERR_OSSL_|HOSTNAME_MISMATCH)/
const UNEXPECTED_RESPONSE = /Unexpected server response: (\d+)/
// What the proxy agents (https-proxy-agent, socks-proxy-agent / socks) say when the proxy itself fails.
const PROXY_MESSAGE = /socks|proxy/i

const HINT = {
  [CAUSE.DNS]: 'check DNS on this host (or set WA_PROXY_URL when only a proxy can reach the internet)',
  [CAUSE.REFUSED]: 'check outbound access to WhatsApp (a firewall, or WA_PROXY_URL on a network that needs a proxy)',
  [CAUSE.TLS]: 'a TLS-intercepting firewall or a wrong clock on this host is the usual cause',
  [CAUSE.PROXY]: 'check WA_PROXY_URL (or the account\'s proxy_url): host, port and credentials',
  [CAUSE.TIMEOUT]: 'outbound traffic to WhatsApp is dropped (a firewall) or the network is down',
  [CAUSE.NETWORK]: 'check this host\'s network and outbound access to WhatsApp'
}

// The system error inside a Baileys error (Boom -> data), or the error itself.
const inner = (error) => (error?.data && typeof error.data === 'object' && (error.data.code || error.data.message) ? error.data : error)

const describe = (err) => {
  const code = typeof err?.code === 'string' ? err.code : null
  const message = String(err?.message ?? err ?? 'connection failed').slice(0, 200)
  return code && !message.includes(code) ? `${code}: ${message}` : message
}

function baseCause (err) {
  const code = typeof err?.code === 'string' ? err.code : ''
  const message = String(err?.message ?? '')
  if (DNS_CODES.has(code)) return CAUSE.DNS
  if (code === 'ECONNREFUSED') return CAUSE.REFUSED
  if (TLS_CODE.test(code) || /certificate|ssl|tls/i.test(message)) return CAUSE.TLS
  if (TIMEOUT_CODES.has(code) || /timed? ?out/i.test(message)) return CAUSE.TIMEOUT
  if (NETWORK_CODES.has(code) || UNEXPECTED_RESPONSE.test(message) || /socket hang up/i.test(message)) return CAUSE.NETWORK
  if (PROXY_MESSAGE.test(message)) return CAUSE.PROXY
  return null
}

/**
 * The cause of a failed connect, or null when the error is no failure to reach the server.
 * `proxied`: the connection went through a proxy; the detail keeps the underlying error.
 * @returns {{cause: string, detail: string, hint: string} | null}
 */
export function classifyConnectFailure (error, { proxied = false } = {}) {
  const err = inner(error)
  const cause = baseCause(err)
  if (cause === null) return null
  const detail = describe(err)
  // Through a proxy, the proxy is the only address this host connects to: a failure to reach is the
  // proxy's (its own refusal, a 407, or the proxy failing to reach WhatsApp). TLS runs end to end through
  // the tunnel, so a TLS failure stays one.
  const final = (proxied && cause !== CAUSE.TLS) || /: 407\b/.test(detail) ? CAUSE.PROXY : cause
  return { cause: final, detail, hint: HINT[final] }
}
