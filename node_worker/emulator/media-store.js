// The media server's storage: encrypted blobs, content-addressed by fileEncSha256 (hex) under
// `<dir>/blobs/`, and the direct paths that name them (a blob uploaded twice keeps one file and gets two
// paths, as WhatsApp gives every upload its own URL). Each path expires (`oe`, as in WhatsApp's CDN URLs)
// and then answers 410, an unknown or evicted one 404. Bounded in bytes and in paths: the oldest paths
// are evicted first, a blob with no path left is deleted. Also keeps the phones' own plaintext copies of
// media (`<dir>/held/`, by sha256), which a media retry re-uploads (media-retry.js).
// With no dir (no state file) everything is kept in memory.
import fs from 'node:fs'
import path from 'node:path'
import { createHmac, randomBytes, randomInt } from 'node:crypto'
import { writeFileAtomic } from './certs.js'

// the CDN object class of WhatsApp's direct paths, per media kind (`/v/t62.<class>/...`)
const PATH_CLASS = { image: '7118-24', sticker: '15575-24', video: '7161-24', audio: '7114-24', document: '7119-24', 'md-msg-hist': '36145-24' }
const MAX_HELD = 500 // plaintext copies and holdings the phones keep
const digits = (n) => Array.from({ length: n }, (_, i) => (i === 0 ? randomInt(1, 10) : randomInt(0, 10))).join('')

export class MediaStore {
  /**
   * @param {{ dir: string|null, log, maxBytes: number, maxPaths?: number, expirySeconds: number }} opts
   */
  constructor ({ dir, log, maxBytes, maxPaths = 5000, expirySeconds }) {
    this.dir = dir
    this.log = log
    this.maxBytes = maxBytes
    this.maxPaths = maxPaths
    this.expirySeconds = expirySeconds
    this.secret = randomBytes(32) // signs the `oh` of the paths it hands out
    this.paths = new Map() // pathname -> { sha, kind, oh, created, expiresAt, expired }
    this.blobs = new Map() // sha hex -> Buffer (memory mode only)
    this.held = new Map() // sha256 hex of a plaintext -> Buffer (memory mode only)
    this.tamperNext = 0 // uploads still to be stored damaged (the media_tamper fault without a path)
    this.holdings = new Map() // "<account phone>|<message id>" -> what its phone keeps of a media message
    if (dir) {
      fs.mkdirSync(path.join(dir, 'blobs'), { recursive: true })
      fs.mkdirSync(path.join(dir, 'held'), { recursive: true })
      this.load()
    }
  }

  get indexFile () { return path.join(this.dir, 'media-index.json') }

  load () {
    let saved
    try { saved = JSON.parse(fs.readFileSync(this.indexFile, 'utf8')) } catch { return }
    if (saved.secret) this.secret = Buffer.from(saved.secret, 'base64')
    for (const [p, e] of saved.paths || []) this.paths.set(p, e)
    for (const [k, h] of saved.holdings || []) this.holdings.set(k, h)
    this.log.info('media.loaded', { paths: this.paths.size })
  }

  save () {
    if (!this.dir) return
    writeFileAtomic(this.indexFile, JSON.stringify({ secret: this.secret.toString('base64'), paths: [...this.paths], holdings: [...this.holdings] }))
  }

  blobFile (sha) { return path.join(this.dir, 'blobs', sha) }

  readBlob (sha) {
    if (!this.dir) return this.blobs.get(sha)
    try { return fs.readFileSync(this.blobFile(sha)) } catch { return undefined }
  }

  writeBlob (sha, bytes) {
    if (!this.dir) return this.blobs.set(sha, Buffer.from(bytes))
    if (!fs.existsSync(this.blobFile(sha))) writeFileAtomic(this.blobFile(sha), bytes, 0o600)
  }

  /**
   * stores an encrypted file (its fileEncSha256 already checked by the caller) and hands out a new direct
   * path for it: `/v/t62.<class>/<n>_<n>_<n>_n.enc?ccb=11-4&oh=<signature>&oe=<expiry, hex unix s>&_nc_sid=5e03e0`
   */
  put (enc, kind, sha) {
    this.writeBlob(sha, enc)
    if (this.tamperNext > 0) {
      this.tamperNext--
      this.flipByte(sha)
    }
    const pathname = `/v/t62.${PATH_CLASS[kind] || PATH_CLASS.document}/${digits(8)}_${digits(15)}_${digits(16)}_n.enc`
    const expiresAt = this.expirySeconds ? Date.now() + this.expirySeconds * 1000 : null
    const oh = createHmac('sha256', this.secret).update(pathname).digest('base64url').slice(0, 43)
    const oe = (expiresAt ? Math.floor(expiresAt / 1000) : 0xffffffff).toString(16).toUpperCase()
    this.paths.set(pathname, { sha, kind, oh, size: enc.length, created: Date.now(), expiresAt, expired: false })
    this.evict()
    this.save()
    return `${pathname}?ccb=11-4&oh=01_${oh}&oe=${oe}&_nc_sid=5e03e0`
  }

