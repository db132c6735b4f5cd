// The proxy a session's WhatsApp connection goes through: WA_PROXY_URL for the whole worker, or the
// account's own `proxy` in accounts.json (written by the gateway from PATCH/POST /accounts: a URL, or
// "direct" for no proxy although WA_PROXY_URL is set). Read at each socket open, so a changed proxy
// takes effect at the account's next connection.
//
// `http://[user:pass@]host:port` tunnels with HTTP CONNECT (https-proxy-agent); `socks5://` and
// `socks5h://` (the proxy resolves the name) go through SOCKS5 with RFC 1929 user/password auth
// (socks-proxy-agent). The one agent carries the websocket (Baileys' `agent`) and its media uploads
// (`fetchAgent`, passed to node's http(s).request); Baileys' downloads (media, history-sync and app-state
// blobs, link previews) use the global fetch with `options.dispatcher`, an undici dispatcher through the same
// proxy. The URL's credentials never reach a log line: only `redacted` (scheme, `***@` when there are
// credentials, host, port) is shown.
import { lookup } from 'node:dns/promises'
import fs from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import { HttpsProxyAgent } from 'https-proxy-agent'
import { SocksClient } from 'socks'
import { SocksProxyAgent } from 'socks-proxy-agent'
import { Agent as UndiciAgent, ProxyAgent } from 'undici'

export const DIRECT = 'direct'
const SCHEMES = ['http:', 'socks5:', 'socks5h:']

export class ProxyUrlError extends Error {}

