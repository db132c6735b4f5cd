// Sending to a contact while the same contact writes to us: both touch one Signal session. rc14 locks
// a send on our own id and a decrypt on the sender's jid, so the two could commit the session at the
// same time and one ratchet step was lost: the contact could no longer decrypt our messages. The
// worker decrypts under the send lock (src/decrypt-cache.js). Real Baileys against the emulator.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { startEmulator, trustEmulator, tmpDir, until } from './emulator-helpers.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'

const ACCOUNT = '+15550003501'
const CONTACT = '+15550003502'
const N = 60

let emu
let session
let journal
let dataDir
before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
  dataDir = tmpDir('wa-twoway-')
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  const logger = makeLogger({ level: 'error', write: () => {} })
  journal = await EventJournal.open({ dir: settings.eventsDir, capacity: 10000, logger })
  session = new WhatsAppSession({ settings, logger, journal })
  await session.start()
  const qr = await until(() => session.state === 'qr' && session.qr, 15000, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr })).status, 200)
  await until(() => session.state === 'connected', 20000, 'connected')
})
after(async () => {
  await session?.shutdown().catch(() => {})
  await journal?.close()
  await emu?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

test('messages both ways on one session at once: every one decrypts on both sides', async () => {
  await session.sendText(CONTACT, 'hello', 'TWOWAY00000000')
  await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: ACCOUNT, text: 'hi' })
  const outgoing = (async () => {
    for (let n = 0; n < N; n++) await session.sendText(CONTACT, `out ${n}`, `TWOWAY${String(n).padStart(8, '0')}X`)
  })()
  const incoming = (async () => {
    for (let n = 0; n < N; n++) {
      const res = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: ACCOUNT, text: `in ${n}` })
      assert.equal(res.status, 200)
    }
  })()
  await Promise.all([outgoing, incoming])
  const inbox = await until(async () => {
    const got = (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body
    return got.length >= N + 1 ? got : null
  }, 30000, 'our messages at the contact')
  const broken = inbox.filter((m) => m.text === null)
  assert.deepEqual(broken.map((m) => m.id), [], `${broken.length} of our messages could not be decrypted by the contact`)
  await until(() => journal.after(0).filter((e) => e.type === 'message').length >= N + 1, 30000, 'their messages in the journal')
  assert.ok(journal.after(0).filter((e) => e.type === 'message').every((e) => typeof e.text === 'string'))
})
