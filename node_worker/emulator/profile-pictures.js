// Profile pictures, as WhatsApp's server answers them (Baileys' profilePictureUrl, whatsmeow's
// GetProfilePictureInfo): `<iq type=get xmlns=w:profile:picture target=JID><picture type=image|preview
// query=url [id]/></iq>` is answered with `<picture id type url direct_path/>`; an `id` equal to the current
// picture's gets a result without <picture> (not changed, as whatsmeow reads it); no picture is
// `404 item-not-found`, a picture the owner's privacy hides from the asker `401 not-authorized` (asked before
// whether there is one, so a refusal tells nothing). `iq type=set` (Baileys' updateProfilePicture /
// removeProfilePicture) sets or removes the asker's own picture.
//
// The images are plain JPEG on the media host (WhatsApp serves them from pps.whatsapp.net, unencrypted) at a
// URL that stays the same until the picture changes: `/v/t61.24694-24/<n>_<n>_<n>_n.jpg?...&oh=<signature>`.
// Their bytes are kept in `<media dir>/pictures/<sha256>` (in memory without a media dir); a user keeps
// { id, sha, size, path, oh } of its picture and its privacy in the state file.
// The control API sets them: POST /contacts/{phone}/picture (given bytes, a generated JPEG, or none) and its
// privacy: `everyone`, `contacts` (the accounts listed in `contacts` see it) or `nobody`.
import fs from 'node:fs'
import path from 'node:path'
import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto'
import { child, bytesOf, unixNow, jidDecode } from './wa.js'
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'
import { writeFileAtomic } from './certs.js'

export const PICTURE_PRIVACY = ['everyone', 'contacts', 'nobody']
const PATH_PREFIX = '/v/t61.24694-24/'
const MAX_PICTURE_BYTES = 512 * 1024
// an 8x8 JPEG (WhatsApp green); a generated picture is this with a comment naming its owner and version
const BASE_JPEG = Buffer.from('/9j/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAIAAgDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAX/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFQEBAQAAAAAAAAAAAAAAAAAABQf/xAAUEQEAAAAAAAAAAAAAAAAAAAAA/9oADAMBAAIRAxEAPwCyACSZ/9k=', 'base64')
const digits = (n) => Array.from({ length: n }, (_, i) => (i === 0 ? randomInt(1, 10) : randomInt(0, 10))).join('')
const safeDecode = (jid) => {
  try { return jid ? jidDecode(jid) : undefined } catch { return undefined }
}

/** a valid JPEG unique to `label`: the base image with a COM segment after its SOI marker */
export const generatedJpeg = (label) => {
  const text = Buffer.from(label.slice(0, 200))
  const com = Buffer.concat([Buffer.from([0xff, 0xfe, (text.length + 2) >> 8, (text.length + 2) & 0xff]), text])
  return Buffer.concat([BASE_JPEG.subarray(0, 2), com, BASE_JPEG.subarray(2)])
}

/** the control API's picture routes (control-api.js) */
export const pictureRoutes = (emu) => [
  ['GET', /^\/contacts\/([^/]+)\/picture$/, (m) => emu.pictures.view(decodeURIComponent(m[1]))],
  ['POST', /^\/contacts\/([^/]+)\/picture$/, (m, body) => emu.pictures.set(decodeURIComponent(m[1]), body)]
]

export class ProfilePictures {
  /** @param {{ emu, dir: string|null }} opts dir: the media dir (pictures/ under it), null: memory */
  constructor ({ emu, dir }) {
    this.emu = emu
    this.dir = dir ? path.join(dir, 'pictures') : null
    if (this.dir) fs.mkdirSync(this.dir, { recursive: true })
    this.memory = new Map() // sha hex -> bytes (no dir)
    this.secret = randomBytes(32) // signs the `oh` of new picture paths; old paths keep the `oh` they were given
    this.served = 0
  }

  get directory () { return this.emu.directory }

