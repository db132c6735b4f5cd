// End-to-end tests of the WhatsApp network emulator, driven by the real Baileys client.
import { test, before, after, afterEach, describe } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { startEmulator, trustEmulator, openClient, pairDevice, tmpDir, until, statusOf, inbox, inboxEntry } from './emulator-helpers.js'

const ACCOUNT = '+15550001111'
const ACCOUNT_USER = '15550001111'
const CONTACT = '+15550002222'
const CONTACT_JID = '15550002222@s.whatsapp.net'


// node 20's test runner cannot shuffle: EMU_TEST_SHUFFLE=<integer seed> registers the tests of the suite that
// shares one emulator in a seeded random order, to show that none depends on another having run first.
const inOrder = (cases) => {
  const seed = process.env.EMU_TEST_SHUFFLE
  if (!seed) return cases
  let s = Number(seed) >>> 0
  const random = () => { // mulberry32
    s = (s + 0x6D2B79F5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = [...cases]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

describe('emulator with the real Baileys client', () => {
  let emu
  let authDir // ACCOUNT's device, paired once in before(); tests that unlink, black-hole or pair use their own numbers
  const clients = []
  const track = (c) => { clients.push(c); return c }
  // ACCOUNT's shared device is idle between tests: wait until the emulator holds no connection of it
  const accountIdle = () => until(async () => !(await emu.api('GET', '/')).body.connections
    .some((c) => c.jid?.startsWith(`${ACCOUNT_USER}:`)), 5000, `no open connection of ${ACCOUNT}`)
  const login = async (config) => {
    await accountIdle()
    const c = track(await openClient(emu, authDir, config))
    await c.waitOpen(10000)
    return c
  }
  // Tests are registered at the end of this suite, in a seeded random order when EMU_TEST_SHUFFLE is set.
  const cases = []
  const scenario = (name, fn) => { cases.push([name, fn]) }

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '50', WA_EMULATOR_LOG_LEVEL: process.env.EMU_LOG_LEVEL || 'info' } })
    if (process.env.EMU_LOG_DUMP) process.on('exit', () => fs.writeFileSync(process.env.EMU_LOG_DUMP, emu.lines.map((l) => JSON.stringify(l)).join('\n')))
    trustEmulator(emu)
    const paired = await pairDevice(emu, ACCOUNT, { settle: true }) // later tests log in again with it
    authDir = paired.authDir
    await paired.client.end()
  })

  // every socket a test opened is ended after it, passed or failed, and no black hole outlives its test,
  // so that no test inherits a connection or a fault
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => {})
    await until(async () => (await emu.api('GET', '/')).body.blackholes.length === 0, 10000, 'the black holes to end')
  })

  after(async () => {
    if (emu) {
      const { code } = await emu.stop()
      assert.equal(code, 0, 'graceful exit on SIGTERM')
      assert.deepEqual(emu.lines.filter((l) => l.unparsable), [], 'stdout is JSON lines only')
    }
    if (authDir) fs.rmSync(authDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })

  scenario('pairs through QR + /phone/scan, then logs in after 515 with the right number', async () => {
    const phone = '+15550003101'
    const paired = await pairDevice(emu, phone)
    track(paired.client)
    // the first login gets the phone's history-sync notification, so Baileys goes online at once
    await paired.client.waitFor((r) => r.history.length > 0, 3000, 'history sync')
    assert.equal(paired.scan.phone_number, phone)
    assert.match(paired.scan.jid, /^15550003101:1@s\.whatsapp\.net$/)
    assert.match(paired.scan.lid, /^\d+:1@lid$/)
    assert.equal(paired.client.sock.user.id, paired.scan.jid)
    const { body } = await emu.api('GET', '/')
    const acc = body.accounts.find((a) => a.phone_number === phone)
    assert.ok(acc, 'account listed')
    assert.equal(acc.devices.length, 1)
    assert.equal(acc.devices[0].connected, true)
    assert.ok(body.connections.some((c) => c.jid === paired.scan.jid && c.state === 'connected'))
    assert.equal(body.root_public_key, emu.rootPublicKey)
    await paired.client.end()
    fs.rmSync(paired.authDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })

  scenario('text with non-ASCII and emoji arrives decrypted; same id twice is one message; receipts reach Baileys', async () => {
    const c = await login()
    const text = 'Grüße, 世界! 👋🏽 — ünïcödé ✓'
    await c.sock.sendMessage(CONTACT_JID, { text }, { messageId: 'EMUTEST0001' })
    // sendMessage resolves once the node is written, not once the emulator stored it
    await inboxEntry(emu, CONTACT, 'EMUTEST0001')
    const msgs = await inbox(emu, CONTACT)
    const got = msgs.filter((m) => m.id === 'EMUTEST0001')
    assert.equal(got.length, 1)
    assert.equal(got[0].text, text)
    assert.equal(got[0].from, ACCOUNT)
    assert.equal(got[0].duplicate_count, 0)
    assert.equal(typeof got[0].timestamp, 'number')
    // delivery receipt (status 3), either as its own update or folded into the buffered upsert
    await c.waitFor(() => statusOf(c, 'EMUTEST0001') >= 3, 5000, 'delivery receipt')

    await c.sock.sendMessage(CONTACT_JID, { text }, { messageId: 'EMUTEST0001' })
    await inboxEntry(emu, CONTACT, 'EMUTEST0001', (m) => m.duplicate_count >= 1)
    const same = (await inbox(emu, CONTACT)).filter((m) => m.id === 'EMUTEST0001')
    assert.equal(same.length, 1)
    assert.equal(same[0].duplicate_count, 1)

    const read = await emu.api('POST', `/contacts/${CONTACT}/receipts`, { id: 'EMUTEST0001', type: 'read' })
    assert.equal(read.status, 200)
    await c.waitFor(() => statusOf(c, 'EMUTEST0001') >= 4, 5000, 'read receipt')

    const unknown = await emu.api('POST', `/contacts/${CONTACT}/receipts`, { id: 'NOPE', type: 'read' })
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.error.code, 'message_unknown')

    // a plain conversation message too, over the now established session (enc type msg)
    await c.sock.sendMessage(CONTACT_JID, { text: 'second' }, { messageId: 'EMUTEST0002' })
    assert.equal((await inboxEntry(emu, CONTACT, 'EMUTEST0002')).text, 'second')
    await c.end()
  })

  scenario("a contact's message reaches messages.upsert with the exact text, and the device's receipt is recorded", async () => {
    const c = await login()
    const text = 'Antwort: ça va? 🚀🇧🇷'
    const res = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text })
    assert.equal(res.status, 200)
    assert.match(res.body.id, /^[0-9A-F]{32}$/)
    const msg = await c.waitFor((r) => r.upserts.flatMap((u) => u.messages.map((m) => ({ m, type: u.type }))).find(({ m }) => m.key.id === res.body.id), 5000, 'upsert')
    assert.equal(msg.type, 'notify')
    assert.equal(msg.m.key.fromMe, false)
    assert.equal(msg.m.key.remoteJid, CONTACT_JID)
    assert.equal(msg.m.message?.conversation, text)
    // Baileys acknowledged it with a receipt that the emulator recorded for the contact
    const r = await until(async () => (await emu.api('GET', `/contacts/${CONTACT}/receipts-received`)).body
      .find((x) => x.id === res.body.id), 2500, 'the receipt to be recorded')
    assert.equal(r.from, ACCOUNT)
    // a second message uses the established session (type msg)
    const res2 = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text: 'again' })
    const m2 = await c.waitFor((rec) => rec.upserts.flatMap((u) => u.messages).find((m) => m.key.id === res2.body.id), 5000, 'second upsert')
    assert.equal(m2.message?.conversation, 'again')
    await c.end()
  })

  scenario('messages sent while the device is offline are delivered at its next login', async () => {
    await accountIdle()
    const res = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text: 'while you were away' })
    assert.equal(res.status, 200)
    assert.equal(res.body.queued_for, 1)
    const c = await login()
    const m = await c.waitFor((rec) => rec.upserts.flatMap((u) => u.messages).find((x) => x.key.id === res.body.id), 5000, 'offline message')
    assert.equal(m.message?.conversation, 'while you were away')
    await c.end()
  })

  scenario('logging in again with saved credentials needs no QR', async () => {
    const c = await login()
    assert.equal(c.rec.qrs.length, 0)
    assert.equal(c.sock.user.id.split(':')[0], ACCOUNT_USER)
    await c.end()
  })

  scenario('a number declared not on WhatsApp is reported so and a send to it fails', async () => {
    const decl = await emu.api('POST', '/contacts', { phone_number: '+15550009999', on_whatsapp: false })
    assert.equal(decl.status, 200)
    assert.equal(decl.body.on_whatsapp, false)
    const c = await login()
    const [res] = await c.sock.onWhatsApp('+15550009999')
    assert.ok(!res || res.exists === false)
    const [yes] = await c.sock.onWhatsApp(CONTACT)
    assert.equal(yes.exists, true)
    const sent = await c.sock.sendMessage('15550009999@s.whatsapp.net', { text: 'hello?' }, { messageId: 'EMUTEST0404' })
    assert.ok(sent)
    // The error ack comes as its own messages.update, or folded by Baileys' event buffer into the message's
    // still-buffered upsert (the ack can arrive before Baileys flushes it): read both.
    await c.waitFor(() => c.rec.msgUpdates.find((u) => u.key.id === 'EMUTEST0404' && u.update.status === 0) ||
      c.rec.upserts.some((u) => u.messages.some((m) => m.key.id === 'EMUTEST0404' && m.status === 0)), 5000, 'error ack')
    const { body } = await emu.api('GET', '/contacts/+15550009999/messages')
    assert.deepEqual(body, [])
    const fromNonWa = await emu.api('POST', '/contacts/+15550009999/messages', { to: ACCOUNT, text: 'x' })
    assert.equal(fromNonWa.status, 409)
    await c.end()
  })

  scenario('control API errors: stale and unknown QR, missing qr, bad JSON, no linked device', async () => {
    // a QR whose connection is gone (the pairing ended with 515) is expired
    const dir = tmpDir()
    const first = track(await openClient(emu, dir))
    const qr = await first.waitFor((r) => r.qrs[0], 10000, 'qr')
    const missing = await emu.api('POST', '/phone/scan', { phone_number: '+15550003333' })
    assert.equal(missing.status, 422)
    assert.equal(missing.body.error.code, 'qr_required')
    const ok = await emu.api('POST', '/phone/scan', { phone_number: '+15550003333', qr })
    assert.equal(ok.status, 200)
    await first.waitClose(5000)
    const stale = await emu.api('POST', '/phone/scan', { phone_number: '+15550003333', qr })
    assert.equal(stale.status, 410)
    assert.equal(stale.body.error.code, 'qr_expired')
    const k = Buffer.alloc(32, 2).toString('base64')
    const unknown = await emu.api('POST', '/phone/scan', { phone_number: '+15550003333', qr: `https://wa.me/settings/linked_devices#2@nope,${k},${k},${k},1` })
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.error.code, 'qr_unknown')
    // a client whose QR refs ran out closes (408): its QRs are expired too
    const dir2 = tmpDir()
    const shortLived = track(await openClient(emu, dir2, { qrTimeout: 100 }))
    const oldQr = await shortLived.waitFor((r) => r.qrs[0], 5000, 'qr')
    await shortLived.waitClose(5000)
    assert.equal(shortLived.closeCode(), 408)
    const expired = await emu.api('POST', '/phone/scan', { phone_number: '+15550003333', qr: oldQr })
    assert.equal(expired.status, 410)
    fs.rmSync(dir2, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
    const bad = await emu.api('POST', '/phone/scan', '{not json')
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'bad_json')
    const noDevice = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: '+15550004444', text: 'x' })
    assert.equal(noDevice.status, 409)
    assert.equal(noDevice.body.error.code, 'no_linked_device')
    const nf = await emu.api('GET', '/nothing-here')
    assert.equal(nf.status, 404)
    const badFault = await emu.api('POST', '/faults', { kind: 'meteor' })
    assert.equal(badFault.status, 400)
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })

  // Faults that close the socket with a code Baileys maps to a reconnect reason.
  for (const { kind, scoped, code } of [
    { kind: 'restart_required', scoped: true, code: 515 },
    { kind: 'conflict', scoped: true, code: 440 },
    { kind: 'disconnect', scoped: false, code: 428 }
  ]) {
    scenario(`fault ${kind} -> ${code}`, async () => {
      const c = await login()
      const f = await emu.api('POST', '/faults', scoped ? { kind, phone_number: ACCOUNT } : { kind })
      if (scoped) assert.equal(f.body.applied_to, 1)
      else assert.ok(f.body.applied_to >= 1)
      await c.waitClose(5000)
      assert.equal(c.closeCode(), code)
    })
  }

  scenario("fault blackhole -> Baileys' keep-alive gives up (408); new handshakes get no answer", async () => {
    const c = await login({ keepAliveIntervalMs: 500 })
    const f = await emu.api('POST', '/faults', { kind: 'blackhole', seconds: 7, phone_number: ACCOUNT })
    assert.equal(f.body.applied_to, 1)
    // meanwhile an unscoped black hole does not even answer the Noise handshake: a new client gets no QR
    await emu.api('POST', '/faults', { kind: 'blackhole', seconds: 1.5 })
    const active = (await emu.api('GET', '/')).body.blackholes
    assert.deepEqual(active.map((b) => b.phone_number).sort(), [ACCOUNT, null].sort())
    const c2 = track(await openClient(emu, tmpDir(), { connectTimeoutMs: 1000 }))
    await c2.waitFor((r) => r.closed || r.qrs.length > 0, 5000, 'the new client to give up')
    assert.equal(c2.rec.qrs.length, 0, 'the handshake was answered: the new client showed a QR')
    assert.equal(c2.rec.open, false)
    await c.waitClose(9000)
    assert.equal(c.closeCode(), 408)
    // once the emulator reports no black hole in force, the device connects again
    await until(async () => (await emu.api('GET', '/')).body.blackholes.length === 0, 5000, 'the black holes to end')
    const c3 = await login()
    await c3.end()
  })

  scenario('fault logout -> 401, and the unlinked device cannot log in again (401)', async () => {
    const phone = '+15550007001' // its own device: this test unlinks it
    const { client: c, authDir: dir } = await pairDevice(emu, phone)
    track(c)
    const f = await emu.api('POST', '/faults', { kind: 'logout', phone_number: phone })
    assert.equal(f.body.applied_to, 1)
    await c.waitClose(5000)
    assert.equal(c.closeCode(), 401)
    const again = track(await openClient(emu, dir))
    await again.waitClose(5000)
    assert.equal(again.closeCode(), 401)
    const { body } = await emu.api('GET', '/')
    assert.equal(body.accounts.find((a) => a.phone_number === phone).devices.length, 0)
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })

  scenario('two gateways talk to each other; a second device of the account gets the copy', async () => {
    const A = '+15550006001'
    const B = '+15550006002'
    const a1 = track((await pairDevice(emu, A)).client)
    const b1 = track((await pairDevice(emu, B)).client)
    const a2 = track((await pairDevice(emu, A)).client)
    const findMsg = (c, id) => c.rec.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id)
    await a1.sock.sendMessage('15550006002@s.whatsapp.net', { text: 'A → B 🙂' }, { messageId: 'EMUGW0001' })
    const atB = await b1.waitFor(() => findMsg(b1, 'EMUGW0001'), 5000, 'message at B')
    assert.equal(atB.key.fromMe, false)
    assert.equal(atB.message?.extendedTextMessage?.text, 'A → B 🙂')
    const copy = await a2.waitFor(() => findMsg(a2, 'EMUGW0001'), 5000, 'copy at A2')
    assert.equal(copy.key.fromMe, true)
    assert.equal(copy.message?.extendedTextMessage?.text, 'A → B 🙂')
    await a1.waitFor(() => statusOf(a1, 'EMUGW0001') >= 3, 5000, 'receipt at A1')
    await b1.sock.sendMessage('15550006001@s.whatsapp.net', { text: 'B → A' }, { messageId: 'EMUGW0002' })
    for (const c of [a1, a2]) {
      const m = await c.waitFor(() => findMsg(c, 'EMUGW0002'), 5000, 'message at A')
      assert.equal(m.message?.extendedTextMessage?.text, 'B → A')
    }
    for (const c of [a1, b1, a2]) await c.end()
  })

  scenario('sock.logout() unlinks the device on the emulator', async () => {
    const { client, authDir: dir } = await pairDevice(emu, '+15550005555')
    track(client)
    await client.sock.logout()
    await client.waitClose(5000)
    assert.equal(client.closeCode(), 401)
    await until(async () => (await emu.api('GET', '/')).body.accounts
      .find((a) => a.phone_number === '+15550005555').devices.length === 0, 2000, 'the device to be unlinked')
    // A closed client may still write its keys for a moment (the dir is then not empty yet): rm retries.
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })

  for (const [name, fn] of inOrder(cases)) test(name, fn)
})
