// The emulator's media host (WhatsApp's mmg.whatsapp.net and its upload hosts): an HTTPS server, with
// its own test CA (media-tls.js), that
//   * answers Baileys' `<iq xmlns="w:m" type="set"><media_conn/></iq>` with an upload `auth` token, its
//     `ttl` and a `<host hostname="HOST:PORT">` naming itself (Baileys builds `https://${hostname}...`
//     for uploads, and takes the first host for the URLs of re-uploaded media);
//   * takes uploads `POST /mms/{image|video|audio|document|...}/{base64url fileEncSha256}?auth=&token=`,
//     exactly what Baileys' getWAUploadToServer sends: the auth must be one it handed out and not
//     expired, the token must be the path's, and the body's sha256 must be that token;
//   * serves downloads `GET {directPath}` (media-store.js: 200, 403 bad signature, 404, 410 expired),
//     single byte ranges included (Baileys' downloadEncryptedContent sends `Range` for partial reads).
import https from 'node:https'
import { createHash, randomBytes } from 'node:crypto'
import { mediaTls } from './media-tls.js'
import { uploadToken } from './media-crypto.js'
import { errorFields } from './log.js'

const MEDIA_CONN_TTL = 300 // seconds Baileys may reuse a media_conn answer
const AUTH_TTL = 21600 // seconds an upload auth token is accepted (WhatsApp's auth_ttl)
const UPLOAD_KINDS = new Set(['image', 'video', 'audio', 'document', 'md-app-state', 'md-msg-hist', 'product', 'biz-cover-photo'])

const json = (res, status, body) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** a single `bytes=a-b` / `bytes=a-` range of a file of `size` bytes, or null (whole file) */
const parseRange = (header, size) => {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header || '')
  if (!m) return null
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  return start <= end ? { start, end } : null
}

export class MediaServer {
  /**
   * @param {{ emu, store: import('./media-store.js').MediaStore, tlsDir: string|null, host: string, publicHost?: string, maxUploadBytes: number }} opts
   */
  constructor ({ emu, store, tlsDir, host, publicHost, maxUploadBytes }) {
    this.emu = emu
    this.log = emu.log.child({ component: 'media' })
    this.store = store
    this.tlsDir = tlsDir
    this.host = host
    this.publicHost = publicHost || (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host)
    this.maxUploadBytes = maxUploadBytes
    this.auths = new Map() // auth token -> expiry (ms)
    this.uploads = 0
    this.downloads = 0
  }

  /** starts the HTTPS listener on `port` (0 = any); resolves with the port */
  async start (port) {
    const tls = mediaTls(this.tlsDir, this.publicHost)
    this.ca = tls.ca
    this.caFile = tls.caFile
    this.server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      this.handle(req, res).catch((err) => {
        this.log.error('media.request_failed', errorFields(err))
        if (!res.headersSent) json(res, 500, { error: 'internal' })
        else res.destroy()
      })
    })
    await new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, this.host, () => { this.server.off('error', reject); resolve() })
    })
    this.port = this.server.address().port
    return this.port
  }

  stop () {
    if (!this.server) return Promise.resolve()
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections?.()
    })
  }

  /** the host name media_conn hands out, and the origin of every media URL */
  get hostname () { return `${this.publicHost}:${this.port}` }
  get origin () { return `https://${this.hostname}` }

  /** `<iq xmlns="w:m"><media_conn/>`: true when handled */
  handleIq (conn, iq) {
    if (iq.attrs.xmlns !== 'w:m' || !Array.isArray(iq.content) || iq.content[0]?.tag !== 'media_conn') return false
    const auth = this.issueAuth()
    conn.result(iq, [{
      tag: 'media_conn',
      attrs: { auth, ttl: String(MEDIA_CONN_TTL), auth_ttl: String(AUTH_TTL), max_buckets: '12' },
      content: [{ tag: 'host', attrs: { hostname: this.hostname, maxContentLengthBytes: String(this.maxUploadBytes) } }]
    }])
    conn.log.info('media.conn', { host: this.hostname })
    return true
  }

  issueAuth () {
    const now = Date.now()
    for (const [a, until] of this.auths) if (until <= now) this.auths.delete(a)
    while (this.auths.size >= 1000) this.auths.delete(this.auths.keys().next().value)
    const auth = randomBytes(48).toString('base64') // base64 with + / =: Baileys URI-encodes it
    this.auths.set(auth, now + AUTH_TTL * 1000)
    return auth
  }

  authValid (auth) {
    const until = auth && this.auths.get(auth)
    return !!until && until > Date.now()
  }

  async handle (req, res) {
    const url = new URL(req.url, this.origin)
    const upload = /^\/mms\/([a-z-]+)\/([A-Za-z0-9_-]+)$/.exec(url.pathname)
    if (req.method === 'POST' && upload) return this.upload(req, res, url, upload[1], upload[2])
    if ((req.method === 'GET' || req.method === 'HEAD') && this.emu.pictures?.owns(url)) return this.emu.pictures.serve(req, res, url) // profile-pictures.js
    if ((req.method === 'GET' || req.method === 'HEAD') && url.pathname.startsWith('/v/')) return this.download(req, res, url)
    json(res, 404, { error: 'not_found' })
  }

  async upload (req, res, url, kind, token) {
    if (!UPLOAD_KINDS.has(kind)) return json(res, 404, { error: 'unknown_media_type' })
    if (!this.authValid(url.searchParams.get('auth'))) {
      req.resume()
      return json(res, 401, { error: 'auth_invalid' })
    }
    if (url.searchParams.get('token') !== token) {
      req.resume()
      return json(res, 400, { error: 'token_mismatch' })
    }
    const body = await this.readBody(req)
    if (!body) return json(res, 413, { error: 'too_large', max_bytes: this.maxUploadBytes })
    const sha = createHash('sha256').update(body).digest()
    if (uploadToken(sha) !== token) {
      this.log.warn('media.upload_hash_mismatch', { kind, bytes: body.length })
      return json(res, 400, { error: 'hash_mismatch' })
    }
    const directPath = this.store.put(body, kind, sha.toString('hex'))
    this.uploads++
    this.log.info('media.uploaded', { kind, bytes: body.length })
    json(res, 200, { url: `${this.origin}${directPath}&mms3=true`, direct_path: directPath })
  }

  /** the request body, or null beyond maxUploadBytes */
  async readBody (req) {
    const chunks = []
    let n = 0
    for await (const c of req) {
      n += c.length
      if (n > this.maxUploadBytes) {
        req.destroy()
        return null
      }
      chunks.push(c)
    }
    return Buffer.concat(chunks)
  }

  download (req, res, url) {
    const got = this.store.get(url.pathname + url.search)
    if (got.status !== 200) {
      this.log.info('media.download_refused', { status: got.status })
      return json(res, got.status, { error: got.status === 410 ? 'expired' : got.status === 403 ? 'bad_signature' : 'not_found' })
    }
    this.downloads++
    const size = got.bytes.length
    const range = parseRange(req.headers.range, size)
    const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' }
    if (range) {
      const part = got.bytes.subarray(range.start, range.end + 1)
      res.writeHead(206, { ...headers, 'content-length': part.length, 'content-range': `bytes ${range.start}-${range.end}/${size}` })
      return res.end(req.method === 'HEAD' ? undefined : part)
    }
    res.writeHead(200, { ...headers, 'content-length': size })
    res.end(req.method === 'HEAD' ? undefined : got.bytes)
  }

  describe () {
    return { host: this.hostname, ca_file: this.caFile, uploads: this.uploads, downloads: this.downloads, ...this.store.describe() }
  }
}
