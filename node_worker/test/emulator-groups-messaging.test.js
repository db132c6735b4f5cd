// Group messages through the emulator with the real Baileys client: its relayMessage group branch (sender key
// distribution in pkmsg/msg per device, one skmsg) fanned out to every participant device; emulated contacts
// that process the SKDM and decrypt the skmsg (sender-keys.js, the signature verified), and that send to the
// group with their own sender key, which Baileys decrypts with the right participant; a second Baileys
// account in the group; group receipts; a participant added later (new distribution) and one removed.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, trustEmulator, pairDevice, inbox, inboxEntry, until, sleep } from './emulator-helpers.js'

const ACCOUNT = '+15550008101'
const OTHER = '+15550008102' // a second account, a bare Baileys client, as a member
const C1 = '+15550008201'
const C2 = '+15550008202'
const C3 = '+15550008203'
const C4 = '+15550008204'
const jidOf = (phone) => `${phone.slice(1)}@s.whatsapp.net`
const textOf = (m) => m.message.conversation || m.message.extendedTextMessage?.text

describe('group messages between the real Baileys client and emulated members', () => {
  let emu
  let a
  let a2 // a second linked device of the account
  let b
  let group
  const upserted = (client, id) => client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id && m.message), 10000, `upsert ${id}`)
  const contactSends = async (phone, text) => {
    const r = await emu.api('POST', `/contacts/${phone}/messages`, { to: group, text })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body
  }

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20' } })
    trustEmulator(emu)
    a = (await pairDevice(emu, ACCOUNT, { settle: true })).client
    a2 = (await pairDevice(emu, ACCOUNT, { settle: true })).client
    b = (await pairDevice(emu, OTHER, { settle: true })).client
    group = (await a.sock.groupCreate('Chat', [jidOf(C1), jidOf(C2), jidOf(C3), jidOf(OTHER)])).id
  })

  after(async () => {
    await a?.end()
    await a2?.end()
    await b?.end()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('each contact decrypts the account\'s group message; the other account\'s Baileys too; receipts come back per participant', async () => {
    const sent = await a.sock.sendMessage(group, { text: 'hello team' })
    for (const c of [C1, C2, C3]) {
      const e = await inboxEntry(emu, c, sent.key.id)
      assert.equal(e.text, 'hello team', `${c} decrypted it: ${JSON.stringify(e)}`)
      assert.equal(e.group_id, group)
      assert.equal(e.from, ACCOUNT)
      assert.match(e.participant, new RegExp(`^${ACCOUNT.slice(1)}:\\d+@s\\.whatsapp\\.net$`), 'the sending device')
    }
    const own = await upserted(a2, sent.key.id)
    assert.deepEqual([textOf(own), own.key.fromMe, own.key.remoteJid], ['hello team', true, group], 'the account\'s other device')
    const got = await upserted(b, sent.key.id)
    assert.equal(textOf(got), 'hello team')
    assert.equal(got.key.remoteJid, group)
    assert.equal(got.key.participant, jidOf(ACCOUNT))
    // Baileys folds receipts that arrive while its own upsert of the message is still buffered into that
    // message's userReceipt (event-buffer.js), the others come as message-receipt.update
    const receipts = await until(() => {
      const users = new Set(a.rec.receipts.filter((r) => r.key.id === sent.key.id).map((r) => r.receipt.userJid))
      for (const m of a.rec.upserts.flatMap((u) => u.messages)) if (m.key.id === sent.key.id) for (const r of m.userReceipt || []) users.add(r.userJid)
      return [C1, C2, C3].every((c) => users.has(jidOf(c))) && users
    }, 10000, 'a delivery receipt of each contact')
    assert.ok(receipts.size >= 3)
    const second = await a.sock.sendMessage(group, { text: 'second' })
    for (const c of [C1, C2, C3]) assert.equal((await inboxEntry(emu, c, second.key.id)).text, 'second', 'the same sender key, next iteration')
  })

  test('a contact\'s group message reaches Baileys decrypted, from the right participant; the other contacts decrypt it too', async () => {
    const sent = await contactSends(C1, 'from C1')
    const got = await upserted(a, sent.id)
    assert.equal(got.message.conversation, 'from C1')
    assert.equal(got.key.remoteJid, group)
    assert.equal(got.key.participant, jidOf(C1))
    assert.equal(got.key.fromMe, false)
    assert.equal((await upserted(b, sent.id)).message.conversation, 'from C1')
    assert.equal((await upserted(a2, sent.id)).message.conversation, 'from C1', 'every device of the account')
    assert.equal((await inboxEntry(emu, C2, sent.id)).text, 'from C1')
    const next = await contactSends(C1, 'again')
    assert.equal((await upserted(a, next.id)).message.conversation, 'again', 'no second distribution needed')
    await until(async () => (await emu.api('GET', `/contacts/${C1}/receipts-received`)).body.some((r) => r.id === next.id && r.from === ACCOUNT), 10000, 'the account\'s group receipt at C1')
  })

  test('a phone that cannot decrypt the account\'s group message sends a retry receipt; Baileys sends it again with its sender key', async () => {
    assert.equal((await emu.api('POST', '/contacts', { phone_number: C2, fail_decrypt_once: true })).status, 200)
    try {
      const sent = await a.sock.sendMessage(group, { text: 'ask me again' })
      const e = await inboxEntry(emu, C2, sent.key.id, (m) => m.text === 'ask me again')
      assert.deepEqual([e.error, e.retries], [null, 1], 'readable after one retry')
      assert.ok((await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === C2).retry_receipts_sent >= 1)
      assert.equal((await inboxEntry(emu, C1, sent.key.id)).text, 'ask me again', 'the others are not disturbed')
    } finally {
      await emu.api('POST', '/contacts', { phone_number: C2, fail_decrypt_once: false })
    }
  })

  test('a damaged skmsg (garble): Baileys asks again (retry receipt to the group) and gets the message with the sender key on its session', async () => {
    assert.equal((await emu.api('POST', '/faults', { kind: 'garble', phone_number: C3 })).status, 200)
    const before = (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === C3).messages_resent
    const sent = await contactSends(C3, 'damaged once')
    // the first copy's pkmsg (its sender key) decrypts, its skmsg does not: the text comes with the resend
    const got = await a.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === sent.id && m.message?.conversation), 10000, 'the resent copy')
    assert.equal(got.message.conversation, 'damaged once')
    assert.equal(got.key.participant, jidOf(C3))
    const after = (await emu.api('GET', '/')).body.contacts.find((c) => c.phone_number === C3).messages_resent
    assert.ok(after > before, 'resent after a retry receipt')
    const retries = (await emu.api('GET', `/contacts/${C3}/receipts-received`)).body.filter((r) => r.id === sent.id && r.type === 'retry')
    assert.ok(retries.length >= 1)
    const next = await contactSends(C3, 'clean again')
    assert.equal((await upserted(a, next.id)).message.conversation, 'clean again')
  })

  test('the other account\'s Baileys sends to the group: the account and the contacts decrypt it', async () => {
    const sent = await b.sock.sendMessage(group, { text: 'from the other account' })
    const got = await upserted(a, sent.key.id)
    assert.equal(textOf(got), 'from the other account')
    assert.equal(got.key.participant, jidOf(OTHER))
    assert.equal((await inboxEntry(emu, C3, sent.key.id)).text, 'from the other account')
  })

  test('a contact reads the account\'s group message: Baileys gets a read receipt from that participant', async () => {
    const sent = await a.sock.sendMessage(group, { text: 'read me' })
    await inboxEntry(emu, C1, sent.key.id)
    const r = await emu.api('POST', `/contacts/${C1}/receipts`, { id: sent.key.id, type: 'read' })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    await until(() => [...a.rec.receipts, ...a.rec.upserts.flatMap((u) => u.messages).map((m) => ({ key: m.key, receipts: m.userReceipt || [] }))]
      .some((x) => x.key.id === sent.key.id && (x.receipt ? [x.receipt] : x.receipts).some((rc) => rc.userJid === jidOf(C1) && rc.readTimestamp)), 10000, 'the read receipt of C1')
  })

  test('every group stanza a linked device got is acknowledged: nothing left to redeliver at its next login', async () => {
    await until(async () => {
      const accounts = (await emu.api('GET', '/')).body.accounts.filter((x) => [ACCOUNT, OTHER].includes(x.phone_number))
      return accounts.length === 2 && accounts.every((x) => x.devices.every((d) => d.unacked === 0 && d.queued === 0))
    }, 10000, 'no unacknowledged stanza')
  })

  test('a participant added later decrypts the next message (a new distribution); a removed one gets nothing', async () => {
    const add = await a.sock.groupParticipantsUpdate(group, [jidOf(C4)], 'add')
    assert.equal(add[0].status, '200')
    const sent = await a.sock.sendMessage(group, { text: 'welcome C4' })
    assert.equal((await inboxEntry(emu, C4, sent.key.id)).text, 'welcome C4')
    const fromC4 = await contactSends(C4, 'thanks')
    assert.equal((await upserted(a, fromC4.id)).key.participant, jidOf(C4))
    await a.sock.groupParticipantsUpdate(group, [jidOf(C2)], 'remove')
    const after = await a.sock.sendMessage(group, { text: 'C2 is gone' })
    await inboxEntry(emu, C1, after.key.id)
    const fromC3 = await contactSends(C3, 'still here')
    await inboxEntry(emu, C1, fromC3.id)
    await sleep(200)
    const c2 = await inbox(emu, C2)
    assert.ok(!c2.some((m) => m.id === after.key.id || m.id === fromC3.id), 'the removed participant received nothing')
    const refused = await emu.api('POST', `/contacts/${C2}/messages`, { to: group, text: 'let me in' })
    assert.deepEqual([refused.status, refused.body.error.code], [409, 'not_in_group'])
  })
})