  write (sha, bytes) {
    if (!this.dir) return this.memory.set(sha, Buffer.from(bytes))
    const file = path.join(this.dir, sha)
    if (!fs.existsSync(file)) writeFileAtomic(file, bytes, 0o644)
  }

  read (sha) {
    if (!this.dir) return this.memory.get(sha)
    try { return fs.readFileSync(path.join(this.dir, sha)) } catch { return undefined }
  }

  /** gives `user` the picture `bytes` (null: none) with a new id and a new URL */
  assign (user, bytes) {
    if (!bytes) {
      user.picture = null
    } else {
      const sha = createHash('sha256').update(bytes).digest('hex')
      this.write(sha, bytes)
      const pathname = `${PATH_PREFIX}${digits(9)}_${digits(16)}_${digits(16)}_n.jpg`
      const oh = createHmac('sha256', this.secret).update(pathname).digest('base64url').slice(0, 43)
      const id = String(Math.max(unixNow(), Number(user.picture?.id || 0) + 1)) // WhatsApp's ids are numbers that grow
      user.picture = { id, sha, size: bytes.length, path: pathname, oh }
    }
    this.emu.persist()
  }

  urlOf (picture) {
    const directPath = `${picture.path}?ccb=11-4&oh=01_${picture.oh}&oe=${(0xffffffff).toString(16).toUpperCase()}&_nc_sid=e6ed6c&_nc_cat=1`
    return { directPath, url: `${this.emu.mediaServer.origin}${directPath}` }
  }

  // ------------------------------------------------------------ iqs
  /** true when it handled the iq */
  handleIq (conn, iq) {
    if (iq.attrs.xmlns !== 'w:profile:picture') return false
    if (!conn.user) {
      conn.errorResult(iq, 401, 'not-authorized')
      return true
    }
    if (iq.attrs.type === 'set') return this.setOwn(conn, iq)
    const query = child(iq, 'picture')
    const d = safeDecode(iq.attrs.target)
    const target = d ? this.directory.resolve(d) : undefined
    if (!target || !target.onWhatsApp) { // a group, or a number nobody uses: no picture here
      conn.errorResult(iq, 404, 'item-not-found')
      return true
    }
    if (!this.visibleTo(target, conn.user)) {
      conn.log.info('picture.refused', { reason: 'privacy' })
      conn.errorResult(iq, 401, 'not-authorized')
      return true
    }
    if (!target.picture) {
      conn.errorResult(iq, 404, 'item-not-found')
      return true
    }
    if (query?.attrs.id && query.attrs.id === target.picture.id) {
      conn.result(iq) // the asker has this one already
      return true
    }
    const { directPath, url } = this.urlOf(target.picture)
    conn.result(iq, [{ tag: 'picture', attrs: { id: target.picture.id, type: query?.attrs.type === 'preview' ? 'preview' : 'image', url, direct_path: directPath } }])
    return true
  }

  visibleTo (owner, asker) {
    if (owner === asker) return true
    const privacy = owner.picturePrivacy || 'everyone'
    if (privacy === 'nobody') return false
    if (privacy === 'contacts') return (owner.pictureContacts || []).includes(asker.phone)
    return true
  }

  /** updateProfilePicture / removeProfilePicture of the asker's own picture */
  setOwn (conn, iq) {
    const target = safeDecode(iq.attrs.target)
    if (target && this.directory.resolve(target) !== conn.user) {
      conn.errorResult(iq, target.server === 'g.us' ? 501 : 401, target.server === 'g.us' ? 'feature-not-implemented' : 'not-authorized')
      return true
    }
    const bytes = bytesOf(child(iq, 'picture'))
    if (bytes && (bytes.length > MAX_PICTURE_BYTES || bytes[0] !== 0xff || bytes[1] !== 0xd8)) {
      conn.errorResult(iq, 406, 'not-acceptable') // not a JPEG of a sensible size
      return true
    }
    this.assign(conn.user, bytes || null)
    conn.log.info('picture.set_own', { removed: !bytes })
    conn.result(iq, bytes ? [{ tag: 'picture', attrs: { id: conn.user.picture.id } }] : undefined)
    return true
  }

