// Durable before acknowledged, in groups (issue 26): the real Baileys through the worker's session against the
// emulator. A contact's group message (a sender-key `skmsg`) and a group's change (a `w:gp2` notification) are in
// the journal on disk before WhatsApp hears "received"; a worker that dies in between (here: shut down while the
// journal write is held, so neither the receipt nor the ack ever leaves) gets them again after its restart, once.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { startEmulator, trustEmulator, tmpDir, until, sleep } from './emulator-helpers.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'

const ACCOUNT = '+15550008701'
const [ANA, BEN] = ['+15550008702', '+15550008703']

let emu
let session
let journal
let dataDir
let group
let hold = null // (type, fields) -> true: that journal write waits in `gates` until the test releases it
const gates = []
const lines = []

// A session on `dataDir` (a fresh link, or the same one resumed) whose journal holds the writes `hold` picks.
async function open ({ link }) {
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  const logger = makeLogger({ level: 'debug', write: (l) => lines.push(l) })
  journal = await EventJournal.open({ dir: settings.eventsDir, capacity: 1000, logger })
  const add = journal.add.bind(journal) // the journal's one write (push() goes through it)
  journal.add = (type, fields, id) => {
    if (!hold?.(type, fields)) return add(type, fields, id)
    return new Promise((resolve) => gates.push(() => resolve(add(type, fields, id))))
  }
  session = new WhatsAppSession({ settings, logger, journal })
  if (!link) return session.resume()
  await session.start()
  const qr = await until(() => session.state === 'qr' && session.qr, 15000, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr })).status, 200)
  await until(() => session.state === 'connected', 20000, 'connected')
}

// The worker "dies" with its held writes: never journaled, never acknowledged; then it starts again on its data.
async function crashAndRestart () {
  await session.shutdown()
  await journal.close()
  gates.length = 0
  hold = null
  await open({ link: false })
}

before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
  dataDir = tmpDir('wa-groups-durable-')
  await open({ link: true })
  group = (await session.groups.create('Durable', [ANA, BEN])).id
})

