// The worker receives media (issue 24): a contact's image, video, audio, document or sticker (also in the
// containers WhatsApp puts them in) becomes a `message` event with `media` (its descriptor included), and
// POST /media/download stores the decrypted, verified file in WA_MEDIA_DIR under its sha256. The real worker
// process (src/main.js, with the real Baileys) against the emulator: its media host serves the encrypted
// files (trusted through WA_SANDBOX_MEDIA_CA), expires them (media_expire: the phone uploads again on a media
// retry) and damages them (media_tamper). The worker's memory is measured while it downloads a file larger
// than what it may hold, and its log lines are searched for the media keys and captions it must never print.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { linkWorker, startWorker } from './worker-process.js'
const ACCOUNT = '+15550007401'
const CONTACT = '+15550007402'
const CONTACT_JID = '15550007402@s.whatsapp.net'
const sha256hex = (b) => createHash('sha256').update(b).digest('hex')

let emu
let media // the emulator's GET /media
let worker
let mediaDir
const secrets = [] // media keys, captions, paths: never in a log line

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-mrecv-emu-'), WA_EMULATOR_RECEIPT_DELAY_MS: '20' } })
  media = (await emu.api('GET', '/media')).body
  mediaDir = tmpDir('wa-mrecv-store-')
  worker = startWorker(emu, {
    WA_SANDBOX_MEDIA_CA: media.ca_file,
    WA_MEDIA_DIR: mediaDir,
    WA_LOG_LEVEL: 'debug', // every line the worker can print, Baileys' too
    WA_BAILEYS_LOG_LEVEL: 'debug'
  })
  await linkWorker(worker, emu, ACCOUNT)
})

after(async () => {
  if (process.env.WA_TEST_LOG_DUMP) fs.writeFileSync(process.env.WA_TEST_LOG_DUMP, worker?.lines.join('\n') ?? '')
  await worker?.stop()
  await emu?.stop()
})

// a direct path, and its path without the query (the log scrubber may cut blobs out of the query's signature)
const pathForms = (directPath) => [directPath, directPath.split('?')[0]]

// the contact sends `spec` (the emulator's media request); resolves with its answer and the worker's event
async function contactSends (spec, bytes) {
  const sent = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, media: { ...spec, base64: bytes.toString('base64') } })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  assert.equal(sent.body.media.sha256, sha256hex(bytes))
  const event = await until(async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events
    .find((e) => e.type === 'message' && e.id === sent.body.id), 10000, `the message event of ${sent.body.id}`)
  if (event.media?.descriptor) secrets.push(event.media.descriptor.media_key, ...pathForms(event.media.descriptor.direct_path))
  if (spec.caption) secrets.push(spec.caption)
  return { sent: sent.body, event }
}

const download = (event, descriptor = event.media.descriptor) => worker.call('POST', '/media/download', { id: event.id, chat_jid: event.from_jid, kind: event.kind, descriptor })
const stored = (sha) => path.join(mediaDir, sha.slice(0, 2), sha.slice(2))
const emuMedia = async () => (await emu.api('GET', '/')).body.media
const tmpFiles = () => { try { return fs.readdirSync(path.join(mediaDir, 'tmp')) } catch { return [] } }

const KINDS = [
  [{ kind: 'image', mimetype: 'image/png', caption: `a picture ${randomBytes(4).toString('hex')}` }, { ptt: null, filename: null }],
  [{ kind: 'video', caption: `a film ${randomBytes(4).toString('hex')}` }, { mimetype: 'video/mp4', ptt: null, filename: null }],
  [{ kind: 'audio', ptt: true }, { mimetype: 'audio/ogg; codecs=opus', caption: null, filename: null }],
  [{ kind: 'audio' }, { mimetype: 'audio/ogg; codecs=opus', caption: null, filename: null, ptt: false }],
  [{ kind: 'document', mimetype: 'text/plain', filename: 'notes.txt', caption: `read me ${randomBytes(4).toString('hex')}` }, { ptt: null }],
  [{ kind: 'sticker' }, { mimetype: 'image/webp', caption: null, ptt: null, filename: null }]
]
for (const [spec, implied] of KINDS) {
  test(`a contact's ${spec.kind}${spec.ptt ? ' (voice note)' : ''}: a message event with its media, and POST /media/download stores the same bytes`, async () => {
    const bytes = randomBytes(3000 + Math.floor(Math.random() * 3000))
    const { sent, event } = await contactSends(spec, bytes)
    const sha = sha256hex(bytes)
    const { descriptor, ...shown } = event.media
    const { kind, ...fields } = spec
    assert.deepEqual(shown, { kind, size: bytes.length, sha256: sha, seconds: null, width: null, height: null, ...fields, ...implied, ...(spec.ptt ? { ptt: true } : {}) })
    assert.equal(event.kind, kind)
    assert.equal(event.text, spec.caption ?? null, 'text is the caption')
    assert.equal(event.from, CONTACT)
    assert.equal(descriptor.direct_path, sent.media.direct_path)
    assert.equal(new URL(descriptor.url).host, new URL(media.url).host)
    assert.equal(Buffer.from(descriptor.media_key, 'base64').length, 32)
    assert.equal(Buffer.from(descriptor.file_sha256, 'base64').toString('hex'), sha)
    assert.equal(Buffer.from(descriptor.file_enc_sha256, 'base64').length, 32)
    assert.equal(descriptor.file_length, bytes.length)
    const r = await download(event)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(r.body, { sha256: sha, size: bytes.length, descriptor })
    assert.ok(fs.readFileSync(stored(sha)).equals(bytes))
    assert.equal(fs.statSync(stored(sha)).mode & 0o777, 0o600)
    assert.equal(fs.statSync(path.dirname(stored(sha))).mode & 0o777, 0o700)
    assert.deepEqual(tmpFiles(), [])
  })
}

