// One download of a contact's encrypted media file from WhatsApp's media host, verified as it streams and
// committed into the gateway's media store (WA_MEDIA_DIR, the layout and crash-safety of
// service/media/store.py FileStore: `<sha[:2]>/<sha[2:]>`, temp files `tmp/blob-*`, 0600 files, 0700 dirs,
// fsync + rename + directory fsync). Baileys' own download (downloadEncryptedContent) decrypts without
// checking anything (no MAC, no hash: a damaged file decrypts to wrong bytes) and keeps no raw bytes to check
// afterwards, so the bytes are read here: the SHA-256 of the whole body must be fileEncSha256, the trailing
// 10 bytes the HMAC-SHA256(macKey, iv || ciphertext), the SHA-256 of the AES-256-CBC plaintext fileSha256.
// Memory does not grow with the file: each chunk is hashed, MACed, decrypted and written before the next
// is read (a 100 MB document holds a few chunks in memory), and only a file that passed every check gets
// its name in the store; anything else leaves nothing behind, not even its temp file.
import { createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { DEFAULT_ORIGIN } from 'baileys'
import { request } from 'undici'

export const MAC_LENGTH = 10
const AES_BLOCK = 16
// a body longer than the file its message describes is not that file; without a length, WhatsApp's
// largest document (2 GB) encrypted
const MAX_UNKNOWN_LENGTH = 2 * 1024 * 1024 * 1024 + AES_BLOCK + MAC_LENGTH
// What the media host answers for media it no longer has (expired, evicted) or a path it does not sign any
// more: the phone has to upload it again (a media retry). Baileys' REUPLOAD_REQUIRED_STATUS is [410, 404].
export const GONE_STATUSES = new Set([403, 404, 410])

/**
 * Why a download failed: `gone` (the host has it no more), `corrupt` (a check failed), `network` (no
 * answer, TLS, a 5xx, a body cut short), `local` (the media store refused a write).
 */
export class DownloadFailure extends Error {
  constructor (reason, message, status = null) {
    super(message)
    this.reason = reason
    this.status = status
  }
}
const corrupt = (message) => new DownloadFailure('corrupt', message)

/** The length of the encrypted file of `plainLength` bytes: PKCS#7-padded ciphertext and the MAC. */
export const encryptedLength = (plainLength) => (Math.floor(plainLength / AES_BLOCK) + 1) * AES_BLOCK + MAC_LENGTH

/** The store's file of a sha256 (as service/media/store.py FileStore.path). */
export const storePath = (dir, sha256) => path.join(dir, sha256.slice(0, 2), sha256.slice(2))

/** The size of the stored file of `sha256`, or null when it is not there. */
export async function storedSize (dir, sha256) {
  try {
    const st = await fs.stat(storePath(dir, sha256))
    return st.isFile() ? st.size : null
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null
    throw err
  }
}

/**
 * Downloads `url` (through `dispatcher`, idle at most `idleMs` between chunks), checks it against `expect`
 * ({ encSha256, sha256: Buffers, length: number|null }) with `keys` (Baileys' getMediaKeys: iv, cipherKey,
 * macKey) and commits the plaintext into `dir`: { sha256 (hex), size }. Throws DownloadFailure.
 */
export async function fetchIntoStore ({ url, keys, expect, dir, dispatcher, idleMs }) {
  const controller = new AbortController()
  let timer = null
  const arm = () => {
    clearTimeout(timer)
    timer = setTimeout(() => controller.abort(new Error(`the media host sent nothing for ${idleMs} ms`)), idleMs)
  }
  arm()
  try {
    // undici's request (not fetch, as Baileys' getHttpStream): its body is a Node stream that stops reading the
    // socket while the chunks before are still being written, so what is in flight stays a few chunks
    let res
    try {
      res = await request(url, { dispatcher, headers: { Origin: DEFAULT_ORIGIN }, signal: controller.signal, maxRedirections: 0 })
    } catch (err) {
      throw network(err)
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      discard(res.body)
      const status = res.statusCode
      if (GONE_STATUSES.has(status)) throw new DownloadFailure('gone', `the media host answered ${status}`, status)
      throw new DownloadFailure('network', `the media host answered ${status}`, status)
    }
    const maxLength = expect.length == null ? MAX_UNKNOWN_LENGTH : encryptedLength(expect.length)
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > maxLength) {
      discard(res.body)
      throw corrupt(`the media host sent ${declared} bytes for a file of at most ${maxLength}`)
    }
    let temp = null
    try {
      temp = await onDisk(() => TempFile.create(dir))
      const size = await decryptInto(res.body, temp, { keys, expect, maxLength, onChunk: arm })
      const sha256 = expect.sha256.toString('hex')
      await onDisk(() => temp.commit(storePath(dir, sha256), dir))
      return { sha256, size }
    } catch (err) {
      discard(res.body)
      await temp?.discard()
      throw err instanceof DownloadFailure ? err : network(err)
    }
  } finally {
    clearTimeout(timer)
  }
}

