// The worker's last two inbound events of issue 25 item 2, through the real worker process (src/main.js, the real
// Baileys) against the emulator: the account's own phone reading a contact's chat (the server relays the phone's
// read receipt as `read-self`) is a `chat.read` event naming the contact and the messages read, by phone number
// or by LID; a contact's vote on a poll is a `poll.vote` event, and one on a poll the worker does not know is
// still an event (options null, poll_unknown), never a dropped message nor an `unsupported` one. The poll's secret
// outlives a kill -9 of the worker (sent-messages.js), and a read while the worker is down reaches it at its login.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { linkWorker, startWorker } from './worker-process.js'
const ACCOUNT = '+15550007601'
const CONTACT = '+15550007602'
const LID_CONTACT = '+15550007603'

let emu
let worker

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-pollread-emu-') } })
  worker = startWorker(emu, {})
  await linkWorker(worker, emu, ACCOUNT)
  assert.equal((await emu.api('POST', '/contacts', { phone_number: LID_CONTACT, addressing: 'lid' })).status, 200)
})

after(async () => {
  await worker?.stop()
  await emu?.stop()
})

const events = async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events
async function contactSends (contact, body) {
  const sent = await emu.api('POST', `/contacts/${contact}/messages`, { to: ACCOUNT, ...body })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  return until(async () => (await events()).find((e) => e.id === sent.body.id), 10000, `the event of ${sent.body.id}`)
}

test('the phone reading a contact\'s chat is one chat.read with the ids it read and the contact\'s identity', async () => {
  const one = await contactSends(CONTACT, { text: 'one' })
  const two = await contactSends(CONTACT, { text: 'two' })
  const read = await emu.api('POST', '/phone/read', { chat: CONTACT })
  assert.equal(read.status, 200, JSON.stringify(read.body))
  assert.deepEqual(read.body.ids, [one.id, two.id])
  const e = await until(async () => (await events()).find((x) => x.type === 'chat.read' && x.ids.includes(one.id)), 10000, 'chat.read')
  assert.deepEqual([e.ids, e.from, e.lid, e.from_jid], [[one.id, two.id], CONTACT, one.lid, '15550007602@s.whatsapp.net'])
  assert.ok(e.timestamp > 0)
  // nothing left unread: no receipt, no event; the contact saw the blue ticks
  assert.deepEqual((await emu.api('POST', '/phone/read', { chat: CONTACT })).body.ids, [])
  const ticks = (await emu.api('GET', `/contacts/${CONTACT}/receipts-received`)).body
  assert.ok(ticks.some((r) => r.id === two.id && r.type === 'read'), JSON.stringify(ticks))
  assert.equal((await events()).filter((x) => x.type === 'chat.read').length, 1)
  assert.ok(!(await events()).some((x) => x.type === 'message.status' && [one.id, two.id].includes(x.id)), 'no status of ours')
})

test('POST /phone/read refuses what the phone cannot read: bad ids, a message the contact never sent, a bad number', async () => {
  const refused = async (body, status, code) => {
    const r = await emu.api('POST', '/phone/read', body)
    assert.deepEqual([r.status, r.body.error?.code], [status, code], JSON.stringify(r.body))
  }
  await refused({ chat: CONTACT, ids: [] }, 400, 'invalid_ids')
  await refused({ chat: CONTACT, ids: ['NOSUCHMESSAGE'] }, 404, 'message_unknown')
  await refused({ chat: 'nope' }, 400, 'invalid_phone_number')
  await refused({ account: CONTACT, chat: ACCOUNT }, 409, 'no_linked_device')
})

test('a chat addressed by LID: chat.read names the contact by its LID and its phone number', async () => {
  const m = await contactSends(LID_CONTACT, { text: 'by lid' })
  assert.match(m.from_jid, /@lid$/)
  assert.ok(m.lid && m.from === LID_CONTACT, JSON.stringify(m))
  assert.equal((await emu.api('POST', '/phone/read', { chat: LID_CONTACT, ids: [m.id] })).status, 200)
  const e = await until(async () => (await events()).find((x) => x.type === 'chat.read' && x.ids.includes(m.id)), 10000, 'chat.read by lid')
  assert.deepEqual([e.ids, e.from, e.lid, e.from_jid], [[m.id], LID_CONTACT, m.lid, m.from_jid])
})