const WRAPPED = [
  [{ kind: 'image', wrapper: 'ephemeral', caption: `vanishing ${randomBytes(4).toString('hex')}` }, 'ephemeralMessage'],
  [{ kind: 'video', wrapper: 'view_once', caption: `once ${randomBytes(4).toString('hex')}` }, 'viewOnceMessageV2'],
  [{ kind: 'document', wrapper: 'document_with_caption', filename: 'a.pdf', caption: `with caption ${randomBytes(4).toString('hex')}` }, 'documentWithCaptionMessage']
]
for (const [spec, container] of WRAPPED) {
  test(`a ${spec.kind} in ${container}: unwrapped, the same media and caption, and downloadable`, async () => {
    const bytes = randomBytes(2500)
    const { event } = await contactSends(spec, bytes)
    assert.equal(event.kind, spec.kind)
    assert.equal(event.text, spec.caption)
    assert.equal(event.media.caption, spec.caption)
    assert.equal(event.media.sha256, sha256hex(bytes))
    if (spec.filename) assert.equal(event.media.filename, spec.filename)
    const r = await download(event)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.ok(fs.readFileSync(stored(r.body.sha256)).equals(bytes))
  })
}

test('a text message has no media; the emulator refuses a container that does not fit the kind', async () => {
  const sent = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text: 'plain words' })
  const event = await until(async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events.find((e) => e.id === sent.body.id), 10000, 'the event')
  assert.equal(event.kind, 'text')
  assert.equal(event.text, 'plain words')
  assert.equal(event.media, undefined)
  const bad = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, media: { kind: 'sticker', wrapper: 'view_once', base64: 'AAAA' } })
  assert.equal(bad.status, 400)
  assert.equal(bad.body.error.code, 'invalid_media')
})

test('a repeated download is answered from the store: the media host is not asked again', async () => {
  const bytes = randomBytes(5000)
  const { event } = await contactSends({ kind: 'image' }, bytes)
  const first = await download(event)
  assert.equal(first.status, 200)
  const downloads = (await emuMedia()).downloads
  const again = await Promise.all([download(event), download(event)])
  for (const r of again) assert.deepEqual(r.body, first.body)
  assert.equal((await emuMedia()).downloads, downloads)
})

test('media_expire: the media host answers 410, the phone uploads it again (media retry), and the new path is answered', async () => {
  const bytes = randomBytes(7000)
  const { sent, event } = await contactSends({ kind: 'video' }, bytes)
  assert.deepEqual((await emu.api('POST', '/faults', { kind: 'media_expire', direct_path: sent.media.direct_path })).body, { applied_to: 1 })
  const before = await emuMedia()
  const r = await download(event)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.sha256, sha256hex(bytes))
  assert.ok(fs.readFileSync(stored(r.body.sha256)).equals(bytes))
  assert.notEqual(r.body.descriptor.direct_path, sent.media.direct_path, 'a new direct path')
  assert.equal(new URL(r.body.descriptor.url).host, new URL(media.url).host)
  assert.equal(r.body.descriptor.media_key, event.media.descriptor.media_key, 'the same key')
  secrets.push(...pathForms(r.body.descriptor.direct_path))
  const afterwards = await emuMedia()
  assert.equal(afterwards.media_retry_requests, before.media_retry_requests + 1)
  assert.equal(afterwards.media_reuploads, before.media_reuploads + 1)
  // the returned descriptor works as it is
  fs.rmSync(stored(r.body.sha256))
  const again = await download(event, r.body.descriptor)
  assert.equal(again.status, 200)
  assert.equal((await emuMedia()).media_retry_requests, afterwards.media_retry_requests, 'no second media retry')
})

