// The emulator's media host with the REAL Baileys client: media_conn, uploads of what the account sends
// (the contact's phone downloads, verifies and records the sha256), media that a contact sends
// (Baileys downloads it from the host media_conn named), tampered blobs, expiry and the media retry.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import https from 'node:https'
import { createHash, randomBytes } from 'node:crypto'
import { Agent } from 'undici'
import { downloadMediaMessage, downloadContentFromMessage, encryptedStream, proto } from 'baileys'
import { startEmulator, trustEmulator, pairDevice, inboxEntry, until, tmpDir } from './emulator-helpers.js'
import { encryptMedia, decryptMedia, MediaVerifyError, encryptRetryPayload, decryptRetryPayload } from '../emulator/media-crypto.js'
import fs from 'node:fs'
import path from 'node:path'

const ACCOUNT = '+15550007111'
const CONTACT = '+15550007222'
const CONTACT_JID = '15550007222@s.whatsapp.net'
const sha256hex = (b) => createHash('sha256').update(b).digest('hex')
// Baileys' updateMediaMessage waits for the mediaretry notification with no time limit
const withTimeout = (promise, ms, what) => {
  let timer
  const late = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

describe('media crypto (WhatsApp\'s format, as Baileys writes it)', () => {
  const plain = randomBytes(5000)
  for (const kind of ['image', 'video', 'audio', 'document', 'sticker']) {
    test(`${kind}: the same bytes and hashes as Baileys' encryptedStream for the same media key`, async () => {
      const theirs = await encryptedStream(plain, kind)
      const ours = encryptMedia(plain, kind, theirs.mediaKey)
      assert.ok(ours.enc.equals(fs.readFileSync(theirs.encFilePath)), 'same encrypted file')
      fs.rmSync(theirs.encFilePath, { force: true })
      assert.ok(ours.fileSha256.equals(theirs.fileSha256))
      assert.ok(ours.fileEncSha256.equals(theirs.fileEncSha256))
      assert.ok(decryptMedia(ours.enc, kind, ours).equals(plain))
    })
  }

  test('a flipped byte, a flipped MAC or a wrong fileSha256 is refused with its reason', () => {
    const file = encryptMedia(plain, 'image')
    const damaged = Buffer.from(file.enc)
    damaged[100] ^= 1
    const code = (fn) => { try { fn(); return 'accepted' } catch (err) { assert.ok(err instanceof MediaVerifyError, err.message); return err.code } }
    assert.equal(code(() => decryptMedia(damaged, 'image', file)), 'enc_sha256_mismatch')
    // without the fileEncSha256 to compare, the MAC catches it
    assert.equal(code(() => decryptMedia(damaged, 'image', { ...file, fileEncSha256: undefined })), 'mac_mismatch')
    const badMac = Buffer.from(file.enc)
    badMac[badMac.length - 1] ^= 1
    assert.equal(code(() => decryptMedia(badMac, 'image', { ...file, fileEncSha256: undefined })), 'mac_mismatch')
    assert.equal(code(() => decryptMedia(file.enc, 'video', file)), 'mac_mismatch', 'video keys do not open an image')
    assert.equal(code(() => decryptMedia(file.enc, 'image', { ...file, fileSha256: Buffer.alloc(32) })), 'sha256_mismatch')
  })

  test('media-retry payloads: GCM with the message id as additional data', () => {
    const key = randomBytes(32)
    const { ciphertext, iv } = encryptRetryPayload(Buffer.from('x'), key, 'ID1')
    assert.equal(decryptRetryPayload(ciphertext, iv, key, 'ID1').toString(), 'x')
    assert.throws(() => decryptRetryPayload(ciphertext, iv, key, 'ID2'))
  })
})

describe('media host with the real Baileys client', () => {
  let emu
  let client
  let media // GET /media
  let dispatcher // trusts the emulator's media CA (downloads: Baileys' fetch)
  const upserted = (id) => client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id), 10000, `upsert ${id}`)
  const download = (msg) => downloadMediaMessage(msg, 'buffer', { options: { dispatcher } })
  const contactSends = async (body) => {
    const r = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, ...body })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body
  }

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20' } })
    trustEmulator(emu)
    media = (await emu.api('GET', '/media')).body
    dispatcher = new Agent({ connect: { ca: media.ca_pem } })
    // uploads: Baileys' node https request with the socket config's fetchAgent
    const paired = await pairDevice(emu, ACCOUNT, { settle: true, config: { fetchAgent: new https.Agent({ ca: media.ca_pem }) } })
    client = paired.client
  })

  after(async () => {
    await client?.end()
    await dispatcher?.close()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('media_conn names the emulator\'s HTTPS host, with a port', async () => {
    const conn = await client.sock.refreshMediaConn(true)
    assert.equal(conn.hosts[0].hostname, `127.0.0.1:${new URL(media.url).port}`)
    assert.ok(conn.auth && conn.ttl > 0)
    assert.equal(client.sock.getMediaHost(), conn.hosts[0].hostname)
  })

  const outgoing = [
    ['image', (b) => ({ image: b, caption: 'a picture' }), { mimetype: 'image/jpeg', caption: 'a picture' }],
    ['video', (b) => ({ video: b, caption: 'a film' }), { mimetype: 'video/mp4', caption: 'a film' }],
    ['audio', (b) => ({ audio: b, ptt: true, mimetype: 'audio/ogg; codecs=opus', seconds: 3 }), { mimetype: 'audio/ogg; codecs=opus', ptt: true }],
    ['document', (b) => ({ document: b, fileName: 'report.pdf', mimetype: 'application/pdf' }), { mimetype: 'application/pdf', filename: 'report.pdf' }],
    ['sticker', (b) => ({ sticker: b }), { mimetype: 'image/webp' }]
  ]
  for (const [kind, content, expected] of outgoing) {
    test(`the account sends ${kind}: uploaded, and the contact's phone decrypts the same bytes`, async () => {
      const bytes = randomBytes(3000 + Math.floor(Math.random() * 2000))
      const sent = await client.sock.sendMessage(CONTACT_JID, content(bytes))
      const entry = await inboxEntry(emu, CONTACT, sent.key.id)
      assert.deepEqual(entry.media, { kind, size: bytes.length, sha256: sha256hex(bytes), ...expected })
      assert.equal(entry.error, null)
    })
  }

  const incoming = [
    { kind: 'image', mimetype: 'image/png', caption: 'hello' },
    { kind: 'video', caption: 'clip' },
    { kind: 'audio', ptt: true },
    { kind: 'document', filename: 'notes.txt', mimetype: 'text/plain', caption: 'read me' },
    { kind: 'sticker' }
  ]
  for (const spec of incoming) {
    test(`a contact sends ${spec.kind}${spec.ptt ? ' (voice note)' : ''}: Baileys downloads identical bytes from the media host`, async () => {
      const bytes = randomBytes(4000)
      const sent = await contactSends({ media: { ...spec, base64: bytes.toString('base64') } })
      assert.equal(sent.media.sha256, sha256hex(bytes))
      const msg = await upserted(sent.id)
      const content = msg.message[`${spec.kind}Message`]
      assert.ok(content, `a ${spec.kind}Message`)
      assert.equal(new URL(content.url).host, new URL(media.url).host, 'the url names the media host')
      assert.equal(content.directPath, sent.media.direct_path)
      if (spec.caption) assert.equal(content.caption, spec.caption)
      if (spec.ptt) assert.equal(content.ptt, true)
      if (spec.filename) assert.equal(content.fileName, spec.filename)
      const got = await download(msg)
      assert.equal(sha256hex(got), sha256hex(bytes))
      assert.equal(Buffer.from(content.fileSha256).toString('hex'), sha256hex(got))
      if (spec.kind === 'document') { // a byte range (Baileys asks for whole AES blocks with Range)
        const part = downloadContentFromMessage(content, 'document', { startByte: 100, endByte: 1000, options: { dispatcher } })
        const chunks = []
        for await (const c of await part) chunks.push(c)
        assert.ok(Buffer.concat(chunks).equals(bytes.subarray(100, 1000)))
      }
    })
  }

  test('bad media requests are refused before anything is uploaded', async () => {
    const bad = async (body, code) => {
      const r = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, ...body })
      assert.equal(r.status, 400, JSON.stringify(r.body))
      assert.equal(r.body.error.code, code)
    }
    const uploads = (await emu.api('GET', '/media')).body.paths
    await bad({ media: { kind: 'gif', base64: 'AAAA' } }, 'invalid_media')
    await bad({ media: { kind: 'image', base64: '' } }, 'invalid_media')
    await bad({ media: { kind: 'image', base64: 'not base64!' } }, 'invalid_media')
    await bad({ media: { kind: 'video', base64: 'AAAA', ptt: true } }, 'invalid_media')
    await bad({ text: 'hi', media: { kind: 'image', base64: 'AAAA' } }, 'invalid_text')
    // WhatsApp's 16 MB for media other than documents (a document may be larger: worker-media-receive.test.js)
    await bad({ media: { kind: 'image', base64: Buffer.alloc(16 * 1024 * 1024 + 1).toString('base64') } }, 'invalid_media')
    await bad({ media: { kind: 'document', base64: Buffer.alloc(64 * 1024 * 1024).toString('base64') } }, 'invalid_media')
    await bad({ media: { kind: 'sticker', base64: 'AAAA', wrapper: 'document_with_caption' } }, 'invalid_media')
    await bad({ media: { kind: 'image', base64: 'AAAA', wrapper: 'parcel' } }, 'invalid_media')
    assert.equal((await emu.api('GET', '/media')).body.paths, uploads)
  })

  test('a tampered upload: the contact\'s phone records the failed check on the entry', async () => {
    const fault = await emu.api('POST', '/faults', { kind: 'media_tamper' }) // the next upload is stored damaged
    assert.deepEqual(fault.body, { applied_to: 1 })
    const sent = await client.sock.sendMessage(CONTACT_JID, { image: randomBytes(2000) })
    const entry = await inboxEntry(emu, CONTACT, sent.key.id)
    assert.equal(entry.media.kind, 'image')
    assert.equal(entry.media.sha256, null)
    assert.equal(entry.media.error.code, 'enc_sha256_mismatch')
  })

  test('a tampered blob reaches Baileys undetected: its download checks neither the MAC nor the hashes', async () => {
    const bytes = randomBytes(4000)
    const sent = await contactSends({ media: { kind: 'image', base64: bytes.toString('base64') } })
    const msg = await upserted(sent.id)
    assert.deepEqual((await emu.api('POST', '/faults', { kind: 'media_tamper', direct_path: sent.media.direct_path })).body, { applied_to: 1 })
    const got = await download(msg)
    assert.notEqual(sha256hex(got), Buffer.from(msg.message.imageMessage.fileSha256).toString('hex'), 'the caller must compare fileSha256 itself')
  })

  test('upload refusals: unknown auth 401, a body that is not its token 400', async () => {
    const conn = await client.sock.refreshMediaConn(false)
    const body = randomBytes(64)
    const token = createHash('sha256').update(body).digest('base64url')
    const post = (auth, tok, data) => fetch(`${media.url}/mms/image/${tok}?auth=${encodeURIComponent(auth)}&token=${tok}`, { method: 'POST', body: data, dispatcher })
    assert.equal((await post('nope', token, body)).status, 401)
    assert.equal((await post(conn.auth, token, randomBytes(64))).status, 400)
    const ok = await post(conn.auth, token, body)
    assert.equal(ok.status, 200)
    const { url, direct_path: directPath } = await ok.json()
    assert.ok(directPath.startsWith('/v/t62.7118-24/') && url.startsWith(media.url + directPath))
    const got = await fetch(media.url + directPath, { dispatcher })
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(body))
    assert.equal((await fetch(`${media.url}/v/t62.7118-24/1_2_3_n.enc?oh=x`, { dispatcher })).status, 404)
  })

  test('expired media answers 410; the media retry brings it back under a new directPath', async () => {
    const bytes = randomBytes(6000)
    const sent = await contactSends({ media: { kind: 'video', base64: bytes.toString('base64') } })
    const msg = await upserted(sent.id)
    assert.deepEqual((await emu.api('POST', '/faults', { kind: 'media_expire', direct_path: sent.media.direct_path })).body, { applied_to: 1 })
    const err = await download(msg).then(() => null, (e) => e)
    assert.equal(err?.output?.statusCode, 410)
    // updateMediaMessage names the new URL after the socket's media host, which only a media_conn query
    // sets (else https://mmg.whatsapp.net): a worker that never uploaded must ask for media_conn first
    await client.sock.refreshMediaConn(false)
    const updated = await withTimeout(client.sock.updateMediaMessage(msg), 5000, 'the mediaretry notification') // <receipt type=server-error> ->
    const path = updated.message.videoMessage.directPath
    assert.notEqual(path, sent.media.direct_path)
    assert.equal(new URL(updated.message.videoMessage.url).host, new URL(media.url).host)
    assert.equal(sha256hex(await download(updated)), sha256hex(bytes))
    const counters = (await emu.api('GET', '/')).body.media
    assert.ok(counters.media_retry_requests >= 1 && counters.media_reuploads >= 1)
    // Baileys acknowledges the notification (<ack class=notification type=mediaretry>): the server drops it
    await until(async () => (await emu.api('GET', '/')).body.accounts[0].devices.every((d) => d.unacked === 0), 5000, 'the notification acknowledged')
  })

  test('a media retry for a message the phone does not hold fails with its error (code 2 -> 404)', async () => {
    const fake = {
      key: { remoteJid: CONTACT_JID, fromMe: false, id: 'FAKE' + randomBytes(6).toString('hex').toUpperCase() },
      message: proto.Message.fromObject({ imageMessage: { mediaKey: randomBytes(32), directPath: '/v/t62.7118-24/1_2_3_n.enc', url: media.url } })
    }
    const err = await withTimeout(client.sock.updateMediaMessage(fake), 5000, 'the mediaretry notification').then(() => null, (e) => e)
    assert.match(String(err?.message), /Failed to re-upload media \(2\)/)
    assert.equal(err.output.statusCode, 404)
  })
})

