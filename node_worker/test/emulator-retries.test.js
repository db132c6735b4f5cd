// The emulator's retry receipts in-process (emulator/retries.js): what a contact's phone asks when it
// cannot decrypt, checked with Baileys' own parser of retry receipts, and how it answers a device's
// retry receipt (the original plaintext again, on a session rebuilt from the receipt's keys), with
// both retry counts bounded. A libsignal party plays the companion device of the account.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { extractE2ESessionFromRetryReceipt } from 'baileys'
import { Emulator } from '../emulator/emulator.js'
import { Device } from '../emulator/accounts.js'
import { SignalParty } from '../emulator/signal-party.js'
import { generateKeyPair, toSignalPub } from '../emulator/crypto.js'
import { makeLogger, routeConsole } from '../emulator/log.js'
import { garble, MAX_RETRY_RECEIPTS, MAX_RESENDS } from '../emulator/retries.js'
import { proto, nodeFromJSON, padMessage, unpadMessage, child, uintBytes } from '../emulator/wa.js'

// libsignal prints whole sessions (private keys included) on console.*: kept as short debug records
routeConsole(makeLogger({ level: 'error', write: () => {} }))

const ACCOUNT = '15550006601'
const CONTACT = '15550006602'

/** an emulator in this process, an account with one linked device played by `companion`, and a contact */
const world = () => {
  const lines = []
  const emu = new Emulator({ log: makeLogger({ level: 'debug', write: (l) => lines.push(l) }), rootKey: generateKeyPair(), settings: { receiptDelayMs: 0 } })
  const account = emu.directory.ensure(ACCOUNT)
  account.isAccount = true
  const companion = SignalParty.create()
  const preKeys = new Map()
  for (let i = 0; i < 3; i++) {
    const { preKey } = companion.takeBundle()
    preKeys.set(preKey.keyId, preKey.publicKey)
  }
  const dev = new Device({
    phone: ACCOUNT,
    lid: account.lid,
    id: 1,
    keyIndex: 1,
    registrationId: companion.registrationId,
    identityKey: companion.identity.public,
    signedPreKey: { keyId: companion.signedPreKey.keyId, publicKey: companion.signedPreKey.keyPair.public, signature: companion.signedPreKey.signature },
    preKeys
  })
  account.devices.set(1, dev)
  const contact = emu.directory.ensure(CONTACT)
  const conn = { user: account, device: dev, log: emu.log }
  const contactAddr = SignalParty.address(CONTACT, 0)
  const text = (plain) => proto.Message.decode(unpadMessage(plain)).conversation
  /** stanzas the server keeps for the (offline) device, taken out */
  const taken = () => dev.pending.splice(0).map(nodeFromJSON)
  return { emu, lines, account, dev, contact, companion, conn, contactAddr, text, taken }
}

const counters = (w) => w.emu.overview().contacts.find((c) => c.phone_number === `+${CONTACT}`)

