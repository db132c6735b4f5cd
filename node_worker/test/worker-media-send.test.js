// The worker sends media (issue 24): POST /send with `media` names a file of the gateway's media store
// (WA_MEDIA_DIR, by its sha256); the worker's real WhatsAppSession reads it (hashing it on the way),
// uploads it to the emulator's media host (trusted through WA_SANDBOX_MEDIA_CA only) and sends it; the
// contact's phone downloads and verifies it. The message is stored before it leaves, so a second send of the
// same id reuses it and never uploads again.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { startEmulator, inboxEntry, inbox, tmpDir, sleep } from './emulator-helpers.js'
import { pairedSession } from './session-helpers.js'
import { makeHandler, makeRoutes, startServer } from '../src/server.js'
import { makeLogger } from '../lib/logger.js'
import { endOnError, openMedia, parseMedia } from '../src/session/media.js'
import { readSettings, SettingsError } from '../src/settings.js'

const ACCOUNT = '+15550007301'
const CONTACT = '+15550007302'
const here = path.dirname(fileURLToPath(import.meta.url))
const sha256hex = (b) => createHash('sha256').update(b).digest('hex')

// small real files: a PNG (signature, IHDR, IDAT, IEND), the voice-note fixture (Ogg Opus), a PDF, an MP4
// header, a WebP
const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'),
  Buffer.from('0000000d4944415478da63f8cfc0f01f0005000201a0d6c3b80000000049454e44ae426082', 'hex'), randomBytes(200)])
const opus = fs.readFileSync(path.join(here, '..', '..', 'tests', 'fixtures', 'media', 'voice.opus'))
const pdf = Buffer.from(`%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% ${randomBytes(32).toString('hex')}\ntrailer << /Root 1 0 R >>\n%%EOF\n`)
const mp4 = Buffer.concat([Buffer.from('0000001866747970697336d00000000069736f6d', 'hex'), randomBytes(3000)])
const webp = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0xf0, 0x0b, 0, 0]), Buffer.from('WEBPVP8 '), randomBytes(3000)])

let emu
let paired
let session
let mediaDir
let server
let socketPath
let workerDir

const store = (bytes) => { // as service/media/store.py: <sha256[:2]>/<sha256[2:]>
  const sha = sha256hex(bytes)
  fs.mkdirSync(path.join(mediaDir, sha.slice(0, 2)), { recursive: true })
  fs.writeFileSync(path.join(mediaDir, sha.slice(0, 2), sha.slice(2)), bytes)
  return sha
}
const post = (p, body) => new Promise((resolve, reject) => {
  const data = JSON.stringify(body)
  const req = http.request({ socketPath, path: p, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
    let text = ''
    res.on('data', (d) => { text += d })
    res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }))
  })
  req.on('error', reject)
  req.end(data)
})
const uploads = async () => (await emu.api('GET', '/media')).body.uploads
let n = 0
const nextId = () => `MEDIASEND${String(++n).padStart(4, '0')}${randomBytes(3).toString('hex').toUpperCase()}`

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-media-emu-'), WA_EMULATOR_RECEIPT_DELAY_MS: '20' } })
  const media = (await emu.api('GET', '/media')).body
  assert.ok(media.ca_file, 'the emulator keeps its media CA in a file')
  mediaDir = tmpDir('wa-media-store-')
  paired = await pairedSession(emu, ACCOUNT, {
    prefix: 'wa-media-send-',
    env: { WA_SANDBOX: 'true', WA_SANDBOX_MEDIA_CA: media.ca_file, WA_MEDIA_DIR: mediaDir }
  })
  session = paired.session
  workerDir = tmpDir('wa-media-sock-')
  socketPath = path.join(workerDir, 'worker.sock')
  const host = { get: () => ({ session, journal: paired.journal }), assigned: () => true }
  server = await startServer({ socketPath, handler: makeHandler({ host, routes: makeRoutes() }), logger: makeLogger({ level: 'error', write: () => {} }) })
})

after(async () => {
  await new Promise((resolve) => server ? server.close(resolve) : resolve())
  await paired?.stop()
  await emu?.stop()
  fs.rmSync(workerDir ?? '/nonexistent', { recursive: true, force: true })
  fs.rmSync(mediaDir ?? '/nonexistent', { recursive: true, force: true })
})