  /** what a GET of `urlPath` (path and query) answers: { status: 200, bytes } | { status: 404|410|403 } */
  get (urlPath) {
    const url = new URL(urlPath, 'https://media')
    const entry = this.paths.get(url.pathname)
    if (!entry) return { status: 404 }
    if (url.searchParams.get('oh') !== `01_${entry.oh}`) return { status: 403 } // a URL the server never signed
    if (entry.expired || (entry.expiresAt && entry.expiresAt <= Date.now())) return { status: 410 }
    const bytes = this.readBlob(entry.sha)
    return bytes ? { status: 200, bytes } : { status: 404 }
  }

  /** the paths a fault names: `directPath` (with or without its query) or, without it, every path */
  select (directPath) {
    if (directPath == null) return [...this.paths.entries()]
    const pathname = new URL(directPath, 'https://media').pathname
    const e = this.paths.get(pathname)
    return e ? [[pathname, e]] : []
  }

  /** the `media_expire` fault: these paths answer 410 from now on; returns how many */
  expire (directPath) {
    const hit = this.select(directPath).filter(([, e]) => !e.expired)
    for (const [, e] of hit) e.expired = true
    if (hit.length) this.save()
    return hit.length
  }

  /**
   * the `media_tamper` fault: one byte flipped in the stored blob of `directPath` now, or, without one,
   * in the blobs of the next `uploads` uploads (as a corrupted CDN copy); returns how many
   */
  tamper (directPath, uploads = 1) {
    if (directPath == null) {
      this.tamperNext += uploads
      return uploads
    }
    const shas = new Set(this.select(directPath).map(([, e]) => e.sha))
    for (const sha of shas) this.flipByte(sha)
    return shas.size
  }

  flipByte (sha) {
    const bytes = Buffer.from(this.readBlob(sha) || [])
    if (!bytes.length) return
    bytes[Math.floor(bytes.length / 2)] ^= 0x01
    if (this.dir) writeFileAtomic(this.blobFile(sha), bytes, 0o600)
    else this.blobs.set(sha, bytes)
    this.log.info('media.tampered', { bytes: bytes.length })
  }

  /** drops the oldest paths beyond the bounds, and the blobs no path names any more */
  evict () {
    let total = this.totalBytes()
    const dropped = []
    for (const [p, e] of this.paths) {
      if (this.paths.size <= this.maxPaths && total <= this.maxBytes) break
      this.paths.delete(p)
      dropped.push(e.sha)
      total = this.totalBytes()
    }
    for (const sha of dropped) {
      if ([...this.paths.values()].some((e) => e.sha === sha)) continue
      if (this.dir) fs.rmSync(this.blobFile(sha), { force: true })
      else this.blobs.delete(sha)
    }
    if (dropped.length) this.log.warn('media.evicted', { paths: dropped.length, bound_bytes: this.maxBytes })
  }

  totalBytes () {
    const seen = new Map()
    for (const e of this.paths.values()) seen.set(e.sha, e.size)
    let n = 0
    for (const s of seen.values()) n += s
    return n
  }

  /** what a phone keeps of a media message (chat, fromMe, kind, mediaKey, sha of the plaintext); bounded */
  remember (key, holding) {
    this.holdings.delete(key)
    this.holdings.set(key, holding)
    while (this.holdings.size > MAX_HELD) this.holdings.delete(this.holdings.keys().next().value)
    this.save()
  }

  holding (key) { return this.holdings.get(key) }

  /** a phone keeps its own plaintext copy of a media file (for re-uploads); bounded like the blobs */
  hold (shaHex, plaintext) {
    if (!this.dir) {
      this.held.set(shaHex, Buffer.from(plaintext))
      while (this.held.size > MAX_HELD) this.held.delete(this.held.keys().next().value)
      return
    }
    const heldDir = path.join(this.dir, 'held')
    const file = path.join(heldDir, shaHex)
    if (fs.existsSync(file)) return
    writeFileAtomic(file, plaintext, 0o600)
    const names = fs.readdirSync(heldDir).filter((n) => !n.startsWith('.'))
    if (names.length <= MAX_HELD) return
    const byAge = names.map((n) => [n, fs.statSync(path.join(heldDir, n)).mtimeMs]).sort((a, b) => a[1] - b[1])
    for (const [n] of byAge.slice(0, names.length - MAX_HELD)) fs.rmSync(path.join(heldDir, n), { force: true })
  }

  /** the plaintext a phone held, or undefined */
  heldCopy (shaHex) {
    if (!this.dir) return this.held.get(shaHex)
    try { return fs.readFileSync(path.join(this.dir, 'held', shaHex)) } catch { return undefined }
  }

  describe () {
    return { paths: this.paths.size, bytes: this.totalBytes(), expired: [...this.paths.values()].filter((e) => e.expired).length }
  }
}