test('a phone that cannot decrypt keeps the message unreadable, asks again up to the retry count, and a copy that decrypts replaces it', async () => {
  const w = world()
  await w.companion.initSession(w.contactAddr, w.contact.signal.takeBundle())
  const good = await w.companion.encrypt(w.contactAddr, padMessage(proto.Message.encode({ conversation: 'secret hello' }).finish()))
  const node = { tag: 'message', attrs: { id: 'RETRYUNIT01', t: '1700000000' } }
  const enc = (ciphertext) => ({ tag: 'enc', attrs: { v: '2', type: good.type }, content: ciphertext })
  const receive = (ciphertext) => w.emu.messaging.phoneReceives(w.contact, w.account, w.dev, node, enc(ciphertext), 'pn')
  const entries = () => w.contact.inbox.filter((m) => m.id === 'RETRYUNIT01')

  for (let n = 1; n <= MAX_RETRY_RECEIPTS; n++) {
    assert.equal(await receive(garble(good.type, good.ciphertext)), 'retry')
    assert.equal(entries().length, 1)
    assert.equal(entries()[0].text, null)
    assert.match(entries()[0].error, /Bad MAC/)
    assert.equal(entries()[0].retries, n)
    w.emu.retries.sendRetryReceipt(w.contact, w.account, w.dev, 'RETRYUNIT01', node.attrs.t, 'pn')
    const [receipt] = w.taken()
    assert.equal(receipt.attrs.type, 'retry')
    assert.equal(child(receipt, 'retry').attrs.count, String(n))
    assert.equal(child(receipt, 'retry').attrs.t, node.attrs.t)
    const bundle = extractE2ESessionFromRetryReceipt(receipt) // what the worker's Baileys reads from it
    if (n === 1) {
      assert.equal(child(receipt, 'keys'), undefined, 'a first retry carries no keys (Baileys, whatsmeow)')
      assert.equal(bundle, null)
    } else {
      assert.equal(bundle.registrationId, w.contact.signal.registrationId)
      assert.deepEqual(Buffer.from(bundle.identityKey), toSignalPub(w.contact.signal.identity.public))
      assert.ok(w.contact.signal.preKeys.has(bundle.preKey.keyId), 'the one-time prekey is kept for the pkmsg it invites')
      assert.ok(child(child(receipt, 'keys'), 'device-identity'))
    }
  }
  assert.equal(await receive(garble(good.type, good.ciphertext)), 'failed', 'no retry beyond the retry count')
  assert.equal(counters(w).messages_undecryptable, 1)
  assert.equal(counters(w).retry_receipts_sent, MAX_RETRY_RECEIPTS)

  assert.equal(await receive(good.ciphertext), 'stored')
  assert.equal(entries().length, 1, 'stored once')
  assert.equal(entries()[0].text, 'secret hello')
  assert.equal(entries()[0].error, undefined)
  assert.equal(entries()[0].retries, MAX_RETRY_RECEIPTS)
  assert.equal(counters(w).messages_undecryptable, 0)
  assert.ok(!w.lines.join('\n').includes('secret'), 'a message body reached the log')
})

test('the keys of a retry receipt are a bundle a device can start a session with', async () => {
  const w = world()
  const keys = w.emu.retries.keysNode(w.contact)
  const bundle = extractE2ESessionFromRetryReceipt({ tag: 'receipt', attrs: {}, content: [{ tag: 'registration', attrs: {}, content: Buffer.from([0, 0, 0x30, 0x39]) }, keys] })
  assert.equal(bundle.registrationId, 0x3039)
  await w.companion.initSession(w.contactAddr, bundle)
  const { type, ciphertext } = await w.companion.encrypt(w.contactAddr, padMessage(proto.Message.encode({ conversation: 'after keys' }).finish()))
  assert.equal(type, 'pkmsg')
  const plain = await w.contact.signal.decrypt(SignalParty.address(ACCOUNT, 1), type, ciphertext)
  assert.equal(w.text(plain), 'after keys')
})

test("a device's retry receipt gets the original message again: on a session rebuilt from its keys, else on the kept one, at most MAX_RESENDS times", async () => {
  const w = world()
  const sent = await w.emu.messaging.contactSends(CONTACT, { to: `+${ACCOUNT}`, text: 'secret original' })
  const deviceAddr = SignalParty.address(CONTACT, 0) // how the companion names the contact's phone
  const [first] = w.taken()
  const firstEnc = child(first, 'enc')
  assert.equal(w.text(await w.companion.decrypt(deviceAddr, firstEnc.attrs.type, firstEnc.content)), 'secret original')

  // as the worker's Baileys sends it (sendRetryRequest): its registration id, keys from count 2 on
  const retry = (count, withKeys) => ({
    tag: 'receipt',
    attrs: { id: sent.id, type: 'retry', to: `${CONTACT}@s.whatsapp.net` },
    content: [
      { tag: 'retry', attrs: { count: String(count), id: sent.id, t: '1', v: '1', error: '0' } },
      { tag: 'registration', attrs: {}, content: uintBytes(w.companion.registrationId, 4) },
      ...(withKeys ? [w.emu.retries.keysNode({ signal: w.companion })] : [])
    ]
  })

  // without keys and with the same registration id: the kept session (the device still has it)
  await w.emu.retries.onRetryReceipt(w.conn, retry(1, false), w.contact)
  let [copy] = w.taken()
  assert.equal(copy.attrs.id, sent.id)
  assert.equal(child(copy, 'enc').attrs.count, '1')
  assert.equal(w.text(await w.companion.decrypt(deviceAddr, child(copy, 'enc').attrs.type, child(copy, 'enc').content)), 'secret original')
  assert.equal(counters(w).sent_undecryptable, 1, 'a retry receipt is no delivery')

  // the device lost its session and sends keys: only a session rebuilt from them can be read
  for (let n = 2; n <= MAX_RESENDS; n++) {
    w.companion.sessions.clear()
    await w.emu.retries.onRetryReceipt(w.conn, retry(n, true), w.contact)
    ;[copy] = w.taken()
    assert.equal(child(copy, 'enc').attrs.type, 'pkmsg')
    assert.equal(w.text(await w.companion.decrypt(deviceAddr, 'pkmsg', child(copy, 'enc').content)), 'secret original')
  }
  await w.emu.retries.onRetryReceipt(w.conn, retry(MAX_RESENDS + 1, true), w.contact)
  assert.deepEqual(w.taken(), [], 'nothing beyond MAX_RESENDS')
  let c = counters(w)
  assert.equal(c.messages_resent, MAX_RESENDS)
  assert.equal(c.retry_receipts_received, MAX_RESENDS + 1)
  assert.equal(c.sent_undecryptable, 1)

  // a delivery receipt of that device ends it
  w.emu.retries.onReceipt(w.conn, w.contact, [sent.id], 'inactive')
  c = counters(w)
  assert.equal(c.sent_undecryptable, 0)
  assert.ok(!w.lines.join('\n').includes('secret'), 'a message body reached the log')
})