// The body's bytes, checked and decrypted into `temp` as they come; the trailing MAC_LENGTH bytes of what
// arrived so far are held back until the next chunk (or the end) shows they are the MAC.
async function decryptInto (body, temp, { keys, expect, maxLength, onChunk }) {
  const encHash = createHash('sha256')
  const plainHash = createHash('sha256')
  const hmac = createHmac('sha256', keys.macKey).update(keys.iv)
  const decipher = createDecipheriv('aes-256-cbc', keys.cipherKey, keys.iv)
  let tail = Buffer.alloc(0)
  let received = 0
  let size = 0
  const write = async (plain) => {
    plainHash.update(plain)
    size += plain.length
    await onDisk(() => temp.write(plain))
  }
  for await (const chunk of body) {
    onChunk()
    received += chunk.length
    if (received > maxLength) throw corrupt(`the media host sent more than the ${maxLength} bytes of the file`)
    encHash.update(chunk)
    const data = tail.length ? Buffer.concat([tail, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const cut = Math.max(0, data.length - MAC_LENGTH)
    tail = Buffer.from(data.subarray(cut))
    if (cut === 0) continue
    const ciphertext = data.subarray(0, cut)
    hmac.update(ciphertext)
    await write(decipher.update(ciphertext))
  }
  if (received < AES_BLOCK + MAC_LENGTH) throw corrupt(`the media host sent ${received} bytes: too short for an encrypted file`)
  if (!encHash.digest().equals(expect.encSha256)) throw corrupt('the encrypted file does not hash to its file_enc_sha256')
  if (!timingSafeEqual(hmac.digest().subarray(0, MAC_LENGTH), tail)) throw corrupt('the encrypted file\'s MAC does not match')
  let last
  try {
    last = decipher.final()
  } catch {
    throw corrupt('the encrypted file does not decrypt (bad padding)')
  }
  await write(last)
  if (!plainHash.digest().equals(expect.sha256)) throw corrupt('the decrypted file does not hash to its file_sha256')
  return size
}

// a body not read to its end: undici's stream errors when destroyed, which must not be left unhandled
const discard = (body) => {
  body.on('error', () => {})
  body.destroy()
}

const network = (err) => {
  if (err instanceof DownloadFailure) return err
  const cause = err?.cause?.code ?? err?.code ?? err?.cause?.message ?? err?.message ?? String(err)
  return new DownloadFailure('network', `the media host could not be read: ${cause}`)
}

// a failure of the media store's disk (no space, no permission), told apart from the network's
const onDisk = async (fn) => {
  try {
    return await fn()
  } catch (err) {
    throw new DownloadFailure('local', `the media store could not be written: ${err.code ?? err.message}`)
  }
}

/** A temp file of the store (`<dir>/tmp/blob-<random>`, 0600), renamed into place only once complete. */
class TempFile {
  static async create (dir) {
    const tmpDir = path.join(dir, 'tmp')
    await fs.mkdir(tmpDir, { recursive: true, mode: 0o700 })
    const name = path.join(tmpDir, `blob-${randomBytes(12).toString('hex')}`)
    return new TempFile(name, await fs.open(name, 'wx', 0o600))
  }

  constructor (name, handle) {
    this.name = name
    this.handle = handle
  }

  async write (bytes) {
    if (bytes.length) await this.handle.write(bytes)
  }

  /** fsync, rename to `target` (kept when it is there: the same content) and fsync the directories */
  async commit (target, root) {
    await this.handle.sync()
    await this.handle.close()
    this.handle = null
    try {
      await fs.stat(target)
      await fs.rm(this.name, { force: true })
      this.name = null
      return
    } catch (err) {
      if (err.code !== 'ENOENT') throw err
    }
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 })
    await fs.rename(this.name, target)
    this.name = null
    await fsyncDir(path.dirname(target))
    await fsyncDir(root)
  }

  async discard () {
    await this.handle?.close().catch(() => {})
    this.handle = null
    if (this.name) await fs.rm(this.name, { force: true }).catch(() => {})
    this.name = null
  }
}

async function fsyncDir (dir) {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