test('expired, and the phone does not have it: 410 media_gone, nothing stored', async () => {
  const bytes = randomBytes(3000)
  const { sent, event } = await contactSends({ kind: 'image' }, bytes)
  await emu.api('POST', '/faults', { kind: 'media_expire', direct_path: sent.media.direct_path })
  // a message id the phone never saw: it answers the media retry with error 2 (not on the phone)
  const r = await worker.call('POST', '/media/download', { id: `GONE${randomBytes(8).toString('hex').toUpperCase()}`, chat_jid: CONTACT_JID, kind: 'image', descriptor: event.media.descriptor })
  assert.equal(r.status, 410, JSON.stringify(r.body))
  assert.equal(r.body.error.code, 'media_gone')
  assert.equal(fs.existsSync(stored(sha256hex(bytes))), false)
  assert.deepEqual(tmpFiles(), [])
})

test('media_tamper: a damaged file is downloaded twice, then 422 media_corrupt, and nothing is left in WA_MEDIA_DIR', async () => {
  const bytes = randomBytes(20000)
  const { sent, event } = await contactSends({ kind: 'document', filename: 'x.bin' }, bytes)
  assert.deepEqual((await emu.api('POST', '/faults', { kind: 'media_tamper', direct_path: sent.media.direct_path })).body, { applied_to: 1 })
  const before = (await emuMedia()).downloads
  const r = await download(event)
  assert.equal(r.status, 422, JSON.stringify(r.body))
  assert.equal(r.body.error.code, 'media_corrupt')
  assert.equal((await emuMedia()).downloads, before + 2, 'one fresh download after the first failed check')
  assert.equal(fs.existsSync(stored(sha256hex(bytes))), false)
  assert.deepEqual(tmpFiles(), [], 'no temp file left')
})

