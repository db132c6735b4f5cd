// LID-addressed groups (WA_EMULATOR_GROUP_ADDRESSING=lid), as WhatsApp makes new groups: participants named by
// LID with their phone number beside, Baileys sending with its LID identity, senders named by LID device jid
// with participant_pn. The same fan-out, sender keys and notifications as the PN groups of the other files.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, trustEmulator, pairDevice, inboxEntry, until } from './emulator-helpers.js'

const ACCOUNT = '+15550005101'
const OTHER = '+15550005102'
const C1 = '+15550005201'
const C2 = '+15550005202'
const jidOf = (phone) => `${phone.slice(1)}@s.whatsapp.net`
const textOf = (m) => m.message?.conversation || m.message?.extendedTextMessage?.text

describe('LID-addressed groups with the real Baileys client', () => {
  let emu
  let a
  let b
  let lids
  const participantsEvents = []
  const upsertedText = (client, id) => client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id && textOf(m)), 10000, `upsert ${id}`)

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20', WA_EMULATOR_GROUP_ADDRESSING: 'lid' } })
    trustEmulator(emu)
    a = (await pairDevice(emu, ACCOUNT, { settle: true })).client
    b = (await pairDevice(emu, OTHER, { settle: true })).client
    a.sock.ev.on('group-participants.update', (u) => participantsEvents.push(u))
    for (const c of [C1, C2]) await emu.api('POST', '/contacts', { phone_number: c })
    const overview = (await emu.api('GET', '/')).body
    lids = Object.fromEntries([...overview.accounts, ...overview.contacts].map((x) => [x.phone_number, x.lid]))
  })

  after(async () => {
    await a?.end()
    await b?.end()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('create by phone numbers: the group names its participants by LID with their phone number', async () => {
    const meta = await a.sock.groupCreate('By LID', [jidOf(C1), jidOf(OTHER)])
    assert.equal(meta.addressingMode, 'lid')
    assert.equal(meta.owner, lids[ACCOUNT])
    assert.equal(meta.ownerPn, jidOf(ACCOUNT))
    const byId = Object.fromEntries(meta.participants.map((p) => [p.id, p.phoneNumber]))
    assert.deepEqual(byId, { [lids[ACCOUNT]]: jidOf(ACCOUNT), [lids[C1]]: jidOf(C1), [lids[OTHER]]: jidOf(OTHER) })
    const v = (await emu.api('GET', '/groups')).body.find((g) => g.id === meta.id)
    assert.deepEqual(v.participants.map((p) => p.phone_number).sort(), [ACCOUNT, C1, OTHER].sort())

    const sent = await a.sock.sendMessage(meta.id, { text: 'lid hello' })
    assert.equal((await inboxEntry(emu, C1, sent.key.id)).text, 'lid hello', 'the contact decrypts the LID identity\'s sender key')
    const atB = await upsertedText(b, sent.key.id)
    assert.equal(textOf(atB), 'lid hello')
    assert.equal(atB.key.participant, lids[ACCOUNT])
    assert.equal(atB.key.participantAlt, jidOf(ACCOUNT))

    const r = await emu.api('POST', `/contacts/${C1}/messages`, { to: meta.id, text: 'from C1 by LID' })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const got = await upsertedText(a, r.body.id)
    assert.equal(textOf(got), 'from C1 by LID')
    assert.equal(got.key.participant, lids[C1])
    assert.equal(got.key.participantAlt, jidOf(C1))

    const fromB = await b.sock.sendMessage(meta.id, { text: 'from the other account' })
    assert.equal(textOf(await upsertedText(a, fromB.key.id)), 'from the other account')
    assert.equal((await inboxEntry(emu, C1, fromB.key.id)).text, 'from the other account')
  })

  test('a participant added by phone number: the notification names it by LID with its phone number; it decrypts the next message', async () => {
    const meta = await a.sock.groupCreate('Grow', [jidOf(C1)])
    const res = await a.sock.groupParticipantsUpdate(meta.id, [jidOf(C2)], 'add')
    assert.equal(res[0].status, '200')
    const added = await until(() => participantsEvents.find((u) => u.id === meta.id && u.action === 'add'), 5000, 'the add notification')
    assert.deepEqual(added.participants.map((p) => [p.id, p.phoneNumber]), [[lids[C2], jidOf(C2)]])
    assert.equal(added.author, lids[ACCOUNT])
    const sent = await a.sock.sendMessage(meta.id, { text: 'welcome' })
    assert.equal((await inboxEntry(emu, C2, sent.key.id)).text, 'welcome')
  })
})