test('a retry receipt whose keys do not verify, or for an unknown message, is not answered', async () => {
  const w = world()
  const sent = await w.emu.messaging.contactSends(CONTACT, { to: `+${ACCOUNT}`, text: 'secret x' })
  w.taken()
  const keys = w.emu.retries.keysNode({ signal: w.companion })
  child(child(keys, 'skey'), 'signature').content[0] ^= 1
  const node = (id) => ({ tag: 'receipt', attrs: { id, type: 'retry' }, content: [{ tag: 'retry', attrs: { count: '2', id } }, { tag: 'registration', attrs: {}, content: Buffer.from([0, 0, 0, 1]) }, keys] })
  await w.emu.retries.onRetryReceipt(w.conn, node(sent.id), w.contact)
  await w.emu.retries.onRetryReceipt(w.conn, node('NOSUCHMESSAGE'), w.contact)
  assert.deepEqual(w.taken(), [])
  assert.equal(counters(w).messages_resent, 0)
  assert.equal(counters(w).retry_receipts_received, 2)
  const refused = w.lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'retry.not_resent').map((l) => l.reason)
  assert.deepEqual(refused, ['signed_prekey_signature_invalid', 'message_unknown'])
})

test('a phone decrypts as the libsignal of phones does: a failed try on another session leaves it intact, the session that decrypts becomes the open one', async () => {
  // both sides start a session at once (each sends a pkmsg), then each writes on its open session
  const worker = SignalParty.create()
  const phone = SignalParty.create()
  const toPhone = SignalParty.address('phone', 0)
  const toWorker = SignalParty.address('worker', 1)
  await worker.initSession(toPhone, phone.takeBundle())
  await phone.initSession(toWorker, worker.takeBundle())
  const w1 = await worker.encrypt(toPhone, Buffer.from('w1'))
  const p1 = await phone.encrypt(toWorker, Buffer.from('p1'))
  assert.equal(String(await worker.decrypt(toPhone, p1.type, p1.ciphertext)), 'p1')
  assert.equal(String(await phone.decrypt(toWorker, w1.type, w1.ciphertext)), 'w1')
  for (let i = 2; i < 6; i++) {
    const w = await worker.encrypt(toPhone, Buffer.from(`w${i}`)) // on the worker's open session: the phone's
    assert.equal(String(await phone.decrypt(toWorker, w.type, w.ciphertext)), `w${i}`)
    const p = await phone.encrypt(toWorker, Buffer.from(`p${i}`)) // the phone answers on the one that worked
    assert.equal(p.type, 'msg')
    assert.equal(String(await worker.decrypt(toPhone, p.type, p.ciphertext)), `p${i}`)
  }
  await assert.rejects(phone.decrypt(toWorker, 'msg', garble('msg', (await worker.encrypt(toPhone, Buffer.from('x'))).ciphertext)), /No matching sessions/)
  phone.sessions.clear()
  await assert.rejects(phone.decrypt(toWorker, 'msg', (await worker.encrypt(toPhone, Buffer.from('y'))).ciphertext), /No session record/)
})
