// The emulator's sender keys (sender-keys.js) against Baileys' own group cipher, both ways: what one encrypts
// the other decrypts (written separately from the protocol, they agree only if both follow it), and the
// emulated phone's checks: a forged signature, a key it was never given, a replayed message are refused.
// Then groups and sender keys survive an emulator restart, and a member device that was offline gets the
// group's notifications and messages at its next login.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { GroupCipher, GroupSessionBuilder, SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord } from 'baileys/lib/Signal/Group/index.js'
import { newOwnSenderKey, distributionMessage, groupEncrypt, processDistribution, groupDecrypt } from '../emulator/sender-keys.js'
import { startEmulator, trustEmulator, pairDevice, openClient, inboxEntry, tmpDir, until } from './emulator-helpers.js'

const memoryStore = () => {
  const records = new Map()
  return {
    loadSenderKey: async (name) => records.get(name.toString()) || new SenderKeyRecord(),
    storeSenderKey: async (name, record) => { records.set(name.toString(), record) }
  }
}
const NAME = new SenderKeyName('120363000000000001@g.us', { id: '15550000001', deviceId: 3, toString: () => '15550000001.3' })

describe('sender keys: the emulator and Baileys\' group cipher agree', () => {
  test('Baileys encrypts, the emulator decrypts (out of order too); a forged signature and a replay are refused', async () => {
    const store = memoryStore()
    const skdm = await new GroupSessionBuilder(store).create(NAME)
    const cipher = new GroupCipher(store, NAME)
    const sent = []
    for (const text of ['one', 'two', 'three']) sent.push(await cipher.encrypt(Buffer.from(text)))
    const record = processDistribution(null, skdm.serialize())
    assert.equal(groupDecrypt(record, sent[2]).toString(), 'three')
    assert.equal(groupDecrypt(record, sent[0]).toString(), 'one', 'a skipped message key was kept')
    assert.throws(() => groupDecrypt(record, sent[0]), /old counter/, 'a message key is used once')
    const forged = Buffer.from(sent[1])
    forged[forged.length - 1] ^= 0x01
    assert.throws(() => groupDecrypt(record, forged), /signature/)
    assert.equal(groupDecrypt(record, sent[1]).toString(), 'two', 'the forgery changed nothing')
    assert.throws(() => groupDecrypt(null, sent[1]), /No sender key/)
  })

  test('the emulator encrypts, Baileys decrypts; a message signed by another key fails the emulator\'s check', async () => {
    const own = newOwnSenderKey()
    const store = memoryStore()
    await new GroupSessionBuilder(store).process(NAME, new SenderKeyDistributionMessage(null, null, null, null, distributionMessage(own)))
    const cipher = new GroupCipher(store, NAME)
    assert.equal(Buffer.from(await cipher.decrypt(groupEncrypt(own, Buffer.from('hi')))).toString(), 'hi')
    assert.equal(Buffer.from(await cipher.decrypt(groupEncrypt(own, Buffer.from('again')))).toString(), 'again')
    const other = newOwnSenderKey()
    other.keyId = own.keyId
    const record = processDistribution(null, distributionMessage(own))
    assert.throws(() => groupDecrypt(record, groupEncrypt(other, Buffer.from('x'))), /signature/)
  })
})

describe('groups across an emulator restart and an offline member device', () => {
  test('the group, its members and the sender keys are in the state file; an offline device gets what it missed', async () => {
    const dir = tmpDir()
    const env = { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json'), WA_EMULATOR_RECEIPT_DELAY_MS: '20' }
    let emu = await startEmulator({ env })
    trustEmulator(emu)
    const clients = []
    try {
      const paired = await pairDevice(emu, '+15550006101', { settle: true })
      let a = paired.client
      const { id } = await a.sock.groupCreate('Kept', ['15550006201@s.whatsapp.net'])
      const first = await a.sock.sendMessage(id, { text: 'before' })
      assert.equal((await inboxEntry(emu, '+15550006201', first.key.id)).text, 'before')
      await a.end()
      // while the device is away a contact writes to the group: queued for it, kept across the restart
      const offline = await emu.api('POST', '/contacts/+15550006201/messages', { to: id, text: 'while you were away' })
      assert.deepEqual([offline.status, offline.body.queued_for], [200, 1])
      assert.equal((await emu.stop()).code, 0)
      emu = await startEmulator({ env })
      trustEmulator(emu)
      assert.deepEqual((await emu.api('GET', '/groups')).body.map((g) => [g.id, g.subject, g.participants.length]), [[id, 'Kept', 2]])
      a = await openClient(emu, paired.authDir)
      clients.push(a)
      await a.waitOpen(10000)
      const got = await a.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === offline.body.id && m.message), 10000, 'the queued group message')
      assert.equal(got.message.conversation, 'while you were away')
      const after = await a.sock.sendMessage(id, { text: 'after' })
      assert.equal((await inboxEntry(emu, '+15550006201', after.key.id)).text, 'after', 'the contact kept the sender key')
      const again = await emu.api('POST', '/contacts/+15550006201/messages', { to: id, text: 'mine too' })
      await until(() => a.rec.upserts.flatMap((u) => u.messages).find((m) => m.key.id === again.body.id && m.message?.conversation === 'mine too'), 10000, 'the contact\'s key kept')
    } finally {
      for (const c of clients) await c.end().catch(() => {})
      await emu.stop()
    }
  })
})