const kinds = [
  ['image', png, { mimetype: 'image/png', caption: 'a picture' }, {}],
  ['video', mp4, { mimetype: 'video/mp4', caption: 'a film' }, {}],
  ['audio', opus, { mimetype: 'audio/ogg; codecs=opus', ptt: true }, {}],
  ['audio', opus, { mimetype: 'audio/ogg; codecs=opus' }, { ptt: false }], // the emulator says ptt for any audio
  ['document', pdf, { mimetype: 'application/pdf', filename: 'report.pdf', caption: 'read me' }, {}],
  ['document', pdf, { mimetype: 'application/pdf' }, { filename: 'file' }],
  ['sticker', webp, { mimetype: 'image/webp' }, {}]
]
for (const [kind, bytes, fields, extra] of kinds) {
  test(`POST /send with ${kind} media${fields.ptt ? ' (voice note)' : ''}: the contact gets the same bytes, ${Object.keys(fields).join(', ')} kept`, async () => {
    const sha = store(bytes)
    const id = nextId()
    const before = await uploads()
    const r = await post('/send', { phone_number: CONTACT, id, media: { kind, sha256: sha, ...fields } })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(r.body, { id, status: 'sent' })
    const entry = await inboxEntry(emu, CONTACT, id)
    assert.deepEqual(entry.media, { kind, size: bytes.length, sha256: sha, ...fields, ...extra })
    assert.equal(entry.error, null)
    assert.equal(await uploads(), before + 1)
  })
}

test('a second send of the same id (a resend after a crash) reuses the stored message: one upload, one message', async () => {
  const bytes = Buffer.concat([png, randomBytes(100)])
  const sha = store(bytes)
  const id = nextId()
  const before = await uploads()
  const body = { phone_number: CONTACT, id, media: { kind: 'image', sha256: sha, mimetype: 'image/png', caption: 'once' } }
  assert.equal((await post('/send', body)).status, 200)
  assert.equal((await post('/send', body)).status, 200)
  // even with the file gone: the stored message names the upload
  fs.rmSync(path.join(mediaDir, sha.slice(0, 2), sha.slice(2)))
  assert.equal((await post('/send', body)).status, 200)
  assert.equal(await uploads(), before + 1, 'uploaded once')
  await sleep(300)
  const entries = (await inbox(emu, CONTACT)).filter((m) => m.id === id)
  assert.equal(entries.length, 1, 'the contact sees one message')
  assert.equal(entries[0].media.sha256, sha)
})

test('two sends of one id at once (the gateway retrying a slow upload): one upload, one message', async () => {
  const bytes = Buffer.concat([pdf, randomBytes(200000)])
  const sha = store(bytes)
  const id = nextId()
  const before = await uploads()
  const content = { media: parseMedia({ kind: 'document', sha256: sha, mimetype: 'application/pdf', filename: 'big.pdf' }, () => {}) }
  const results = await Promise.allSettled([session.send(CONTACT, content, id), session.send(CONTACT, content, id)])
  // the first may be superseded by the second (the same id again); the second is sent
  assert.equal(results[1].status, 'fulfilled', String(results[1].reason))
  assert.equal(await uploads(), before + 1, 'uploaded once')
  await inboxEntry(emu, CONTACT, id)
  await sleep(300)
  assert.equal((await inbox(emu, CONTACT)).filter((m) => m.id === id).length, 1)
})

test('a file not in the media store: 422 media_missing, nothing uploaded or sent', async () => {
  const id = nextId()
  const before = await uploads()
  const r = await post('/send', { phone_number: CONTACT, id, media: { kind: 'image', sha256: sha256hex(randomBytes(10)), mimetype: 'image/png' } })
  assert.equal(r.status, 422)
  assert.equal(r.body.error.code, 'media_missing')
  assert.equal(await uploads(), before)
  assert.equal((await inbox(emu, CONTACT)).filter((m) => m.id === id).length, 0)
})

test('a file that does not hash to its name: 422 media_corrupt, nothing uploaded or sent; batch items too', async () => {
  const bytes = Buffer.concat([png, randomBytes(500)])
  const sha = store(bytes)
  const damaged = Buffer.from(bytes)
  damaged[damaged.length - 1] ^= 1
  fs.writeFileSync(path.join(mediaDir, sha.slice(0, 2), sha.slice(2)), damaged)
  const id = nextId()
  const before = await uploads()
  const r = await post('/send', { phone_number: CONTACT, id, media: { kind: 'image', sha256: sha, mimetype: 'image/png' } })
  assert.equal(r.status, 422, JSON.stringify(r.body))
  assert.equal(r.body.error.code, 'media_corrupt')
  // in a batch: the item fails with it, and the rest are not attempted
  const textId = nextId()
  const batch = await post('/send/batch', { messages: [{ phone_number: CONTACT, id: nextId(), media: { kind: 'image', sha256: sha, mimetype: 'image/png' } }, { phone_number: CONTACT, id: textId, text: 'after' }] })
  assert.equal(batch.status, 200)
  assert.equal(batch.body.results[0].error.code, 'media_corrupt')
  assert.equal(batch.body.results[1].error.code, 'not_attempted')
  assert.equal(await uploads(), before)
  assert.equal((await inbox(emu, CONTACT)).filter((m) => m.id === id).length, 0)
})