describe('media host across a restart (a media dir next to the state file)', () => {
  test('the CA, the blobs and their paths outlive the emulator', async () => {
    const dir = tmpDir()
    const env = { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json'), WA_EMULATOR_RECEIPT_DELAY_MS: '20' }
    let emu = await startEmulator({ env })
    let client
    let dispatcher
    try {
      trustEmulator(emu)
      const media = (await emu.api('GET', '/media')).body
      assert.equal(media.ca_file, path.join(dir, 'wa-emulator-media', 'media-ca.pem'))
      dispatcher = new Agent({ connect: { ca: fs.readFileSync(media.ca_file) } })
      client = (await pairDevice(emu, ACCOUNT, { settle: true })).client
      const bytes = randomBytes(3000)
      const sent = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, media: { kind: 'document', base64: bytes.toString('base64'), filename: 'a.bin' } })
      const msg = await client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === sent.body.id), 10000, 'the upsert')
      await client.end()
      assert.equal((await emu.stop()).code, 0)
      emu = await startEmulator({ env }) // a new port and a new leaf certificate, the same CA
      const url = new URL(msg.message.documentMessage.url)
      url.port = new URL((await emu.api('GET', '/media')).body.url).port
      const got = await downloadMediaMessage({ ...msg, message: { documentMessage: { ...msg.message.documentMessage, url: url.href } } }, 'buffer', { options: { dispatcher } })
      assert.equal(sha256hex(got), sha256hex(bytes))
    } finally {
      await client?.end()
      await dispatcher?.close()
      await emu.stop()
    }
  })
})
