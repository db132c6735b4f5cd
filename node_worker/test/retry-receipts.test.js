// The worker's session (src/session.js) with the real Baileys against the emulator: retry receipts
// answered from the durable store of sent messages (getMessage), and message statuses straight from
// the socket (server ack, receipts) instead of from Baileys' buffered events.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startEmulator, trustEmulator, tmpDir, until } from './emulator-helpers.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'
import { SentMessages } from '../src/sent-messages.js'
import { proto } from 'baileys'

const ACCOUNT = '+15550003333'

let emu
before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
})
after(async () => { await emu?.stop() })

const workers = new Set()
after(async () => { for (const w of workers) await w.session.shutdown().catch(() => {}) })

/** one worker session on dataDir (a "worker process": a second one on the same dir is a restart) */
const startWorker = (dataDir, env = {}) => {
  const lines = []
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  const journal = new EventJournal({ capacity: 1000 })
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent', ...env })
  const session = new WhatsAppSession({ settings, logger, journal })
  const worker = {
    session,
    journal,
    lines,
    async stop () { workers.delete(worker); await session.shutdown() },
    statuses: (id) => journal.after(0).filter((e) => e.type === 'message.status' && e.id === id).map((e) => e.status),
    waitStatus: (id, status, ms = 3000) => until(() => worker.statuses(id).includes(status), ms, `status ${status} of ${id}`),
    waitConnected: (ms = 20000) => until(() => session.state === 'connected', ms, 'connected')
  }
  workers.add(worker)
  return worker
}

let dataDir
let worker
const pairedWorker = async () => {
  if (worker) return worker
  dataDir = tmpDir('wa-retry-')
  worker = startWorker(dataDir)
  await worker.session.start()
  const qr = await until(() => worker.session.state === 'qr' && worker.session.qr, 15000, 'qr')
  const scan = await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr })
  assert.equal(scan.status, 200, JSON.stringify(scan.body))
  await worker.waitConnected()
  return worker
}

/** a restart of the worker: the old session ends, a new one on the same data dir logs back in */
const restartWorker = async () => {
  await worker.stop()
  worker = startWorker(dataDir)
  await worker.session.resume()
  await worker.waitConnected()
  return worker
}

const inboxEntry = (phone, id, accept = () => true) => until(async () =>
  (await emu.api('GET', `/contacts/${encodeURIComponent(phone)}/messages`)).body.find((m) => m.id === id && accept(m)),
8000, `message ${id} decrypted at ${phone}`)

const contact = async (phone, fields) => {
  const res = await emu.api('POST', '/contacts', { phone_number: phone, ...fields })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

const overviewContact = async (phone) => (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === phone)

test('a contact that cannot decrypt sends a retry receipt; the message is re-sent and shown once, decrypted', async () => {
  const w = await pairedWorker()
  const phone = '+15550004441'
  assert.deepEqual(await contact(phone, { fail_decrypt_once: true }), {
    phone_number: phone, lid: (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === phone).lid, on_whatsapp: true, fail_decrypt_once: true, retry_receipt: 'at_once', addressing: 'pn', signed_prekey_signature: 'valid'
  })
  for (const [body, code] of [[{ fail_decrypt_once: 'yes' }, 'invalid_fail_decrypt_once'], [{ retry_receipt: 'later' }, 'invalid_retry_receipt']]) {
    const bad = await emu.api('POST', '/contacts', { phone_number: phone, ...body })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, code)
  }
  const text = 'secret body: retry once 🔁'
  const sent = await w.session.sendText(phone, text, 'RETRYONCE0001')
  assert.deepEqual(sent, { id: 'RETRYONCE0001', status: 'sent' })
  const entry = await inboxEntry(phone, 'RETRYONCE0001')
  assert.equal(entry.text, text)
  assert.equal(entry.retries, 1)
  assert.equal(entry.duplicate_count, 0)
  assert.equal((await overviewContact(phone)).retry_receipts_sent, 1)
  await w.waitStatus('RETRYONCE0001', 'delivered')
  assert.deepEqual(w.statuses('RETRYONCE0001'), ['sent', 'delivered'])
  assert.ok(!w.lines.join('\n').includes('secret body'), 'a message body reached the log')
})

test('a retry receipt that reaches the worker only after its restart is answered from the durable store', async () => {
  let w = await pairedWorker()
  const phone = '+15550004442'
  await contact(phone, { fail_decrypt_once: true, retry_receipt: 'next_login' })
  const text = 'secret body: after a restart'
  await w.session.sendText(phone, text, 'RETRYLATER001')
  await w.waitStatus('RETRYLATER001', 'sent')
  await until(async () => (await overviewContact(phone))?.retry_receipts_sent === 1, 5000, 'the retry receipt')
  assert.equal((await emu.api('GET', `/contacts/${phone}/messages`)).body.length, 0, 'decrypted before the retry')

  w = await restartWorker() // Baileys' recent-message cache is gone with the old socket
  const entry = await inboxEntry(phone, 'RETRYLATER001')
  assert.equal(entry.text, text)
  assert.equal(entry.retries, 1)
  assert.equal(entry.duplicate_count, 0)
  await until(() => w.lines.some((l) => JSON.parse(l).event === 'message.retry_resent'), 3000, 'message.retry_resent logged')
  await w.waitStatus('RETRYLATER001', 'delivered')
  assert.ok(!w.lines.join('\n').includes('secret body'), 'a message body reached the log')
})