test('a file that changes after its check: the bytes Baileys encrypted are checked too, nothing is sent or stored', async () => {
  const bytes = Buffer.concat([png, randomBytes(700)])
  const sha = store(bytes)
  const file = path.join(mediaDir, sha.slice(0, 2), sha.slice(2))
  const damaged = Buffer.from(bytes)
  damaged[damaged.length - 1] ^= 1
  const realOpen = fsp.open
  fsp.open = async (...args) => { // the second read (Baileys') finds other bytes under the same name
    const handle = await realOpen(...args)
    const read = handle.createReadStream.bind(handle)
    let reads = 0
    handle.createReadStream = (options) => {
      if (++reads === 2) fs.writeFileSync(file, damaged)
      return read(options)
    }
    return handle
  }
  const id = nextId()
  let r
  try {
    r = await post('/send', { phone_number: CONTACT, id, media: { kind: 'image', sha256: sha, mimetype: 'image/png' } })
  } finally {
    fsp.open = realOpen
  }
  assert.equal(r.status, 422, JSON.stringify(r.body))
  assert.equal(r.body.error.code, 'media_corrupt')
  assert.equal(session.sentMessages.get(id), undefined, 'not stored')
  // the file mended, the same id goes out (and is uploaded again: nothing of the bad one was kept)
  fs.writeFileSync(file, bytes)
  assert.equal((await post('/send', { phone_number: CONTACT, id, media: { kind: 'image', sha256: sha, mimetype: 'image/png' } })).status, 200)
  assert.equal((await inboxEntry(emu, CONTACT, id)).media.sha256, sha)
})

test('a batch mixes text and media, in order', async () => {
  const sha = store(Buffer.concat([webp, randomBytes(10)]))
  const ids = [nextId(), nextId(), nextId()]
  const r = await post('/send/batch', {
    messages: [
      { phone_number: CONTACT, id: ids[0], text: 'before the sticker' },
      { phone_number: CONTACT, id: ids[1], media: { kind: 'sticker', sha256: sha, mimetype: 'image/webp' } },
      { phone_number: CONTACT, id: ids[2], text: 'after the sticker' }
    ]
  })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body.results, ids.map((id) => ({ id, status: 'sent' })))
  assert.equal((await inboxEntry(emu, CONTACT, ids[1])).media.sha256, sha)
  assert.equal((await inboxEntry(emu, CONTACT, ids[2])).text, 'after the sticker')
})

test('bad requests are 400 before anything is read or uploaded', async () => {
  const sha = store(png)
  const ok = { kind: 'image', sha256: sha, mimetype: 'image/png' }
  const before = await uploads()
  const cases = [
    [{ text: 'hi', media: ok }, 'invalid_message'],
    [{}, 'invalid_message'],
    [{ text: null, media: ok }, 'invalid_message'],
    [{ media: null }, 'invalid_media'],
    [{ media: [] }, 'invalid_media'],
    [{ media: { ...ok, kind: 'gif' } }, 'invalid_media'],
    [{ media: { ...ok, sha256: sha.toUpperCase() } }, 'invalid_media'],
    [{ media: { ...ok, sha256: `../../${sha.slice(6)}` } }, 'invalid_media'],
    [{ media: { ...ok, sha256: undefined } }, 'invalid_media'],
    [{ media: { ...ok, mimetype: 'png' } }, 'invalid_media'],
    [{ media: { ...ok, mimetype: undefined } }, 'invalid_media'],
    [{ media: { ...ok, ptt: true } }, 'invalid_media'],
    [{ media: { kind: 'audio', sha256: sha, mimetype: 'audio/ogg', ptt: 'yes' } }, 'invalid_media'],
    [{ media: { kind: 'audio', sha256: sha, mimetype: 'audio/ogg', caption: 'no' } }, 'invalid_media'],
    [{ media: { kind: 'sticker', sha256: sha, mimetype: 'image/webp', caption: 'no' } }, 'invalid_media'],
    [{ media: { ...ok, filename: 'a.png' } }, 'invalid_media'],
    [{ media: { kind: 'document', sha256: sha, mimetype: 'application/pdf', filename: '' } }, 'invalid_media'],
    [{ media: { kind: 'document', sha256: sha, mimetype: 'application/pdf', filename: 'a\nb' } }, 'invalid_media'],
    [{ media: { ...ok, caption: 5 } }, 'invalid_media'],
    [{ media: { ...ok, path: '/etc/passwd' } }, 'unknown_field'],
    [{ media: { ...ok, url: 'https://example.com/x.png' } }, 'unknown_field']
  ]
  for (const [body, code] of cases) {
    for (const [route, wrap] of [['/send', (b) => ({ phone_number: CONTACT, id: nextId(), ...b })],
      ['/send/batch', (b) => ({ messages: [{ phone_number: CONTACT, id: nextId(), ...b }] })]]) {
      const r = await post(route, wrap(body))
      assert.equal(r.status, 400, `${route} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`)
      assert.equal(r.body.error.code, code, `${route} ${JSON.stringify(body)}`)
    }
  }
  assert.equal(await uploads(), before)
})