after(async () => {
  await session?.shutdown().catch(() => {})
  await journal?.close()
  await emu?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

const events = (type, pick) => journal.after(0).filter((e) => e.type === type && pick(e))
// the receipts the sender's phone got for its message `id` (the account's device sends them to the group)
const groupReceipts = async (phone, id) =>
  (await emu.api('GET', `/contacts/${encodeURIComponent(phone)}/receipts-received`)).body.filter((r) => r.id === id || r.ids?.includes(id))

test('a group message held before the journal: no receipt; a worker that dies there gets it again, once, from the decrypt cache', async () => {
  // the first message of ANA distributes its sender key (pkmsg + skmsg); the second is a plain skmsg
  const first = await emu.api('POST', `/contacts/${encodeURIComponent(ANA)}/messages`, { to: group, text: 'key share' })
  assert.equal(first.status, 200, JSON.stringify(first.body))
  await until(() => events('message', (e) => e.id === first.body.id).length === 1, 10000, 'the first group message')
  hold = (type, fields) => type === 'message' && fields.group_id === group
  const sent = await emu.api('POST', `/contacts/${encodeURIComponent(ANA)}/messages`, { to: group, text: 'decrypted, then the crash' })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  await until(() => gates.length === 1, 10000, 'the decrypted group message reaches the journal')
  await sleep(700) // time enough for a receipt that does not wait
  assert.deepEqual(await groupReceipts(ANA, sent.body.id), [], `WhatsApp heard "received" before the group message was durable; log:\n${lines.slice(-30).join('')}`)

  await crashAndRestart()
  const event = await until(() => events('message', (e) => e.id === sent.body.id)[0], 20000, `the group message after the restart; log:\n${lines.slice(-30).join('')}`)
  // without the cache the copy delivered again cannot be decrypted ("old counter"): only a retry receipt to the
  // sender, and its resend (live, not offline), would bring the message back
  assert.ok(session.decrypted.stats.hits >= 1, 'the skmsg delivered again was answered from the decrypt cache')
  assert.equal(event.offline, true)
  assert.equal(event.group_id, group)
  assert.equal(event.from, ANA)
  assert.equal(event.text, 'decrypted, then the crash')
  await until(async () => (await groupReceipts(ANA, sent.body.id)).length > 0, 10000, 'the receipt after the restart')
  await sleep(300)
  assert.equal(events('message', (e) => e.id === sent.body.id).length, 1, 'once')
  // the sender's chain goes on: its next message decrypts too
  const next = await emu.api('POST', `/contacts/${encodeURIComponent(ANA)}/messages`, { to: group, text: 'and after' })
  await until(() => events('message', (e) => e.id === next.body.id).length === 1, 10000, 'the next group message')
})

test('a group change held before the journal: a worker that dies there gets the notification again, once', async () => {
  hold = (type, fields) => type === 'group.participants' && fields.group_id === group && fields.action === 'promote'
  const results = await session.groups.participants(group, 'promote', [BEN])
  assert.deepEqual(results.results, [{ phone_number: BEN, status: 200 }])
  await until(() => gates.length === 1, 10000, 'the promote notification reaches the journal')
  assert.equal(events('group.participants', (e) => e.action === 'promote').length, 0)

  await crashAndRestart()
  const promoted = await until(() => events('group.participants', (e) => e.group_id === group && e.action === 'promote')[0], 20000,
    `the promote event after the restart; log:\n${lines.slice(-30).join('')}`)
  assert.deepEqual(promoted.participants.map((p) => p.phone_number), [BEN])
  assert.equal(promoted.by.phone_number, ACCOUNT)
  await sleep(500)
  assert.equal(events('group.participants', (e) => e.group_id === group && e.action === 'promote').length, 1, 'once')
})

test('a member\'s removal rotates our sender key: the next message goes with a new key the remaining members decrypt', async () => {
  const keys = session.store.state.keys
  const me = session.store.state.creds.me
  const ours = async () => {
    // our sender key in this group, under our phone-number or LID identity (the group's addressing picks one)
    const names = [me.id, me.lid].filter(Boolean).map((jid) => {
      const [user, server] = jid.split('@')
      const [u, d] = user.split(':')
      return `${group}::${server === 'lid' ? `${u}_1` : u}::${d ?? 0}`
    })
    const got = await keys.get('sender-key', names)
    // the key ids of its states (the chain iteration moves with every message; the id only with a new key)
    return JSON.stringify(names.map((n) => got[n] ? JSON.parse(Buffer.from(got[n]).toString('utf8')).map((st) => st.senderKeyId) : null))
  }
  const send = async (text) => {
    const id = `ROT${Date.now()}${Math.floor(Math.random() * 1e6)}`
    assert.deepEqual(await session.send(group, { text }, id), { id, status: 'sent' })
    return id
  }
  const before = await send('with the first key')
  const first = await ours()
  assert.notEqual(first, JSON.stringify([null, null]), 'a sender key exists')
  assert.equal((await until(async () => (await emu.api('GET', `/contacts/${encodeURIComponent(ANA)}/messages`)).body.find((m) => m.id === before), 10000, 'ANA has it')).error, null)
  const removed = await session.groups.participants(group, 'remove', [ANA])
  assert.deepEqual(removed.results, [{ phone_number: ANA, status: 200 }])
  await until(() => events('group.participants', (e) => e.group_id === group && e.action === 'remove').length === 1, 10000, 'the remove event')
  const after = await send('with a new key')
  assert.notEqual(await ours(), first, 'the sender key was not rotated')
  const got = await until(async () => (await emu.api('GET', `/contacts/${encodeURIComponent(BEN)}/messages`)).body.find((m) => m.id === after), 10000, 'BEN has it')
  assert.equal(got.error, null, got.error)
  assert.equal(got.text, 'with a new key')
  const ana = (await emu.api('GET', `/contacts/${encodeURIComponent(ANA)}/messages`)).body
  assert.equal(ana.find((m) => m.id === after), undefined)
})
