// History sync from the account's phone, with the real Baileys client: what POST /accounts/{phone}/history
// seeded reaches a newly linked device as HISTORY_SYNC_NOTIFICATIONs whose blobs Baileys downloads from the
// media host (the default host mmg.whatsapp.net routed to the emulator's, as a sandbox client must), and
// POST /accounts/{phone}/history/send syncs it again into an already-linked device, groups included.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { Agent, Dispatcher } from 'undici'
import { proto, jidNormalizedUser } from 'baileys'
import { startEmulator, trustEmulator, pairDevice, openClient, tmpDir } from './emulator-helpers.js'

const ACCOUNT = '+15550101000'
const ALICE = '+15550101001' // a 1:1 chat by phone number
const BOB = '+15550101002' // a 1:1 chat by LID, its phone number known
const CAROL = '+15550101003' // a member of a group with the account
const T0 = 1765000000 // 2025-12-06, unix seconds
const Sync = proto.HistorySync.HistorySyncType
const pnJid = (phone) => `${phone.slice(1)}@s.whatsapp.net`

/**
 * Baileys downloads history blobs from https://mmg.whatsapp.net{directPath}: this dispatcher sends that host's
 * requests to the emulator's media host and trusts its test CA (what a sandbox worker's dispatcher must do)
 */
class EmulatorMediaRoute extends Dispatcher {
  constructor (origin, ca) {
    super()
    this.origin = origin
    this.agent = new Agent({ connect: { ca } })
  }

  dispatch (opts, handler) {
    const to = new URL(opts.origin).hostname === 'mmg.whatsapp.net' ? { ...opts, origin: this.origin } : opts
    return this.agent.dispatch(to, handler)
  }

  close () { return this.agent.close() }
}