test('text sends are unchanged', async () => {
  const id = nextId()
  const r = await post('/send', { phone_number: CONTACT, id, text: 'plain text' })
  assert.deepEqual(r.body, { id, status: 'sent' })
  const entry = await inboxEntry(emu, CONTACT, id)
  assert.equal(entry.text, 'plain text')
  assert.equal(entry.media, undefined)
})

test('WA_SANDBOX_MEDIA_CA is refused outside the sandbox, and must be a readable PEM; WA_MEDIA_DIR defaults to the data dir', async () => {
  const ca = path.join(tmpDir('wa-media-ca-'), 'ca.pem')
  fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n')
  assert.throws(() => readSettings({ WA_SANDBOX_MEDIA_CA: ca }), SettingsError)
  assert.throws(() => readSettings({ WA_SANDBOX_MEDIA_CA: ca, WA_SANDBOX: 'false' }), SettingsError)
  assert.throws(() => readSettings({ WA_SANDBOX_MEDIA_CA: `${ca}.absent`, WA_SANDBOX: 'true' }), SettingsError)
  assert.equal(readSettings({ WA_SANDBOX_MEDIA_CA: ca, WA_SANDBOX: 'true' }).sandboxMediaCa.file, ca)
  assert.equal(readSettings({}).sandboxMediaCa, null)
  assert.equal(readSettings({ WA_DATA_DIR: '/srv/wa' }).mediaDir, '/srv/wa/media')
  assert.equal(readSettings({ WA_DATA_DIR: '/srv/wa', WA_MEDIA_DIR: '/m' }).mediaDir, '/m')
})

test('openMedia: the bytes Baileys hashed are checked again, and a read that fails never errors the stream', async () => {
  const bytes = randomBytes(100000)
  const sha = store(bytes)
  const file = await openMedia(mediaDir, sha)
  const chunks = []
  for await (const c of file.stream) chunks.push(c)
  assert.ok(Buffer.concat(chunks).equals(bytes))
  file.check({ imageMessage: { fileSha256: createHash('sha256').update(bytes).digest() } }, 'image')
  assert.throws(() => file.check({ imageMessage: { fileSha256: Buffer.alloc(32) } }, 'image'), { code: 'media_corrupt' })
  assert.throws(() => file.check({ imageMessage: {} }, 'image'), { code: 'media_corrupt' })
  assert.throws(() => file.check({ videoMessage: { fileSha256: createHash('sha256').update(bytes).digest() } }, 'image'), { code: 'media_corrupt' })
  file.close()
  // the file changes between the check and Baileys' read: Baileys' own hash differs, and the send fails
  const again = await openMedia(mediaDir, sha)
  fs.writeFileSync(path.join(mediaDir, sha.slice(0, 2), sha.slice(2)), randomBytes(100000)) // same inode
  const read = []
  for await (const c of again.stream) read.push(c)
  assert.throws(() => again.check({ imageMessage: { fileSha256: createHash('sha256').update(Buffer.concat(read)).digest() } }, 'image'), { code: 'media_corrupt' })
  again.close()
  // a read error ends the stream cleanly (no 'error' event for Baileys, which would crash on it), and is named
  const source = new Readable({ read () {} })
  const { stream, failure } = endOnError(source)
  const errors = []
  stream.on('error', (e) => errors.push(e))
  const got = []
  stream.on('data', (c) => got.push(c))
  const ended = new Promise((resolve) => { stream.on('end', resolve); stream.on('close', resolve) })
  source.push(Buffer.from('abc'))
  await sleep(10)
  source.destroy(Object.assign(new Error('EIO'), { code: 'EIO' }))
  await ended
  assert.deepEqual(errors, [])
  assert.equal(stream.readableEnded, true, 'ended, not destroyed')
  assert.equal(Buffer.concat(got).toString(), 'abc')
  assert.equal(failure().code, 'EIO')
  // a directory where the file should be: 500 worker_error, not a crash
  const dirSha = sha256hex(randomBytes(8))
  fs.mkdirSync(path.join(mediaDir, dirSha.slice(0, 2), dirSha.slice(2)), { recursive: true })
  await assert.rejects(openMedia(mediaDir, dirSha), { code: 'worker_error' })
})
