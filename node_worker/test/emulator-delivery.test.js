// The emulator's delivery guarantee (the server keeps every stanza until the device acknowledges it
// and redelivers the rest, marked offline, at its next login) and contacts that write by LID, driven
// by the real Baileys client. A lost stanza is made by cutting the client's transport, never Baileys:
// its TCP socket stops reading (what the server writes never reaches Baileys) or stops writing (what
// Baileys answers never reaches the server), then it is destroyed.
import { test, describe, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startEmulator, trustEmulator, openClient, pairDevice, tmpDir, until } from './emulator-helpers.js'

const CONTACT = '+15550012222'
const CONTACT_JID = '15550012222@s.whatsapp.net'

/** the client's WebSocket (the ws package's) and the TCP socket under it */
const wsOf = (client) => client.sock.ws.socket
const tcpOf = (client) => client.sock.ws.socket._socket
/** from now on the client reads nothing: what the server writes stays in the socket, unread by Baileys */
const stopReading = (client) => wsOf(client).pause()
/**
 * the connection dies with what the server wrote since stopReading still unread: it is lost on the way.
 * (A plain destroy would not do: ws hands the socket's buffered bytes to Baileys as it closes, and
 * Baileys then decrypts a message whose receipt it can no longer send.)
 */
const cut = (client) => {
  const tcp = tcpOf(client)
  tcp.removeAllListeners('data') // read() below would hand each chunk to the 'data' listener, i.e. to ws
  while (tcp.read() !== null) { /* discarded: lost on the way */ }
  tcp.destroy()
}
/** from now on what the client writes is lost on the way (each write "succeeds", as into a dead link) */
const loseWrites = (client) => {
  tcpOf(client).write = (chunk, encoding, cb) => {
    const done = typeof encoding === 'function' ? encoding : cb
    if (done) process.nextTick(done)
    return true
  }
}
const upsertOf = (client, id) => {
  for (const u of client.rec.upserts) {
    for (const m of u.messages) if (m.key.id === id) return { m, type: u.type }
  }
  return undefined
}
const upsertsOf = (client, id) => client.rec.upserts.flatMap((u) => u.messages.filter((m) => m.key.id === id).map((m) => ({ m, type: u.type })))
const statusOf = (client, id) => {
  let best = -1
  for (const u of client.rec.msgUpdates) if (u.key.id === id && typeof u.update.status === 'number') best = Math.max(best, u.update.status)
  for (const up of client.rec.upserts) for (const m of up.messages) if (m.key.id === id && m.key.fromMe && typeof m.status === 'number') best = Math.max(best, m.status)
  return best
}

