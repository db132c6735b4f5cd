// One verified download into the media store (src/session/media-fetch.js), against a local HTTP server that
// serves what a media host may send: the file, a file with each of its checks broken (a flipped ciphertext
// byte, a flipped MAC byte with a matching fileEncSha256, a wrong fileSha256, bad padding), more bytes than
// the file, too few, a body cut short, nothing for a while, and the statuses that mean "gone" or "later".
// The files are encrypted with the emulator's media crypto, byte-identical to Baileys' (emulator-media.test.js).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { getMediaKeys } from 'baileys'
import { encryptMedia } from '../emulator/media-crypto.js'
import { DownloadFailure, encryptedLength, fetchIntoStore, storePath, storedSize } from '../src/session/media-fetch.js'
import { tmpDir } from './emulator-helpers.js'

const sha256 = (b) => createHash('sha256').update(b).digest()
let server
let origin
let dir
const routes = new Map() // path -> (req, res)

before(async () => {
  server = http.createServer((req, res) => (routes.get(req.url) ?? ((q, r) => { r.writeHead(404); r.end() }))(req, res))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${server.address().port}`
})
after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))

let n = 0
const serve = (handler) => {
  const p = `/v/t62.7119-24/${++n}_n.enc`
  routes.set(p, handler)
  return `${origin}${p}`
}
const serveBytes = (bytes) => serve((req, res) => { res.writeHead(200, { 'content-length': bytes.length }); res.end(bytes) })

// a document of `size` random bytes, encrypted; `fetch(url, changes)` downloads it into a fresh store
const file = async (size = 5000) => {
  const plain = randomBytes(size)
  const enc = encryptMedia(plain, 'document')
  const keys = await getMediaKeys(enc.mediaKey, 'document')
  const expect = { encSha256: enc.fileEncSha256, sha256: enc.fileSha256, length: size }
  return {
    plain,
    enc: enc.enc,
    keys,
    expect,
    fetch: (url, changes = {}) => {
      dir = tmpDir('wa-mfetch-')
      return fetchIntoStore({ url, keys, expect: { ...expect, ...changes }, dir, idleMs: changes.idleMs ?? 5000 })
    }
  }
}
const failure = (promise) => promise.then(() => { throw new Error('the download succeeded') }, (err) => {
  assert.ok(err instanceof DownloadFailure, String(err?.stack ?? err))
  return err
})
const leftovers = () => {
  const all = []
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : all.push(e.name) }
  walk(dir)
  return all
}

test('a good file lands in the store under its sha256: 0600 file, 0700 dirs, no temp file', async () => {
  const f = await file(100000)
  const got = await f.fetch(serveBytes(f.enc))
  const hex = sha256(f.plain).toString('hex')
  assert.deepEqual(got, { sha256: hex, size: f.plain.length })
  assert.ok(fs.readFileSync(storePath(dir, hex)).equals(f.plain))
  assert.equal(fs.statSync(storePath(dir, hex)).mode & 0o777, 0o600)
  assert.equal(fs.statSync(path.join(dir, 'tmp')).mode & 0o777, 0o700)
  assert.equal(fs.statSync(path.dirname(storePath(dir, hex))).mode & 0o777, 0o700)
  assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), [])
  assert.equal(await storedSize(dir, hex), f.plain.length)
  assert.equal(await storedSize(dir, 'ab'.repeat(32)), null)
  assert.equal(f.enc.length, encryptedLength(f.plain.length))
})

test('a file that arrives one byte at a time is the same file', async () => {
  const f = await file(300)
  const url = serve(async (req, res) => {
    res.writeHead(200)
    for (const b of f.enc) { res.write(Buffer.from([b])); await new Promise((resolve) => setImmediate(resolve)) }
    res.end()
  })
  assert.equal((await f.fetch(url)).sha256, sha256(f.plain).toString('hex'))
})

test('each check on its own: a broken one is `corrupt` and leaves nothing in the store', async () => {
  const f = await file(4000)
  const cases = {}
  // a ciphertext byte flipped: fileEncSha256 no longer matches
  cases.ciphertext = { bytes: Buffer.from(f.enc), changes: {} }
  cases.ciphertext.bytes[100] ^= 1
  // a MAC byte flipped, with the fileEncSha256 of what is served: only the MAC catches it (the plaintext is fine)
  const badMac = Buffer.from(f.enc)
  badMac[badMac.length - 1] ^= 1
  cases.mac = { bytes: badMac, changes: { encSha256: sha256(badMac) } }
  // the file is whole, but the message names another plaintext, or another encrypted file
  cases.sha256 = { bytes: f.enc, changes: { sha256: randomBytes(32) } }
  cases.encSha256 = { bytes: f.enc, changes: { encSha256: randomBytes(32) } }
  // a well-MACed file whose padding is wrong (encrypted without PKCS#7, as a broken client would)
  const cipher = createCipheriv('aes-256-cbc', f.keys.cipherKey, f.keys.iv).setAutoPadding(false)
  const unpadded = Buffer.concat([cipher.update(randomBytes(4000 - 4000 % 16 + 16)), cipher.final()])
  const mac = createHmac('sha256', f.keys.macKey).update(f.keys.iv).update(unpadded).digest().subarray(0, 10)
  const badPadding = Buffer.concat([unpadded, mac])
  cases.padding = { bytes: badPadding, changes: { encSha256: sha256(badPadding), length: null } }
  // more bytes than a file of that length can have (the Content-Length, or the body itself)
  cases.longer = { bytes: Buffer.concat([f.enc, randomBytes(16)]), changes: {} }
  cases.tooShort = { bytes: f.enc.subarray(0, 20), changes: { encSha256: sha256(f.enc.subarray(0, 20)) } }
  for (const [name, { bytes, changes }] of Object.entries(cases)) {
    const err = await failure(f.fetch(serveBytes(bytes), changes))
    assert.equal(err.reason, 'corrupt', `${name}: ${err.message}`)
    assert.deepEqual(leftovers(), [], name)
  }
  const chunked = serve((req, res) => { res.writeHead(200); res.write(f.enc); res.end(randomBytes(32)) }) // no Content-Length
  assert.equal((await failure(f.fetch(chunked))).reason, 'corrupt')
  assert.deepEqual(leftovers(), [])
})

test('a host that sends on and on (no Content-Length) is cut off once past the file\'s length', { timeout: 15000 }, async () => {
  const f = await file(5000)
  let closed = null
  const endless = serve((req, res) => {
    res.writeHead(200)
    const more = () => { while (res.write(randomBytes(16384))); }
    res.on('drain', more)
    res.on('close', () => { closed = Date.now() })
    more()
  })
  const err = await failure(f.fetch(endless))
  assert.equal(err.reason, 'corrupt')
  assert.match(err.message, /more than the \d+ bytes of the file/)
  assert.deepEqual(leftovers(), [])
  const { setTimeout: wait } = await import('node:timers/promises')
  for (let i = 0; i < 100 && closed === null; i++) await wait(20)
  assert.ok(closed, 'the connection was closed')
})

test('403, 404 and 410 are `gone` (the phone must upload it again); 500 and a refused connection are `network`', async () => {
  const f = await file()
  for (const status of [403, 404, 410]) {
    const err = await failure(f.fetch(serve((req, res) => { res.writeHead(status); res.end('{"error":"expired"}') })))
    assert.deepEqual([err.reason, err.status], ['gone', status])
  }
  for (const status of [500, 503, 401, 302]) {
    const err = await failure(f.fetch(serve((req, res) => { res.writeHead(status, { location: '/elsewhere' }); res.end() })))
    assert.deepEqual([err.reason, err.status], ['network', status])
  }
  const closed = await new Promise((resolve) => { const s = http.createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) }) })
  assert.equal((await failure(f.fetch(`http://127.0.0.1:${closed}/v/x`))).reason, 'network')
})

