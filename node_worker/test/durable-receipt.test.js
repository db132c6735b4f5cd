// Durable before acknowledged (patches/baileys+7.0.0-rc14+002+durable-before-receipt.patch): the real
// Baileys, through the worker's session, against the emulator. WhatsApp must not hear "received" for
// a contact's message before the worker's event journal has it on disk.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startEmulator, trustEmulator, tmpDir, until, sleep } from './emulator-helpers.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'

const ACCOUNT = '+15550003401'
const CONTACT = '+15550003402'

let emu
let session
let journal
let dataDir
const gates = [] // journal writes of inbound messages, held until the test releases them
const lines = [] // the worker's log, shown when the test fails

before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
  dataDir = tmpDir('wa-durable-')
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  journal = await EventJournal.open({ dir: settings.eventsDir, capacity: 1000, logger })
  const add = journal.add.bind(journal) // the journal's one write (push() goes through it)
  journal.add = (type, fields, id) => {
    if (type !== 'message') return add(type, fields, id)
    return new Promise((resolve) => gates.push(() => resolve(add(type, fields, id))))
  }
  session = new WhatsAppSession({ settings, logger, journal })
  await session.start()
  const qr = await until(() => session.state === 'qr' && session.qr, 15000, 'qr')
  const scan = await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr })
  assert.equal(scan.status, 200, JSON.stringify(scan.body))
  await until(() => session.state === 'connected', 20000, 'connected')
})

after(async () => {
  await session?.shutdown().catch(() => {})
  await journal?.close()
  await emu?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

const receiptsAtContact = async (id) =>
  (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/receipts-received`)).body.filter((r) => r.id === id || r.ids?.includes(id))

test('the receipt for a contact\'s message goes out only after the message is in the journal on disk', async () => {
  const sent = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: ACCOUNT, text: 'held until durable' })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  const id = sent.body.id
  await until(() => gates.length === 1, 10000, 'the decrypted message reaches the journal')
  await sleep(700) // time enough for a receipt that does not wait (the emulator answers in ms)
  assert.deepEqual(await receiptsAtContact(id), [], `WhatsApp heard "received" before the message was durable; log:\n${lines.slice(-40).join('')}`)
  assert.equal(journal.after(0).filter((e) => e.type === 'message').length, 0)
  gates.shift()()
  const receipts = await until(async () => { const r = await receiptsAtContact(id); return r.length ? r : null }, 10000, 'the receipt')
  assert.ok(['delivered', 'inactive'].includes(receipts[0].type), receipts[0].type)
  const [event] = journal.after(0).filter((e) => e.type === 'message')
  assert.equal(event.id, id)
  assert.equal(event.from, CONTACT)
  assert.equal(event.text, 'held until durable')
  assert.equal(event.event_id, `in:${event.from_jid}:${id}`)
  // what was durable is on disk: a fresh reader of the directory (a restarted worker) finds it
  const files = fs.readdirSync(path.join(dataDir, 'events'))
  assert.ok(files.some((f) => f.endsWith('.wal')), files.join(','))
})

test('a worker that dies between decrypting a message and journaling it gets the message again after its restart', async () => {
  // Decrypting advanced the Signal session on disk; the journal write never happened (the process
  // "dies": the session is shut down while its hook is still held). Without the decrypt cache the
  // copy WhatsApp delivers again could no longer be decrypted, and the message would be lost.
  const sent = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: ACCOUNT, text: 'decrypted, then the crash' })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  await until(() => gates.length === 1, 10000, 'the decrypted message reaches the journal')
  assert.ok(session.decrypted.stats.puts >= 1)
  await session.shutdown() // the held hook never resolves: no journal entry, no receipt
  await journal.close()
  gates.length = 0

  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  journal = await EventJournal.open({ dir: settings.eventsDir, capacity: 1000, logger })
  session = new WhatsAppSession({ settings, logger, journal })
  await session.resume()
  const event = await until(() => journal.after(0).find((e) => e.type === 'message' && e.id === sent.body.id), 20000,
    `the message after the restart; log:\n${lines.slice(-30).join('')}`)
  assert.equal(event.text, 'decrypted, then the crash')
  assert.equal(event.offline, true) // WhatsApp delivered it again while this device was away
  assert.ok(session.decrypted.stats.hits >= 1, 'answered from the decrypt cache')
  await until(async () => (await receiptsAtContact(sent.body.id)).length > 0, 10000, 'the receipt after the restart')
})