// a poll sent by the worker (its secret as the gateway gives it), as the contact's phone shows it
async function sendPoll (id, values, selectableCount, to = CONTACT) {
  const r = await worker.call('POST', '/send', { phone_number: to, id, poll: { name: 'Pick', values, selectable_count: selectableCount, secret: randomBytes(32).toString('base64') } })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  await until(async () => (await emu.api('GET', `/contacts/${to}/messages`)).body.some((e) => e.id === id && e.poll), 10000, `the poll ${id} at the contact`)
}
const votes = (id, options, from = CONTACT) => contactSends(from, { poll_vote: { id, options } })

test('a contact\'s vote on our poll is a poll.vote with the option names it chose; a new vote replaces, [] withdraws', async () => {
  await sendPoll('POLLREAD0001', ['mon', 'tue', 'wed'], 0)
  const first = await votes('POLLREAD0001', ['wed', 'mon'])
  assert.equal(first.type, 'poll.vote')
  assert.deepEqual([first.poll_id, first.options, first.error, first.from, first.from_jid], ['POLLREAD0001', ['mon', 'wed'], undefined, CONTACT, '15550007602@s.whatsapp.net'])
  assert.ok(first.lid && first.timestamp > 0, JSON.stringify(first))
  const changed = await votes('POLLREAD0001', ['tue'])
  assert.deepEqual([changed.poll_id, changed.options], ['POLLREAD0001', ['tue']])
  assert.deepEqual((await votes('POLLREAD0001', [])).options, [])
  const all = await events()
  assert.ok(!all.some((e) => e.type === 'message' && [first.id, changed.id].includes(e.id)), 'a vote is no message')
  assert.equal(all.filter((e) => e.id === first.id).length, 1, 'journaled once (receipt hook and upsert)')
})

test('a vote from a chat addressed by LID (its key made of LIDs) opens too', async () => {
  await sendPoll('POLLREAD0003', ['red', 'blue'], 1, LID_CONTACT)
  const e = await votes('POLLREAD0003', ['blue'], LID_CONTACT)
  assert.match(e.from_jid, /@lid$/)
  assert.deepEqual([e.poll_id, e.options, e.error, e.from], ['POLLREAD0003', ['blue'], undefined, LID_CONTACT])
})

test('after a kill -9 the worker still opens a vote on a poll sent before, and gets a chat read while it was down', async () => {
  await sendPoll('POLLREAD0002', ['yes', 'no'], 1)
  const unread = await contactSends(CONTACT, { text: 'read me later' })
  worker.proc.kill('SIGKILL')
  await until(() => worker.proc.exitCode !== null || worker.proc.signalCode !== null, 5000, 'the worker dead')
  const read = await emu.api('POST', '/phone/read', { chat: CONTACT, ids: [unread.id] })
  assert.deepEqual([read.status, read.body.ids, read.body.queued_for], [200, [unread.id], 1])
  worker = startWorker(emu, {}, { dataDir: worker.dataDir })
  await worker.ready()
  await until(async () => (await worker.call('GET', '/status')).body.state === 'connected', 20000, 'connected again')
  const e = await until(async () => (await events()).find((x) => x.type === 'chat.read' && x.ids.includes(unread.id)), 10000, 'the chat.read of the offline receipt')
  assert.deepEqual([e.ids, e.from], [[unread.id], CONTACT])
  assert.deepEqual((await votes('POLLREAD0002', ['no'])).options, ['no'])
})

test('a vote on a poll the worker does not know is a poll.vote with options null and poll_unknown', async () => {
  const vote = { encPayload: randomBytes(40).toString('base64'), encIv: randomBytes(12).toString('base64') }
  const e = await contactSends(CONTACT, { raw: { pollUpdateMessage: { pollCreationMessageKey: { remoteJid: '15550007601@s.whatsapp.net', fromMe: false, id: 'NOSUCHPOLL01' }, vote } } })
  assert.equal(e.type, 'poll.vote')
  assert.deepEqual([e.poll_id, e.options, e.error, e.from], ['NOSUCHPOLL01', null, 'poll_unknown', CONTACT])
})
