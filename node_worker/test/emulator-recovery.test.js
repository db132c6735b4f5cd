// Broken Signal sessions heal as they do on WhatsApp: through retry receipts, both ways.
// A contact's phone that cannot decrypt the worker's message asks for it again (the worker's Baileys
// resends it on a fresh session); a message of the contact that the worker cannot decrypt gets a retry
// receipt from Baileys, and the contact rebuilds its session from the receipt's keys and sends it again.
// Real Baileys (the worker's WhatsAppSession) against the emulator, plus in-process checks of the
// emulator's retry module against Baileys' own parser of retry receipts.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startEmulator, trustEmulator, tmpDir, until, sleep } from './emulator-helpers.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger, routeConsole } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'

const ACCOUNT = '+15550005501'

let emu
let dataDir
let session
const journal = new EventJournal({ capacity: 10000 }) // shared by the worker's restarts
const lines = []
// libsignal prints whole sessions (private keys included) on console.*: kept as short debug records
routeConsole(makeLogger({ level: 'debug', write: () => {} }))

const startSession = async (resume) => {
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  session = new WhatsAppSession({ settings, logger, journal })
  if (resume) await session.resume()
  else await session.start()
}
const connected = () => until(() => session.state === 'connected', 20000, 'worker connected')

before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
  dataDir = tmpDir('wa-recovery-')
  await startSession(false)
  const qr = await until(() => session.state === 'qr' && session.qr, 15000, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr })).status, 200)
  await connected()
})
after(async () => {
  await session?.shutdown().catch(() => {})
  await emu?.stop()
})

let seq = 0
const out = async (contact, label) => {
  const id = `RECOVER${String(++seq).padStart(6, '0')}X`
  await session.sendText(contact, `secret out ${label}`, id)
  return id
}
const inb = async (contact, label) => {
  const res = await emu.api('POST', `/contacts/${encodeURIComponent(contact)}/messages`, { to: ACCOUNT, text: `secret in ${label}` })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body.id
}
const inbox = async (contact) => (await emu.api('GET', `/contacts/${encodeURIComponent(contact)}/messages`)).body
const counters = async (contact) => (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === contact)
const journaled = (id) => journal.after(0).filter((e) => e.type === 'message' && e.id === id)

/** every id in `outIds` readable at the contact (once), every id in `inIds` decrypted in the worker's journal */
const allReadable = async (contact, outIds, inIds, ms = 15000) => {
  await until(async () => {
    const got = await inbox(contact)
    return outIds.every((id) => got.some((m) => m.id === id && m.text !== null))
  }, ms, `${outIds.length} messages readable at ${contact}`)
  await until(() => inIds.every((id) => journaled(id).some((e) => typeof e.text === 'string')), ms, `${inIds.length} messages in the journal`)
  const got = await inbox(contact)
  for (const id of outIds) assert.equal(got.filter((m) => m.id === id).length, 1, `${id} stored once`)
}

/** a few messages both ways, each readable before the next: the sessions' ratchets advance on both sides */
const converse = async (contact, label, rounds = 2) => {
  for (let i = 0; i < rounds; i++) {
    const o = await out(contact, `${label}${i}`)
    await allReadable(contact, [o], [])
    const n = await inb(contact, `${label}${i}`)
    await allReadable(contact, [], [n])
  }
}

/**
 * after a break: messages both ways without waiting (the contact's first when `inFirst`: a worker's
 * send right after a restart starts a fresh session anyway), then all of them must become readable
 */
const afterBreak = async (contact, n = 3, { inFirst = false } = {}) => {
  const outIds = []
  const inIds = []
  for (let i = 0; i < n; i++) {
    if (inFirst) inIds.push(await inb(contact, `after${i}`))
    outIds.push(await out(contact, `after${i}`))
    if (!inFirst) inIds.push(await inb(contact, `after${i}`))
  }
  await allReadable(contact, outIds, inIds)
  return { outIds, inIds }
}

test("the contact's phone rolled back to an older session: its retry receipts and the worker's resends heal both directions", async (t) => {
  const contact = '+15550005511'
  await converse(contact, 'before')
  const session1 = { peer: ACCOUNT }
  assert.deepEqual((await emu.api('POST', `/contacts/${contact}/session`, { ...session1, action: 'snapshot' })).body, { action: 'snapshot', sessions: 1 })
  await converse(contact, 'between')
  assert.equal((await emu.api('POST', `/contacts/${contact}/session`, { ...session1, action: 'rollback' })).status, 200)

  const { outIds } = await afterBreak(contact)
  const c = await counters(contact)
  assert.ok(c.retry_receipts_sent >= 1, `the contact asked for no retry: ${JSON.stringify(c)}`)
  const first = (await inbox(contact)).find((m) => m.id === outIds[0])
  assert.ok(first.retries >= 1 && first.error === null, JSON.stringify(first))
  assert.equal(c.messages_undecryptable, 0)
  assert.equal(c.sent_undecryptable, 0)
  t.diagnostic('contact rollback healed: ' + JSON.stringify({ retries_per_out: (await inbox(contact)).filter((m) => outIds.includes(m.id)).map((m) => m.retries), ...c }))
  // and it stays healed: the next messages need no retry at all
  const before = await counters(contact)
  await afterBreak(contact, 2)
  const later = await counters(contact)
  assert.equal(later.retry_receipts_sent, before.retry_receipts_sent)
  assert.equal(later.retry_receipts_received, before.retry_receipts_received)
  assert.ok(!lines.join('\n').includes('secret '), 'a message body reached the worker log')
  assert.ok(!emu.lines.some((l) => JSON.stringify(l).includes('secret ')), 'a message body reached the emulator log')
})