// host[:port] of the raw URL, without its user info: WHATWG URL drops a default port (http://h:80),
// so "is there a port" is read from the text itself.
const authority = (raw) => {
  const rest = raw.slice(raw.indexOf('//') + 2)
  const hostPort = rest.split(/[/?#]/)[0]
  return hostPort.slice(hostPort.lastIndexOf('@') + 1)
}

/**
 * Parses and checks a proxy URL: { url, scheme, host, port, redacted }. Throws ProxyUrlError with a
 * message that never repeats the value (it may carry a password).
 */
export function parseProxyUrl (raw) {
  const text = String(raw ?? '').trim()
  const expected = 'expected http://[user:pass@]host:port, socks5://[user:pass@]host:port or socks5h://...'
  let url
  try {
    url = new URL(text)
  } catch {
    throw new ProxyUrlError(`not a valid URL (${expected})`)
  }
  const scheme = url.protocol.replace(/:$/, '')
  // the scheme is named only when it is one (`https`, `socks4`): `user:pass@host` would read as scheme `user`
  if (!text.toLowerCase().startsWith(`${scheme}://`)) throw new ProxyUrlError(`no scheme (${expected})`)
  if (!SCHEMES.includes(url.protocol)) throw new ProxyUrlError(`unsupported scheme ${JSON.stringify(scheme.slice(0, 10))} (${expected})`)
  if (!url.hostname) throw new ProxyUrlError(`no host (${expected})`)
  const port = /:(\d{1,5})$/.exec(authority(text))
  if (!port || Number(port[1]) < 1 || Number(port[1]) > 65535) throw new ProxyUrlError(`no valid port (${expected})`)
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) throw new ProxyUrlError(`a proxy URL has no path, query or fragment (${expected})`)
  const host = url.hostname
  const credentials = url.username !== '' || url.password !== ''
  const redacted = `${scheme}://${credentials ? '***@' : ''}${host}:${Number(port[1])}`
  return { url: text, scheme, host, port: Number(port[1]), redacted }
}

/**
 * https-proxy-agent answers a CONNECT that the proxy refused (403, 407, 502) with a fake socket that replays
 * the proxy's answer as the server's: ws then emits `unexpected-response`, which Baileys forwards but never
 * handles, so the connection would hang without an error. Here the refusal is an error of the connection
 * (code ERR_PROXY_REFUSED, the status in the message, nothing of the URL), which Baileys ends the socket on.
 */
class ConnectProxyAgent extends HttpsProxyAgent {
  async connect (req, opts) {
    let status = null
    const onConnect = (connect) => { status = connect.statusCode }
    req.on('proxyConnect', onConnect) // this request's own answer (the agent's event is every request's)
    let socket
    try {
      socket = await super.connect(req, opts)
    } finally {
      req.off('proxyConnect', onConnect)
    }
    if (status !== null && status !== 200) {
      socket.destroy()
      throw Object.assign(new Error(`the proxy refused the tunnel: HTTP ${status} to CONNECT`), { code: 'ERR_PROXY_REFUSED' })
    }
    return socket
  }
}

/** The http.Agent for a parsed proxy: HTTP CONNECT or SOCKS5. */
export function makeAgent (proxy) {
  return proxy.scheme === 'http' ? new ConnectProxyAgent(proxy.url) : new SocksProxyAgent(proxy.url)
}

/**
 * The undici dispatcher for Baileys' fetch calls: undici's ProxyAgent (CONNECT, Basic credentials from the
 * URL) or an Agent whose connector opens each connection through SOCKS5 (RFC 1929 credentials) and then TLS
 * for https. One per proxy URL, kept: its connection pool outlives a reconnect.
 */
const dispatchers = new Map()
export function makeDispatcher (proxy) {
  if (!dispatchers.has(proxy.url)) {
    dispatchers.set(proxy.url, proxy.scheme === 'http'
      ? new ProxyAgent({ uri: proxy.url })
      : new UndiciAgent({ connect: socksConnector(proxy) }))
  }
  return dispatchers.get(proxy.url)
}

const socksConnector = (proxy) => {
  const url = new URL(proxy.url)
  const via = { host: url.hostname.replace(/^\[|\]$/g, ''), port: proxy.port, type: 5,
    userId: decodeURIComponent(url.username) || undefined, password: decodeURIComponent(url.password) || undefined }
  return ({ hostname, port, protocol, servername }, callback) => {
    const https = protocol === 'https:'
    const host = hostname.replace(/^\[|\]$/g, '')
    // socks5: the name is resolved here; socks5h: by the proxy
    const destination = proxy.scheme === 'socks5' ? lookup(host).then(({ address }) => address) : Promise.resolve(host)
    destination
      .then((target) => SocksClient.createConnection({
        proxy: via, command: 'connect', destination: { host: target, port: Number(port) || (https ? 443 : 80) }
      }))
      .then(({ socket }) => {
        if (!https) return callback(null, socket)
        const secure = tls.connect({ socket, servername: servername || host, ALPNProtocols: ['http/1.1'] })
        secure.once('secureConnect', () => callback(null, secure))
        secure.once('error', (err) => callback(err, null))
      }, (err) => callback(err, null))
  }
}

/** The account's own setting from accounts.json: a URL, DIRECT, or undefined (use WA_PROXY_URL). */
export function accountProxySetting (dataDir, name) {
  let entry
  try {
    entry = JSON.parse(fs.readFileSync(path.join(dataDir, 'accounts.json'), 'utf8'))?.accounts?.[name]
  } catch {
    return undefined // absent or unreadable: accounts.js reports the registry itself
  }
  const value = entry?.proxy
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined
}

/**
 * The proxy of the session's next connection: { redacted, agent, dispatcher } or null (a direct connection).
 * `settings.proxy` is WA_PROXY_URL, parsed (settings.js); the account's own setting wins over it.
 * A bad account setting throws: the account must not connect around the proxy it was given.
 */
export function connectionProxy (settings, name) {
  const own = accountProxySetting(settings.dataDir, name)
  let proxy = settings.proxy ?? null
  if (own === DIRECT) proxy = null
  else if (own !== undefined) {
    try {
      proxy = parseProxyUrl(own)
    } catch (err) {
      throw new ProxyUrlError(`the account's proxy_url is invalid: ${err.message}`)
    }
  }
  return proxy ? { redacted: proxy.redacted, agent: makeAgent(proxy), dispatcher: makeDispatcher(proxy) } : null
}