  // ------------------------------------------------------------ control API
  /** GET /contacts/{phone}/picture */
  view (phoneInput) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
    const u = this.directory.get(phone)
    const p = u?.picture
    return {
      phone_number: e164(phone),
      picture: p ? { id: p.id, ...(({ url, directPath }) => ({ url, direct_path: directPath }))(this.urlOf(p)), size: p.size, sha256: p.sha } : null,
      privacy: u?.picturePrivacy || 'everyone',
      contacts: (u?.pictureContacts || []).map(e164)
    }
  }

  /** POST /contacts/{phone}/picture {"base64"? | "remove"?, "privacy"?, "contacts"?} */
  set (phoneInput, body) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
    for (const k of Object.keys(body)) {
      if (!['base64', 'remove', 'privacy', 'contacts'].includes(k)) throw apiError(400, 'invalid_field', `unknown field "${k}" (base64, remove, privacy, contacts)`)
    }
    if (body.base64 != null && body.remove != null) throw apiError(400, 'invalid_picture', 'send "base64" or "remove", not both')
    if (body.remove != null && body.remove !== true) throw apiError(400, 'invalid_picture', '"remove" must be true')
    let bytes
    if (body.base64 != null) {
      if (typeof body.base64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(body.base64)) throw apiError(400, 'invalid_picture', '"base64" must be the image, base64-encoded')
      bytes = Buffer.from(body.base64, 'base64')
      if (!bytes.length || bytes.length > MAX_PICTURE_BYTES) throw apiError(400, 'invalid_picture', `the image must be 1 to ${MAX_PICTURE_BYTES} bytes`)
    }
    if (body.privacy != null && !PICTURE_PRIVACY.includes(body.privacy)) throw apiError(400, 'invalid_privacy', `"privacy" must be one of ${PICTURE_PRIVACY.join(', ')}`)
    let contacts
    if (body.contacts != null) {
      contacts = Array.isArray(body.contacts) && body.contacts.length <= 1000 ? body.contacts.map(normalizePhone) : [null]
      if (contacts.some((c) => !c)) throw apiError(400, 'invalid_contacts', '"contacts" must be a list of E.164 numbers (at most 1000)')
    }
    const u = this.directory.ensure(phone)
    if (body.privacy != null) u.picturePrivacy = body.privacy
    if (contacts) u.pictureContacts = [...new Set(contacts)]
    if (bytes) this.assign(u, bytes)
    else if (body.remove) this.assign(u, null)
    else if (body.privacy == null && contacts == null) this.assign(u, generatedJpeg(`wa-emulator profile picture of ${e164(phone)}, ${randomBytes(6).toString('hex')}`))
    this.emu.persist()
    return this.view(phone)
  }

  // ------------------------------------------------------------ media host
  /** true when `url` is a picture path (media-server.js asks before its media paths) */
  owns (url) { return url.pathname.startsWith(PATH_PREFIX) }

  /** GET/HEAD of a picture URL: the JPEG, 403 for a signature it never gave, 404 for one no user has now */
  serve (req, res, url) {
    const user = [...this.directory.users.values()].find((u) => u.picture?.path === url.pathname)
    const send = (status, headers, body) => { res.writeHead(status, headers); res.end(req.method === 'HEAD' ? undefined : body) }
    if (!user) return send(404, { 'content-type': 'application/json' }, '{"error":"not_found"}')
    if (url.searchParams.get('oh') !== `01_${user.picture.oh}`) return send(403, { 'content-type': 'application/json' }, '{"error":"bad_signature"}')
    const bytes = this.read(user.picture.sha)
    if (!bytes) return send(404, { 'content-type': 'application/json' }, '{"error":"not_found"}')
    this.served++
    send(200, { 'content-type': 'image/jpeg', 'content-length': bytes.length, 'cache-control': 'max-age=86400' }, bytes)
  }
}