test("the worker's session store restored from an older copy: the contact rebuilds its session from the retry receipt's keys and resends", async (t) => {
  const contact = '+15550005512'
  await converse(contact, 'before')
  const snapshot = path.join(tmpDir('wa-recovery-snap-'), 'session')
  await session.shutdown()
  fs.cpSync(session.settings.sessionDir, snapshot, { recursive: true })
  await startSession(true)
  await connected()
  await converse(contact, 'between')
  await session.shutdown()
  fs.rmSync(session.settings.sessionDir, { recursive: true, force: true })
  fs.cpSync(snapshot, session.settings.sessionDir, { recursive: true })
  await startSession(true)
  await connected()

  // the contact writes first, alone: only its own session, rebuilt from the worker's retry receipt, can heal it
  const first = await inb(contact, 'alone')
  await allReadable(contact, [], [first])
  const { inIds } = await afterBreak(contact, 3, { inFirst: true })
  inIds.unshift(first)
  const c = await counters(contact)
  assert.ok(c.retry_receipts_received >= 1 && c.messages_resent >= 1, `no retry from the worker: ${JSON.stringify(c)}`)
  assert.equal(c.sent_undecryptable, 0, JSON.stringify(c))
  const sent = (await emu.api('GET', `/contacts/${contact}/sent`)).body
  assert.ok(sent.find((s) => s.id === first).resent >= 1)
  t.diagnostic('worker rollback healed: ' + JSON.stringify({ resent_per_in: sent.filter((s) => inIds.includes(s.id)).map((s) => s.resent), ...c }))
  const before = await counters(contact)
  await afterBreak(contact, 2)
  const later = await counters(contact)
  assert.equal(later.retry_receipts_received, before.retry_receipts_received)
  assert.equal(later.retry_receipts_sent, before.retry_receipts_sent)
})

test('a contact message the worker can never decrypt ends undecryptable after the retry count, without a loop', async (t) => {
  const contact = '+15550005513'
  await converse(contact, 'before', 1)
  assert.deepEqual((await emu.api('POST', '/faults', { kind: 'garble', phone_number: contact, messages: 1 })).body, { applied_to: 1 })
  const bad = await inb(contact, 'garbled')
  // the worker asks again (Baileys: up to maxMsgRetryCount 5 retry receipts), the contact answers each
  const settled = await until(async () => {
    const a = await counters(contact)
    await sleep(1500)
    const b = await counters(contact)
    return a.retry_receipts_received > 0 && a.retry_receipts_received === b.retry_receipts_received ? b : null
  }, 20000, 'the retries to end')
  t.diagnostic('never decryptable: ' + JSON.stringify(settled))
  assert.equal(settled.retry_receipts_received, 5, JSON.stringify(settled))
  assert.equal(settled.messages_resent, 5)
  assert.equal(settled.sent_undecryptable, 1)
  const entry = (await emu.api('GET', `/contacts/${contact}/sent`)).body.find((s) => s.id === bad)
  assert.equal(entry.resent, 5)
  assert.equal(entry.undecryptable_at.length, 1)
  assert.ok(!journaled(bad).some((e) => typeof e.text === 'string'), 'a damaged message was decrypted')
  assert.ok((await emu.api('GET', '/')).body.retries.sent_undecryptable >= 1, 'the sum over the contacts')
  // the conversation goes on, and the retries stay ended
  const good = await inb(contact, 'after')
  await allReadable(contact, [], [good])
  await sleep(500)
  assert.equal((await counters(contact)).retry_receipts_received, 5)
  assert.equal((await emu.api('GET', `/contacts/${contact}/sent`)).body.find((s) => s.id === good).undecryptable_at.length, 0)
})

test('a contact and the account writing their first messages at the same instant: every later message readable both ways, no retry needed', async (t) => {
  // Both start a session (two pkmsgs cross); then each writes on its open session, the other's. The
  // emulated phone decrypts the worker's message on its older session and makes that one its open
  // session, as phones do (libsignal promotes it); libsignal-node alone stored the side effects of its
  // failed try on the open session, and every later message of the contact was unreadable.
  const contact = '+15550005514'
  const [o, n] = await Promise.all([out(contact, 'first'), inb(contact, 'first')])
  await allReadable(contact, [o], [n])
  await afterBreak(contact, 4)
  const c = await counters(contact)
  t.diagnostic('simultaneous first messages: ' + JSON.stringify(c))
  assert.equal(c.retry_receipts_sent, 0, JSON.stringify(c))
  assert.equal(c.retry_receipts_received, 0, JSON.stringify(c))
})