test('sent and delivered reach the journal promptly right after a reconnect, with the caller\'s id', async () => {
  let w = await pairedWorker()
  w = await restartWorker()
  const sent = await w.session.sendText('+15550004443', 'hello right after connect', 'PROMPTSTATUS01')
  assert.equal(sent.id, 'PROMPTSTATUS01')
  await w.waitStatus('PROMPTSTATUS01', 'sent', 3000)
  await w.waitStatus('PROMPTSTATUS01', 'delivered', 3000)
  // A read receipt given while the worker is down arrives as an offline node at the next login, and
  // that login's end-of-offline marker comes 20 s late: Baileys holds its messages.update until then.
  await w.stop()
  const read = await emu.api('POST', '/contacts/+15550004443/receipts', { id: 'PROMPTSTATUS01', type: 'read' })
  assert.equal(read.body.delivery, 'queued')
  assert.equal((await emu.api('POST', '/faults', { kind: 'slow_offline', seconds: 20, phone_number: ACCOUNT })).status, 200)
  worker = startWorker(dataDir)
  await worker.session.resume()
  await worker.waitStatus('PROMPTSTATUS01', 'read', 3000)
  assert.deepEqual(worker.statuses('PROMPTSTATUS01'), ['read'])
  await worker.waitConnected()
})

test('a repeated id goes out with the protobuf stored the first time; getMessage answers only its recipient', async () => {
  const w = await pairedWorker()
  const phone = '+15550004444'
  await w.session.sendText(phone, 'first copy', 'SAMEIDTWICE01')
  const first = w.session.sentMessages.get('SAMEIDTWICE01')
  await w.session.sendText(phone, 'first copy', 'SAMEIDTWICE01') // a resend after a crash, say
  const again = w.session.sentMessages.get('SAMEIDTWICE01')
  assert.deepEqual(again.message.messageContextInfo.messageSecret, first.message.messageContextInfo.messageSecret)
  const entry = await inboxEntry(phone, 'SAMEIDTWICE01', (m) => m.duplicate_count === 1)
  assert.equal(entry.text, 'first copy')

  const asked = await w.session.sender.storedMessage({ remoteJid: '15550004444@s.whatsapp.net', id: 'SAMEIDTWICE01', fromMe: true })
  assert.equal(asked.extendedTextMessage.text, 'first copy')
  assert.equal(await w.session.sender.storedMessage({ remoteJid: '15550009999@s.whatsapp.net', id: 'SAMEIDTWICE01', fromMe: true }), undefined)
  assert.equal(await w.session.sender.storedMessage({ remoteJid: '15550004444@s.whatsapp.net', id: 'NEVERSENT0001', fromMe: true }), undefined)
})

test('logout removes the stored message contents with the session', async () => {
  const w = await pairedWorker()
  assert.ok(fs.existsSync(w.session.settings.sentMessagesDir))
  await w.session.logout()
  assert.equal(w.session.state, 'logged_out')
  assert.ok(!fs.existsSync(w.session.settings.sentMessagesDir))
  worker = null
})

test('sent-messages store: bounded by count and age, durable across reopen, removed with the session', async () => {
  const dir = path.join(tmpDir('wa-sent-'), 'sent-messages')
  const msg = (text) => proto.Message.fromObject({ extendedTextMessage: { text } })
  let store = await SentMessages.open({ dir, maxAgeMs: 60000, maxEntries: 3 })
  for (const i of [1, 2, 3, 4]) await store.put(`ID${i}XXXXXX`, '15550001111@s.whatsapp.net', msg(`t${i}`))
  assert.equal(store.get('ID1XXXXXX'), undefined)
  assert.equal(store.get('ID4XXXXXX').message.extendedTextMessage.text, 't4')
  assert.equal(store.size, 3)
  await store.close()
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700)
  for (const f of fs.readdirSync(dir)) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600)
  store = await SentMessages.open({ dir, maxAgeMs: 60000, maxEntries: 3 })
  assert.equal(store.get('ID2XXXXXX').jid, '15550001111@s.whatsapp.net')
  await store.close()
  store = await SentMessages.open({ dir, maxAgeMs: 0, maxEntries: 3 }) // everything is too old now
  assert.equal(store.size, 0)
  await SentMessages.remove(dir)
  assert.ok(!fs.existsSync(dir))
})