describe('delivery guarantee and LID contacts (real Baileys)', () => {
  let emu
  const clients = []
  const track = (c) => { clients.push(c); return c }
  const dirs = []
  let nextPhone = 0
  const newPhone = () => `+1555001${String(3000 + nextPhone++)}`

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '50', WA_EMULATOR_LOG_LEVEL: process.env.EMU_LOG_LEVEL || 'info' } })
    if (process.env.EMU_LOG_DUMP) process.on('exit', () => fs.writeFileSync(process.env.EMU_LOG_DUMP, emu.lines.map((l) => JSON.stringify(l)).join('\n')))
    trustEmulator(emu)
  })
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => {})
    await until(async () => (await emu.api('GET', '/')).body.blackholes.length === 0, 10000, 'the black holes to end')
  })
  after(async () => {
    if (emu) assert.equal((await emu.stop()).code, 0)
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })

  /** the account's (only) device as GET / shows it */
  const deviceOf = async (phone) => (await emu.api('GET', '/')).body.accounts.find((a) => a.phone_number === phone)?.devices[0]
  const idle = (phone) => until(async () => !(await emu.api('GET', '/')).body.connections
    .some((c) => c.jid?.startsWith(`${phone.slice(1)}:`)), 5000, `no open connection of ${phone}`)
  /** a newly paired device that has acknowledged everything so far (its history sync included) */
  const freshDevice = async (config) => {
    const phone = newPhone()
    const { client, authDir } = await pairDevice(emu, phone, { settle: true, config })
    track(client)
    dirs.push(authDir)
    await until(async () => (await deviceOf(phone))?.unacked === 0, 5000, 'the history sync to be acknowledged')
    return { phone, client, authDir }
  }
  const relogin = async (phone, authDir, config) => {
    await idle(phone)
    const c = track(await openClient(emu, authDir, config))
    await c.waitOpen(10000)
    return c
  }
  const contactSends = async (from, to, text) => {
    const res = await emu.api('POST', `/contacts/${encodeURIComponent(from)}/messages`, { to, text })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return res.body
  }
  /** a live message from `from` that `client` upserts: everything the server sent before it has been received */
  const sentinel = async (client, phone, from = CONTACT) => {
    const s = await contactSends(from, phone, 'sentinel')
    await client.waitFor(() => upsertOf(client, s.id), 5000, 'the sentinel message')
  }

  test('a message written to a connection that dies before the device acknowledges it is redelivered at the next login, offline (append)', async () => {
    const { phone, client: c1, authDir } = await freshDevice()
    stopReading(c1)
    const text = 'lost in transit? ✓'
    const sent = await contactSends(CONTACT, phone, text)
    assert.equal(sent.delivered_to, 1, 'written to the live connection')
    assert.equal((await deviceOf(phone)).unacked, 1)
    cut(c1)
    await c1.waitClose(5000)
    await idle(phone)
    const kept = await deviceOf(phone)
    assert.equal(kept.unacked, 1, 'kept after the connection ended')
    assert.equal(kept.queued, 0)
    assert.equal(upsertOf(c1, sent.id), undefined, 'the first connection never handed it to Baileys')

    const c2 = await relogin(phone, authDir)
    const got = await c2.waitFor(() => upsertOf(c2, sent.id), 8000, 'the redelivered message')
    assert.equal(got.type, 'append', 'redelivered marked offline')
    assert.equal(got.m.message?.conversation, text)
    assert.equal(got.m.key.remoteJid, CONTACT_JID)
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'its receipt to clear it')
  })

  test('a delivery receipt written to a connection that dies unread is redelivered at the next login and becomes the status', async () => {
    const { phone, client: c1, authDir } = await freshDevice()
    // a first message makes Baileys know the contact's devices and session, so that the next send needs
    // no answer from the server: the client can stop reading before it, and so never sees its receipt
    await c1.sock.sendMessage(CONTACT_JID, { text: 'hello' }, { messageId: 'EMUREDELIV00' })
    await c1.waitFor(() => statusOf(c1, 'EMUREDELIV00') >= 3, 5000, 'delivery receipt of the first message')
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'its receipt to be acknowledged')
    stopReading(c1)
    await c1.sock.sendMessage(CONTACT_JID, { text: 'did you get it?' }, { messageId: 'EMUREDELIV01' })
    await until(async () => (await deviceOf(phone)).unacked === 1, 5000, 'the delivery receipt to be written')
    cut(c1)
    await c1.waitClose(5000)
    assert.ok(statusOf(c1, 'EMUREDELIV01') < 3, 'the first connection saw no delivery receipt')
    await idle(phone)
    assert.equal((await deviceOf(phone)).unacked, 1)

    const c2 = await relogin(phone, authDir)
    await c2.waitFor(() => statusOf(c2, 'EMUREDELIV01') === 3, 8000, 'the redelivered delivery receipt')
    // acknowledged (<ack class=receipt>) this time
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'its ack to clear it')
  })

  test('a read receipt sent into a black hole is unacknowledged and redelivered at the next login; delivered and read are kept apart', async () => {
    const { phone, client: c1, authDir } = await freshDevice()
    await c1.sock.sendMessage(CONTACT_JID, { text: 'read me' }, { messageId: 'EMUREDELIV02' })
    await c1.waitFor(() => statusOf(c1, 'EMUREDELIV02') >= 3, 5000, 'delivery receipt')
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'the delivery receipt to be acknowledged')
    const f = await emu.api('POST', '/faults', { kind: 'blackhole', seconds: 1.5, phone_number: phone })
    assert.equal(f.body.applied_to, 1)
    const read = await emu.api('POST', `/contacts/${CONTACT}/receipts`, { id: 'EMUREDELIV02', type: 'read' })
    assert.equal(read.status, 200)
    assert.equal(read.body.delivery, 'sent', 'as far as the server knows it was sent')
    assert.equal((await deviceOf(phone)).unacked, 1, 'the read receipt waits for its ack')
    await c1.end()
    assert.ok(statusOf(c1, 'EMUREDELIV02') < 4)
    await until(async () => (await emu.api('GET', '/')).body.blackholes.length === 0, 5000, 'the black hole to end')

    const c2 = await relogin(phone, authDir)
    await c2.waitFor(() => statusOf(c2, 'EMUREDELIV02') === 4, 8000, 'the redelivered read receipt')
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'its ack to clear it')
    await sentinel(c2, phone)
    // only the read receipt came again: the delivery receipt of the same id had been acknowledged
    assert.deepEqual(c2.rec.msgUpdates.filter((u) => u.key.id === 'EMUREDELIV02').map((u) => u.update.status), [4])
  })

  test('acknowledged messages and receipts are not redelivered at the next login', async () => {
    const { phone, client: c1, authDir } = await freshDevice()
    const inbound = await contactSends(CONTACT, phone, 'once only')
    const first = await c1.waitFor(() => upsertOf(c1, inbound.id), 5000, 'the live message')
    assert.equal(first.type, 'notify')
    await c1.sock.sendMessage(CONTACT_JID, { text: 'and back' }, { messageId: 'EMUREDELIV03' })
    await c1.waitFor(() => statusOf(c1, 'EMUREDELIV03') >= 3, 5000, 'delivery receipt')
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'the receipt and the message to be acknowledged')
    await c1.end()

    const c2 = await relogin(phone, authDir)
    await sentinel(c2, phone)
    assert.deepEqual(upsertsOf(c2, inbound.id), [], 'the acknowledged message came again')
    assert.equal(statusOf(c2, 'EMUREDELIV03'), -1, 'the acknowledged receipt came again')
  })

  test('a message Baileys decrypted but never acknowledged comes again and the duplicate is cleared, not looped', async () => {
    const { phone, client: c1, authDir } = await freshDevice()
    const fresh = '+15550014444' // a contact with no session yet: its message is a pkmsg
    // CONTACT gets a message from the device first, so that its next message to it is a plain msg
    await c1.sock.sendMessage(CONTACT_JID, { text: 'hi' }, { messageId: 'EMUREDELIV04' })
    await c1.waitFor(() => statusOf(c1, 'EMUREDELIV04') >= 3, 5000, 'delivery receipt')
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'everything acknowledged')
    loseWrites(c1) // what Baileys answers from now on never reaches the server
    const m1 = await contactSends(fresh, phone, 'first from a new contact')
    const m2 = await contactSends(CONTACT, phone, 'over an established session')
    for (const m of [m1, m2]) assert.equal((await c1.waitFor(() => upsertOf(c1, m.id), 5000, 'decrypted')).type, 'notify')
    assert.equal((await deviceOf(phone)).unacked, 2, 'the receipts never arrived')
    cut(c1)
    await c1.waitClose(5000)

    const c2 = await relogin(phone, authDir)
    // Baileys cannot decrypt them a second time (libsignal: the message keys are used up); whatever it
    // answers (a nack, or a retry receipt and a nack) acknowledges them
    await until(async () => (await deviceOf(phone)).unacked === 0, 8000, 'the duplicates to be acknowledged')
    await sentinel(c2, phone)
    // what rc14 does with them: the pkmsg (its session already exists, its message key is used up)
    // gets a nack 487 and no event; the msg fails on every session: a retry receipt to the contact, a
    // nack 500 and a CIPHERTEXT stub upserted with the same id (a worker must not take it for a new message)
    assert.deepEqual(upsertsOf(c2, m1.id), [])
    // ... and the contact answers that retry receipt as a real client does: the same id again, readable
    await c2.waitFor(() => upsertsOf(c2, m2.id).some((u) => u.m.message), 5000, 'the resent copy')
    const stubs = upsertsOf(c2, m2.id).filter((u) => !u.m.message)
    assert.equal(stubs.length, 1)
    assert.equal(stubs[0].type, 'append')
    assert.equal(stubs[0].m.messageStubType, 2) // proto.WebMessageInfo.StubType.CIPHERTEXT
    assert.equal(stubs[0].m.message, undefined)
    const retries = (await emu.api('GET', `/contacts/${CONTACT}/receipts-received`)).body.filter((r) => r.id === m2.id)
    assert.deepEqual(retries.map((r) => r.type), ['retry', 'inactive']) // the retry, then the resent copy's receipt
    await c2.end()
    const c3 = await relogin(phone, authDir)
    await sentinel(c3, phone)
    for (const m of [m1, m2]) assert.deepEqual(upsertsOf(c3, m.id), [], 'redelivered again: a loop')
    assert.equal((await deviceOf(phone)).unacked, 0)
  })

  test("two gateways: the copy for the sender's other device and the relayed receipts are acknowledged, nothing stays kept", async () => {
    const a = await freshDevice()
    const b = await freshDevice()
    const a2 = track((await pairDevice(emu, a.phone, { settle: true })).client) // a second device of A
    const devicesOf = async (phone) => (await emu.api('GET', '/')).body.accounts.find((x) => x.phone_number === phone).devices
    const bJid = `${b.phone.slice(1)}@s.whatsapp.net`
    await a.client.sock.sendMessage(bJid, { text: 'A → B' }, { messageId: 'EMUREDELIV05' })
    await b.client.waitFor(() => upsertOf(b.client, 'EMUREDELIV05'), 5000, 'message at B')
    await a2.waitFor(() => upsertOf(a2, 'EMUREDELIV05'), 5000, 'copy at A2')
    await a.client.waitFor(() => statusOf(a.client, 'EMUREDELIV05') >= 3, 5000, 'relayed delivery receipt at A')
    await until(async () => [...await devicesOf(a.phone), ...await devicesOf(b.phone)].every((d) => d.unacked === 0 && d.queued === 0),
      5000, 'every device to have acknowledged everything')
  })

  test('a contact that writes by LID: from=<lid>@lid with sender_pn, decrypted, the phone number available to the receiver', async () => {
    const { phone, client: c1 } = await freshDevice()
    const lidContact = '+15550015555'
    // it writes by phone number first, then switches to LID: Baileys moves the Signal session to the LID
    const pnFirst = await contactSends(lidContact, phone, 'by number')
    assert.equal((await c1.waitFor(() => upsertOf(c1, pnFirst.id), 5000, 'the PN message')).m.key.remoteJid, '15550015555@s.whatsapp.net')
    const made = await emu.api('POST', '/contacts', { phone_number: lidContact, addressing: 'lid' })
    assert.equal(made.status, 200)
    assert.equal(made.body.addressing, 'lid')
    assert.match(made.body.lid, /^\d+@lid$/)
    const listed = (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === lidContact)
    assert.equal(listed.addressing, 'lid')
    const text = 'por LID: olá 👋'
    const sent = await contactSends(lidContact, phone, text)
    const { m, type } = await c1.waitFor(() => upsertOf(c1, sent.id), 5000, 'the LID message')
    assert.equal(type, 'notify')
    assert.equal(m.key.remoteJid, made.body.lid)
    assert.equal(m.key.remoteJidAlt, '15550015555@s.whatsapp.net')
    assert.equal(m.key.addressingMode, 'lid')
    assert.equal(m.message?.conversation, text)
    // Baileys stored the mapping from the envelope (its PN form carries the device: 15550015555:0@s.whatsapp.net)
    assert.match(await c1.sock.signalRepository.lidMapping.getPNForLID(made.body.lid), /^15550015555(:0)?@s\.whatsapp\.net$/)
    // the device's receipt (to the LID) reaches the contact and acknowledges the message
    await until(async () => (await emu.api('GET', `/contacts/${lidContact}/receipts-received`)).body
      .some((r) => r.id === sent.id && r.from === phone), 5000, 'the receipt at the LID contact')
    await until(async () => (await deviceOf(phone)).unacked === 0, 5000, 'the LID message to be acknowledged')
    // a reply to the LID chat reaches the contact; its delivery receipt comes from the LID
    await c1.sock.sendMessage(made.body.lid, { text: 'reply by LID' }, { messageId: 'EMULIDREPLY1' })
    const stored = await until(async () => (await emu.api('GET', `/contacts/${lidContact}/messages`)).body
      .find((x) => x.id === 'EMULIDREPLY1'), 5000, 'the reply at the contact')
    assert.equal(stored.text, 'reply by LID')
    await c1.waitFor(() => statusOf(c1, 'EMULIDREPLY1') >= 3, 5000, 'delivery receipt of the reply')
    const bad = await emu.api('POST', '/contacts', { phone_number: lidContact, addressing: 'username' })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'invalid_addressing')
  })

  test('a LID message to an offline device arrives at its next login (append) with the phone number', async () => {
    const { phone, client: c1, authDir } = await freshDevice()
    const lidContact = '+15550016666'
    await emu.api('POST', '/contacts', { phone_number: lidContact, addressing: 'lid' })
    await c1.end()
    await idle(phone)
    const sent = await contactSends(lidContact, phone, 'while away, by LID')
    assert.equal(sent.queued_for, 1)
    const c2 = await relogin(phone, authDir)
    const { m, type } = await c2.waitFor(() => upsertOf(c2, sent.id), 8000, 'the queued LID message')
    assert.equal(type, 'append')
    assert.match(m.key.remoteJid, /@lid$/)
    assert.equal(m.key.remoteJidAlt, '15550016666@s.whatsapp.net')
    assert.equal(m.message?.conversation, 'while away, by LID')
  })
})