describe('history sync with the real Baileys client', () => {
  let emu
  let route
  let client // ACCOUNT's linked device
  const historyOf = (type) => client.waitFor((r) => r.history.find((h) => h.syncType === type), 10000, `history ${type}`)
  const seed = async (body) => {
    const r = await emu.api('POST', `/accounts/${ACCOUNT}/history`, body)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body
  }

  before(async () => {
    emu = await startEmulator()
    trustEmulator(emu)
    const media = (await emu.api('GET', '/media')).body
    route = new EmulatorMediaRoute(media.url, media.ca_pem)
  })

  after(async () => {
    await client?.end()
    await route?.close()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('a newly linked device gets the seeded chats, messages, contact names, push names and LID mappings', async () => {
    assert.equal((await emu.api('POST', '/contacts', { phone_number: ALICE, name: 'Alice Push' })).status, 200)
    const seeded = await seed({
      conversations: [
        {
          phone_number: ALICE,
          name: 'Alice Contact',
          unread_count: 1,
          messages: [
            { id: 'H1OUT', from_me: true, text: 'hi alice', timestamp: T0, status: 'read' },
            { id: 'H1IN', text: 'hello back', timestamp: new Date((T0 + 60) * 1000).toISOString() }
          ]
        },
        {
          phone_number: BOB,
          addressing: 'lid',
          messages: [
            { id: 'H2IN', text: 'by lid', timestamp: T0 + 120 },
            { id: 'H2OUT', from_me: true, text: 'answer', timestamp: T0 + 180, status: 'delivered' }
          ]
        }
      ],
      push_names: [{ phone_number: BOB, push_name: 'Bob Push' }]
    })
    const bobLid = seeded.conversations[1].lid
    assert.match(bobLid, /^\d+@lid$/)
    assert.equal(seeded.conversations[1].chat_jid, bobLid)

    const paired = await pairDevice(emu, ACCOUNT, { config: { options: { dispatcher: route } } })
    client = paired.client
    // two notifications, INITIAL_BOOTSTRAP then PUSH_NAME; Baileys' event buffer may merge them into one set
    // (it then carries the last one's syncType)
    const sets = await client.waitFor((r) => r.history.flatMap((h) => h.messages).length >= 4 &&
      r.history.some((h) => h.contacts.some((c) => c.notify)) && r.history, 10000, 'the chats and the push names')
    const boot = sets.find((h) => h.chats.length)
    assert.equal(boot.syncType, sets.length === 1 ? Sync.PUSH_NAME : Sync.INITIAL_BOOTSTRAP)
    assert.equal(boot.isLatest, true)
    assert.deepEqual(boot.chats.map((c) => c.id), [bobLid, pnJid(ALICE)], 'newest activity first')
    const alice = boot.chats[1]
    assert.equal(alice.name, 'Alice Contact')
    assert.equal(alice.unreadCount, 1)
    assert.equal(Number(alice.conversationTimestamp), T0 + 60)
    const byId = Object.fromEntries(boot.messages.map((m) => [m.key.id, m]))
    assert.deepEqual(Object.keys(byId).sort(), ['H1IN', 'H1OUT', 'H2IN', 'H2OUT'])
    assert.deepEqual({ ...byId.H1OUT.key }, { remoteJid: pnJid(ALICE), fromMe: true, id: 'H1OUT' })
    assert.equal(byId.H1OUT.message.conversation, 'hi alice')
    assert.equal(byId.H1OUT.status, proto.WebMessageInfo.Status.READ)
    assert.equal(Number(byId.H1OUT.messageTimestamp), T0)
    assert.equal(byId.H1IN.key.fromMe, false)
    assert.equal(byId.H1IN.pushName, 'Alice Push', 'the push name the contact was given')
    assert.equal(Number(byId.H1IN.messageTimestamp), T0 + 60)
    assert.equal(byId.H2IN.key.remoteJid, bobLid)
    assert.equal(byId.H2OUT.status, proto.WebMessageInfo.Status.DELIVERY_ACK)
    assert.deepEqual(boot.contacts.find((c) => c.id === pnJid(ALICE)), { id: pnJid(ALICE), name: 'Alice Contact', username: undefined, lid: seeded.conversations[0].lid, phoneNumber: undefined })
    assert.equal(boot.contacts.find((c) => c.id === bobLid).phoneNumber, pnJid(BOB))
    // the LID chat's phone number is known to Baileys from the sync
    assert.equal(jidNormalizedUser(await client.sock.signalRepository.lidMapping.getPNForLID(bobLid)), pnJid(BOB))
    assert.equal(await client.sock.signalRepository.lidMapping.getLIDForPN(pnJid(ALICE)), seeded.conversations[0].lid)

    const names = sets.find((h) => h.syncType === Sync.PUSH_NAME)
    assert.deepEqual(names.contacts.filter((c) => c.notify), [{ id: pnJid(BOB), notify: 'Bob Push' }])
    if (sets.length > 1) assert.deepEqual(names.chats, [])
  })

  test('history/send syncs a group and a later seed into the linked device, as RECENT and ON_DEMAND', async () => {
    const group = await client.sock.groupCreate('History group', [pnJid(CAROL)])
    await seed({
      conversations: [{
        group_id: group.id,
        messages: [
          { id: 'G1IN', participant: CAROL, text: 'group hello', timestamp: T0 + 300, push_name: 'Carol Push' },
          { id: 'G1OUT', from_me: true, text: 'group answer', timestamp: T0 + 360, status: 'server_ack' }
        ]
      }]
    })
    client.rec.history.length = 0
    const sent = await emu.api('POST', `/accounts/${ACCOUNT}/history/send`, { sync_type: 'RECENT' })
    assert.equal(sent.status, 200, JSON.stringify(sent.body))
    assert.equal(sent.body.delivered_to, 1)
    assert.equal(sent.body.messages, 2)
    assert.match(sent.body.direct_path, /^\/v\/t62\.36145-24\//)
    const recent = await historyOf(Sync.RECENT)
    assert.equal(recent.isLatest, false, 'not the first sync of this device')
    assert.equal(recent.chats.length, 1)
    assert.equal(recent.chats[0].id, group.id)
    assert.equal(recent.chats[0].name, 'History group', 'a group conversation is named by its subject')
    const g1 = recent.messages.find((m) => m.key.id === 'G1IN')
    assert.deepEqual({ ...g1.key }, { remoteJid: group.id, fromMe: false, id: 'G1IN', participant: pnJid(CAROL) })
    assert.equal(g1.pushName, 'Carol Push')
    assert.equal(recent.messages.find((m) => m.key.id === 'G1OUT').status, proto.WebMessageInfo.Status.SERVER_ACK)

    // Baileys' event buffer drops history messages this socket saw before: an on-demand sync brings older ones
    await seed({ conversations: [{ phone_number: ALICE, messages: [{ id: 'OD1', text: 'older', timestamp: T0 - 600 }] }] })
    const onDemand = await emu.api('POST', `/accounts/${ACCOUNT}/history/send`, { sync_type: 'ON_DEMAND', delivery: 'inline' })
    assert.equal(onDemand.status, 200, JSON.stringify(onDemand.body))
    assert.equal(onDemand.body.direct_path, null)
    const od = await historyOf(Sync.ON_DEMAND)
    assert.notEqual(od.isLatest, true) // undefined for ON_DEMAND, false once Baileys' event buffer merged it
    assert.deepEqual(od.messages.map((m) => [m.key.id, m.key.remoteJid, m.message.conversation]), [['OD1', pnJid(ALICE), 'older']])
  })

  test('fetchMessageHistory: the phone answers with the seeded messages older than the oldest the device has', async () => {
    await seed({
      conversations: [{
        phone_number: ALICE,
        addressing: 'lid',
        messages: [1, 2, 3, 4, 5].map((i) => ({ id: `FM${i}`, text: `older ${i}`, from_me: i % 2 === 0, timestamp: T0 - 1000 + i * 60 }))
      }]
    })
    const lid = (await emu.api('GET', `/accounts/${ACCOUNT}/history`)).body.conversations[0].lid
    client.rec.history.length = 0
    const requestId = await client.sock.fetchMessageHistory(2, { remoteJid: lid, fromMe: false, id: 'FM5' }, (T0 - 1000 + 5 * 60) * 1000)
    const got = await historyOf(Sync.ON_DEMAND)
    assert.equal(got.peerDataRequestSessionId, requestId)
    assert.deepEqual(got.messages.map((m) => [m.key.id, m.key.remoteJid, m.key.fromMe]), [['FM4', lid, true], ['FM3', lid, false]])
  })

  test('no seed: the first login still gets an (empty) sync at once and the device goes online', async () => {
    const phone = '+15550101090'
    const started = Date.now()
    const paired = await pairDevice(emu, phone, { settle: true, authDir: tmpDir() })
    try {
      const h = paired.client.rec.history[0]
      assert.equal(h.syncType, Sync.RECENT)
      assert.deepEqual([h.chats.length, h.messages.length], [0, 0])
      assert.ok(Date.now() - started < 15000, 'linked without waiting out Baileys\' 20 s history wait')
    } finally {
      await paired.client.end()
    }
  })

  test('seeds and sends are checked', async () => {
    const cases = [
      [{ conversations: [{ phone_number: '12' }] }, 400, 'invalid_phone_number'],
      [{ conversations: [{ phone_number: ALICE, group_id: '123456@g.us' }] }, 400, 'invalid_conversation'],
      [{ conversations: [{ group_id: '99999999@g.us' }] }, 404, 'group_unknown'],
      [{ conversations: [{ phone_number: ALICE, messages: [{ text: 'x', status: 'seen' }] }] }, 400, 'invalid_status'],
      [{ conversations: [{ phone_number: ALICE, messages: [{ text: 'x', timestamp: 'yesterday' }] }] }, 400, 'invalid_timestamp'],
      [{ conversations: [{ phone_number: ALICE, messages: [{ from_me: true }] }] }, 400, 'invalid_message'],
      [{ conversations: [{ phone_number: ALICE, messages: [{ raw: { nothing: 1 } }] }] }, 400, 'invalid_raw'],
      [{ push_names: [{ phone_number: ALICE, push_name: 7 }] }, 400, 'invalid_push_name'],
      [{ delivery: 'pigeon' }, 400, 'invalid_delivery'],
      [{ chats: [] }, 400, 'invalid_field']
    ]
    for (const [body, status, code] of cases) {
      const r = await emu.api('POST', `/accounts/${ACCOUNT}/history`, body)
      assert.deepEqual([r.status, r.body.error?.code], [status, code], JSON.stringify(body))
    }
    const notGroupMember = await emu.api('POST', '/accounts/+15550101099/history', { conversations: [{ group_id: (await emu.api('GET', '/groups')).body[0].id }] })
    assert.deepEqual([notGroupMember.status, notGroupMember.body.error?.code], [409, 'not_a_member'])
    assert.equal((await emu.api('POST', `/accounts/${ACCOUNT}/history/send`, { sync_type: 'EVERYTHING' })).body.error.code, 'invalid_sync_type')
    assert.equal((await emu.api('POST', '/accounts/+15550101098/history/send', { sync_type: 'RECENT' })).status, 409)
  })
})

describe('history sync across pairing codes, offline devices and restarts', () => {
  const PHONE = '+15550103000'
  const DAN = '+15550103001'
  const dir = tmpDir()
  const env = { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json') }
  let emu
  let route
  const clients = []
  const open = async (authDir) => { const c = await openClient(emu, authDir, { options: { dispatcher: route } }); clients.push(c); return c }
  const start = async () => {
    emu = await startEmulator({ env })
    trustEmulator(emu)
    const media = (await emu.api('GET', '/media')).body
    route = new EmulatorMediaRoute(media.url, media.ca_pem)
  }
  const seedText = (id, text) => emu.api('POST', `/accounts/${PHONE}/history`, { conversations: [{ phone_number: DAN, messages: [{ id, text, timestamp: T0 }] }] })
  const texts = (c) => c.rec.history.flatMap((h) => h.messages).map((m) => m.message?.conversation)

  before(start)
  after(async () => {
    for (const c of clients) await c.end().catch(() => {})
    await route?.close()
    await emu?.stop()
  })

  test('a device linked by pairing code gets the seeded history; one offline gets a later sync at its next login', async () => {
    assert.equal((await seedText('PC1', 'before the code')).status, 200)
    const authDir = tmpDir()
    const first = await open(authDir)
    await first.waitFor((r) => r.qrs[0], 10000, 'the pairing connection')
    const code = await first.sock.requestPairingCode(PHONE.slice(1))
    assert.equal((await emu.api('POST', '/phone/pair-code', { phone_number: PHONE, code })).status, 200)
    await first.waitClose(5000)
    await first.flushCreds()
    const linked = await open(authDir)
    await linked.waitOpen(10000)
    await linked.waitFor(() => texts(linked).includes('before the code'), 10000, 'the seeded message')
    await linked.end()

    assert.equal((await seedText('PC2', 'while offline')).status, 200)
    const sent = await emu.api('POST', `/accounts/${PHONE}/history/send`, { sync_type: 'RECENT' })
    assert.deepEqual([sent.body.delivered_to, sent.body.queued_for], [0, 1])
    const again = await open(authDir)
    await again.waitOpen(10000)
    await again.waitFor(() => texts(again).includes('while offline'), 10000, 'the queued sync')
    await again.end()
  })

  test('the seed and the pictures outlive a restart of the emulator', async () => {
    await emu.api('POST', `/contacts/${DAN}/picture`, {})
    const seedBefore = (await emu.api('GET', `/accounts/${PHONE}/history`)).body
    const pictureBefore = (await emu.api('GET', `/contacts/${DAN}/picture`)).body
    await route.close()
    assert.equal((await emu.stop()).code, 0)
    await start()
    assert.deepEqual((await emu.api('GET', `/accounts/${PHONE}/history`)).body, seedBefore)
    const pictureAfter = (await emu.api('GET', `/contacts/${DAN}/picture`)).body
    assert.equal(pictureAfter.picture.sha256, pictureBefore.picture.sha256)
    assert.equal(pictureAfter.picture.id, pictureBefore.picture.id)
    const res = await fetch(pictureAfter.picture.url, { dispatcher: route.agent })
    assert.equal(res.status, 200)
    assert.equal(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex'), pictureBefore.picture.sha256)
  })
})