test('a descriptor whose hashes are not the file\'s (file_sha256, file_enc_sha256, the media key): 422 media_corrupt, nothing stored', async () => {
  const bytes = randomBytes(4000)
  const { event } = await contactSends({ kind: 'image' }, bytes)
  const d = event.media.descriptor
  const other = randomBytes(32).toString('base64')
  for (const field of ['file_sha256', 'file_enc_sha256', 'media_key']) {
    const r = await download(event, { ...d, [field]: other })
    assert.equal(r.status, 422, `${field}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, 'media_corrupt')
  }
  assert.equal(fs.existsSync(stored(sha256hex(bytes))), false)
  assert.equal(fs.existsSync(stored(Buffer.from(other, 'base64').toString('hex'))), false)
  assert.deepEqual(tmpFiles(), [])
})

test('a media host that cannot be reached: 502 media_download_failed', async () => {
  const { event } = await contactSends({ kind: 'sticker' }, randomBytes(1000))
  const closed = await new Promise((resolve) => { const s = http.createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) }) })
  const r = await download(event, { ...event.media.descriptor, url: `https://127.0.0.1:${closed}/x` })
  assert.equal(r.status, 502, JSON.stringify(r.body))
  assert.equal(r.body.error.code, 'media_download_failed')
})

// Downloads a document of `size` bytes while sampling, between its chunks, what the worker holds once its
// garbage is collected (through its inspector) and its RSS then; the peaks above the start.
async function measuredDownload (inspector, size) {
  const bytes = randomBytes(size)
  const { event } = await contactSends({ kind: 'document', filename: 'big.bin', mimetype: 'application/octet-stream' }, bytes)
  const base = await inspector.live()
  const baseRss = worker.rss()
  const peak = { ...base, vmRss: baseRss }
  let samples = 0
  let done = false
  const sampling = (async () => {
    while (!done) {
      const now = await inspector.live()
      samples++
      for (const k of ['rss', 'arrayBuffers', 'heapUsed']) peak[k] = Math.max(peak[k], now[k])
      peak.vmRss = Math.max(peak.vmRss, worker.rss())
    }
  })()
  const r = await download(event).finally(() => { done = true })
  await sampling
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual({ sha256: r.body.sha256, size: r.body.size }, { sha256: sha256hex(bytes), size })
  assert.equal(sha256hex(fs.readFileSync(stored(r.body.sha256))), sha256hex(bytes))
  fs.rmSync(stored(r.body.sha256))
  const grown = {
    held: (peak.arrayBuffers - base.arrayBuffers) + (peak.heapUsed - base.heapUsed),
    rss: Math.max(peak.rss - base.rss, peak.vmRss - baseRss),
    samples
  }
  const mb = (n) => (n / 1e6).toFixed(1)
  console.log(`# a ${mb(size)} MB file, ${samples} samples: held +${mb(grown.held)} MB (buffers and heap after GC), RSS +${mb(grown.rss)} MB`)
  return grown
}

// V8 frees the buffers of a download only when its garbage is collected, which it may put off until some
// 64 MB of them are waiting: a streaming download would then look like one that holds the file. The
// samples are therefore taken with the garbage collected (the inspector's collectGarbage) between chunks, and
// the first download's one-time costs (the TLS session, code, a grown heap) are paid before measuring.
test('a large document streams: the worker\'s RSS and what it holds grow far less than the file', async () => {
  const inspector = await worker.inspector()
  try {
    await measuredDownload(inspector, 2 * 1000 * 1000)
    const size = 56 * 1000 * 1000 // the emulator takes documents up to 64 MiB
    const grown = await measuredDownload(inspector, size)
    assert.ok(grown.samples >= 5, `only ${grown.samples} samples during the download`)
    // (`held` is shown, not bounded: buffers freed by a collection are released by a background sweeper,
    // so process.memoryUsage() right after it may count some still)
    assert.ok(grown.rss < size / 3, `the worker's RSS grew by ${grown.rss} bytes while downloading a file of ${size}`)
  } finally {
    inspector.close()
  }
})

test('bad bodies are 400 and change nothing', async () => {
  const { event } = await contactSends({ kind: 'image' }, randomBytes(1000))
  const ok = { id: event.id, chat_jid: event.from_jid, kind: 'image', descriptor: event.media.descriptor }
  const d = ok.descriptor
  const downloads = (await emuMedia()).downloads
  const cases = [
    [{ ...ok, extra: 1 }, 'unknown_field'],
    [{ ...ok, descriptor: { ...d, path: '/etc/passwd' } }, 'unknown_field'],
    ['[]', 'invalid_json'],
    ['{"id":', 'invalid_json'],
    [{}, 'invalid_media'],
    [{ ...ok, id: undefined }, 'invalid_media'],
    [{ ...ok, id: 'a b' }, 'invalid_media'],
    [{ ...ok, id: 5 }, 'invalid_media'],
    [{ ...ok, chat_jid: '123@g.us' }, 'invalid_media'],
    [{ ...ok, chat_jid: null }, 'invalid_media'],
    [{ ...ok, kind: 'gif' }, 'invalid_media'],
    [{ ...ok, descriptor: null }, 'invalid_media'],
    [{ ...ok, descriptor: [] }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, media_key: undefined } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, media_key: randomBytes(31).toString('base64') } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, media_key: `${d.media_key}!` } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, file_sha256: 'AAAA' } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, file_enc_sha256: null } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, direct_path: 'v/relative' } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, direct_path: '/v/a b' } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, direct_path: null, url: null } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, url: d.url.replace('https:', 'http:') } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, url: 'not a url' } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, file_length: -1 } }, 'invalid_media'],
    [{ ...ok, descriptor: { ...d, file_length: '1000' } }, 'invalid_media']
  ]
  for (const [body, code] of cases) {
    const r = await worker.call('POST', '/media/download', body)
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 200)}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, code, JSON.stringify(body).slice(0, 200))
  }
  assert.equal((await worker.call('POST', '/accounts/default/media/download', { ...ok, extra: 1 })).body.error.code, 'unknown_field')
  assert.equal((await worker.call('POST', '/media/download?x=1', ok)).body.error.code, 'unknown_field')
  assert.equal((await emuMedia()).downloads, downloads, 'nothing was downloaded')
  assert.equal(fs.existsSync(stored(event.media.sha256)), false)
})

test('the worker\'s log lines never name a media key, a caption or a direct path', async () => {
  assert.ok(secrets.length > 20)
  assert.ok(worker.lines.some((l) => l.includes('"media.downloaded"')), 'the downloads were logged')
  assert.ok(worker.lines.some((l) => l.includes('"media.download_failed"')))
  const log = worker.lines.join('\n')
  for (const secret of secrets) {
    const forms = [secret]
    if (/^[A-Za-z0-9+/]+=*$/.test(secret) && secret.length === 44) {
      const raw = Buffer.from(secret, 'base64')
      forms.push(raw.toString('hex'), raw.toString('base64url'))
    }
    for (const form of forms) assert.ok(!log.includes(form), `a log line names ${form.slice(0, 16)}...`)
  }
})

test('without a connection: a stored file is still answered, anything else is the usual 409 not_connected', async () => {
  const { event: stored1 } = await contactSends({ kind: 'image' }, randomBytes(1500))
  const { event: pending } = await contactSends({ kind: 'image' }, randomBytes(1500))
  assert.equal((await download(stored1)).status, 200)
  assert.equal((await worker.call('POST', '/disconnect', {})).status, 200)
  const again = await download(stored1)
  assert.equal(again.status, 200, JSON.stringify(again.body))
  const r = await download(pending)
  assert.equal(r.status, 409, JSON.stringify(r.body))
  assert.equal(r.body.error.code, 'not_connected')
  assert.equal(fs.existsSync(stored(pending.media.sha256)), false)
})