test('a body cut short and a host that stops sending are `network`, and leave nothing behind', async () => {
  const f = await file(200000)
  const cut = serve((req, res) => { res.writeHead(200, { 'content-length': f.enc.length }); res.write(f.enc.subarray(0, 100000)); setTimeout(() => res.destroy(), 20) })
  assert.equal((await failure(f.fetch(cut))).reason, 'network')
  assert.deepEqual(leftovers(), [])
  const stalls = serve((req, res) => { res.writeHead(200, { 'content-length': f.enc.length }); res.write(f.enc.subarray(0, 100000)) })
  const started = Date.now()
  const stalled = failure(f.fetch(stalls, { idleMs: 300 }))
  // meanwhile the part that came is in a temp file of the store's tmp/ (FileStore.sweep's `blob-*`), nowhere else
  const { setTimeout: wait } = await import('node:timers/promises')
  await wait(150)
  assert.deepEqual(leftovers().map((name) => name.replace(/[0-9a-f]+$/, '')), ['blob-'])
  assert.equal(fs.readdirSync(path.join(dir, 'tmp')).length, 1)
  const err = await stalled
  assert.equal(err.reason, 'network')
  assert.match(err.message, /sent nothing for 300 ms/)
  assert.ok(Date.now() - started < 5000)
  assert.deepEqual(leftovers(), [])
})

test('a media store that cannot be written is `local`, not the network\'s', async () => {
  const f = await file()
  dir = tmpDir('wa-mfetch-')
  fs.writeFileSync(path.join(dir, 'tmp'), 'a file where the temp dir should be')
  const err = await failure(fetchIntoStore({ url: serveBytes(f.enc), keys: f.keys, expect: f.expect, dir, idleMs: 5000 }))
  assert.equal(err.reason, 'local')
})