describe('delivery guarantee across an emulator restart (state file)', () => {
  test('unacknowledged and queued stanzas survive a restart and come, in order, at the next login', async () => {
    const dir = tmpDir()
    const env = { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json'), WA_EMULATOR_RECEIPT_DELAY_MS: '50' }
    const phone = '+15550017001'
    const clients = []
    let emu
    const deviceOf = async () => (await emu.api('GET', '/')).body.accounts.find((a) => a.phone_number === phone)?.devices[0]
    try {
      emu = await startEmulator({ env })
      trustEmulator(emu)
      const { client: c1, authDir } = await pairDevice(emu, phone, { settle: true })
      clients.push(c1)
      await until(async () => (await deviceOf())?.unacked === 0, 5000, 'the history sync to be acknowledged')
      stopReading(c1)
      const first = await (await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: phone, text: 'first, unacknowledged' })).body
      assert.equal(first.delivered_to, 1)
      cut(c1)
      await c1.waitClose(5000)
      await until(async () => (await emu.api('GET', '/')).body.connections.length === 0, 5000, 'the connection to close')
      const second = await (await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: phone, text: 'second, queued' })).body
      assert.equal(second.queued_for, 1)
      assert.deepEqual(await deviceOf().then((d) => [d.unacked, d.queued]), [1, 1])
      assert.equal((await emu.stop()).code, 0)

      emu = await startEmulator({ env })
      trustEmulator(emu)
      assert.deepEqual(await deviceOf().then((d) => [d.unacked, d.queued]), [1, 1], 'both kept in the state file')
      const c2 = await openClient(emu, authDir)
      clients.push(c2)
      await c2.waitOpen(10000)
      await c2.waitFor(() => upsertOf(c2, first.id) && upsertOf(c2, second.id), 8000, 'both messages')
      const order = c2.rec.upserts.flatMap((u) => u.messages.map((m) => ({ id: m.key.id, type: u.type })))
        .filter((x) => x.id === first.id || x.id === second.id)
      assert.deepEqual(order, [{ id: first.id, type: 'append' }, { id: second.id, type: 'append' }])
      assert.equal(upsertOf(c2, first.id).m.message?.conversation, 'first, unacknowledged')
      await until(async () => (await deviceOf()).unacked === 0, 5000, 'both to be acknowledged')
      await c2.end()
      // and what was acknowledged is gone from the state file too
      assert.equal((await emu.stop()).code, 0)
      const saved = JSON.parse(fs.readFileSync(env.WA_EMULATOR_STATE_FILE, 'utf8'))
      const dev = saved.users.find((u) => u.phone === phone.slice(1)).devices[0]
      assert.deepEqual([dev.unacked.length, dev.pending.length], [0, 0])
    } finally {
      for (const c of clients) await c.end().catch(() => {})
      await emu?.stop()
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
    }
  })
})
