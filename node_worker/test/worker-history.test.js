// History sync through the worker (issue 27): the real worker process (src/main.js, the real Baileys) against the
// emulator's history sync (POST /accounts/{phone}/history seeds what the account's phone syncs to a newly linked
// device; /history/send syncs again into a linked one). History arrives as `history.sync` events (at most 100
// messages each, in parts), never as `message` events; a LID conversation carries its phone number; a group's
// member is named; a repeated sync is history again, never a live message.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { sleep, startEmulator, tmpDir, until } from './emulator-helpers.js'
import { linkWorker, startWorker } from './worker-process.js'

const ACCOUNT = '+15550008901'
const ALICE = '+15550008902' // a 1:1 chat by phone number
const BOB = '+15550008903' // a 1:1 chat by LID, its number known from the sync
const CAROL = '+15550008904' // a group member
const T0 = 1765000000

let emu
let worker
let seeded

const events = async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events
const syncs = async () => (await events()).filter((e) => e.type === 'history.sync')
const seed = async (body) => {
  const r = await emu.api('POST', `/accounts/${ACCOUNT}/history`, body)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  return r.body
}

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-history-emu-') } })
  assert.equal((await emu.api('POST', '/contacts', { phone_number: ALICE, name: 'Alice Push' })).status, 200)
  seeded = await seed({
    conversations: [
      {
        phone_number: ALICE,
        name: 'Alice Contact',
        unread_count: 1,
        messages: [
          { id: 'WH1OUT', from_me: true, text: 'hi alice', timestamp: T0, status: 'read' },
          { id: 'WH1IN', text: 'hello back', timestamp: T0 + 60 },
          { id: 'WH1LOC', raw: { locationMessage: { degreesLatitude: 38.7, degreesLongitude: -9.1, name: 'Rossio' } }, timestamp: T0 + 61 }
        ]
      },
      {
        phone_number: BOB,
        addressing: 'lid',
        messages: [
          { id: 'WH2IN', text: 'by lid', timestamp: T0 + 120 },
          { id: 'WH2OUT', from_me: true, text: 'answer', timestamp: T0 + 180, status: 'delivered' }
        ]
      }
    ],
    push_names: [{ phone_number: BOB, push_name: 'Bob Push' }]
  })
  const media = (await emu.api('GET', '/media')).body
  worker = startWorker(emu, { WA_SANDBOX_MEDIA_CA: media.ca_file, WA_MEDIA_DIR: tmpDir('wa-history-media-') })
  await linkWorker(worker, emu, ACCOUNT)
})

after(async () => {
  await worker?.stop()
  await emu?.stop()
})

const liveIds = async () => new Set((await events()).filter((e) => e.type === 'message').map((e) => e.id))

test('the first sync is history.sync events: chats, messages both ways, contacts, a LID chat with its number; no live message', async () => {
  const bobLid = seeded.conversations[1].lid
  const aliceLid = seeded.conversations[0].lid
  // two notifications, each downloaded in its own receipt hook: their events may come in either order
  const all = await until(async () => { const s = await syncs(); return ['PUSH_NAME', 'INITIAL_BOOTSTRAP'].every((t) => s.some((e) => e.sync_type === t)) && s }, 20000, 'both syncs')
  const boot = all.find((e) => e.sync_type === 'INITIAL_BOOTSTRAP')
  assert.ok(boot, JSON.stringify(all.map((e) => e.sync_type)))
  assert.deepEqual([boot.part, boot.parts, boot.is_latest, boot.progress], [1, 1, true, 100])
  assert.match(boot.event_id, /^history:[0-9A-F]+:1$/)
  assert.deepEqual(boot.chats, [ // newest activity first, as WhatsApp sends them
    { chat_jid: bobLid, phone_number: BOB, lid: bobLid, group_id: null, name: null, unread_count: 0, timestamp: T0 + 180 },
    { chat_jid: `${ALICE.slice(1)}@s.whatsapp.net`, phone_number: ALICE, lid: aliceLid, group_id: null, name: 'Alice Contact', unread_count: 1, timestamp: T0 + 61 }
  ])
  const byId = Object.fromEntries(boot.messages.map((m) => [m.wa_id, m]))
  assert.deepEqual(Object.keys(byId).sort(), ['WH1IN', 'WH1LOC', 'WH1OUT', 'WH2IN', 'WH2OUT'])
  assert.deepEqual(byId.WH1OUT, {
    wa_id: 'WH1OUT', chat_jid: `${ALICE.slice(1)}@s.whatsapp.net`, phone_number: ALICE, lid: aliceLid, group_id: null, from_me: true,
    participant: null, push_name: null, sent_at: T0, kind: 'text', text: 'hi alice', content: null, media: null, quoted_id: null, status: 'read'
  })
  assert.equal(byId.WH1IN.from_me, false)
  assert.equal(byId.WH1IN.push_name, 'Alice Push')
  assert.equal(byId.WH1LOC.kind, 'location')
  assert.deepEqual(byId.WH1LOC.content, { location: { latitude: 38.7, longitude: -9.1, name: 'Rossio', address: null } })
  // the LID chat's messages name the contact by its number too
  assert.deepEqual([byId.WH2IN.chat_jid, byId.WH2IN.phone_number, byId.WH2IN.lid, byId.WH2IN.text], [bobLid, BOB, bobLid, 'by lid'])
  assert.equal(byId.WH2OUT.status, 'delivered')
  assert.ok(boot.contacts.some((c) => c.phone_number === ALICE && c.lid === aliceLid && c.name === 'Alice Contact'), JSON.stringify(boot.contacts))
  assert.ok(boot.contacts.some((c) => c.phone_number === BOB && c.lid === bobLid), JSON.stringify(boot.contacts))
  const names = all.find((e) => e.sync_type === 'PUSH_NAME')
  assert.deepEqual(names.contacts.filter((c) => c.push_name), [{ phone_number: BOB, lid: bobLid, push_name: 'Bob Push' }])
  assert.deepEqual([names.chats, names.messages], [[], []])
  const live = await liveIds()
  for (const id of Object.keys(byId)) assert.ok(!live.has(id), `${id} is no live message`)
})

test('a sync of 250 messages comes in parts of at most 100; a group member is named; a repeat is history again', async () => {
  const group = await worker.call('POST', '/groups', { subject: 'History group', participants: [CAROL] })
  assert.equal(group.status, 200, JSON.stringify(group.body))
  const many = Array.from({ length: 250 }, (_, i) => ({ id: `WHM${String(i).padStart(4, '0')}`, text: `old ${i}`, timestamp: T0 + 1000 + i, from_me: i % 2 === 1 }))
  await seed({
    conversations: [
      { phone_number: ALICE, messages: many },
      { group_id: group.body.id, messages: [{ id: 'WHG1', participant: CAROL, text: 'group hello', timestamp: T0 + 5000, push_name: 'Carol Push' }] }
    ]
  })
  const before = (await syncs()).length
  const sent = await emu.api('POST', `/accounts/${ACCOUNT}/history/send`, { sync_type: 'RECENT' })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  const parts = await until(async () => { const s = (await syncs()).slice(before); return s.length === 3 && s }, 20000, 'three parts')
  assert.deepEqual(parts.map((e) => [e.sync_type, e.part, e.parts, e.messages.length]), [['RECENT', 1, 3, 100], ['RECENT', 2, 3, 100], ['RECENT', 3, 3, 51]])
  assert.equal(parts[0].is_latest, false)
  const id = parts[0].event_id.split(':')[1]
  assert.deepEqual(parts.map((e) => e.event_id), [1, 2, 3].map((n) => `history:${id}:${n}`))
  const messages = parts.flatMap((e) => e.messages)
  assert.equal(new Set(messages.map((m) => m.wa_id)).size, 251)
  const g = messages.find((m) => m.wa_id === 'WHG1')
  assert.deepEqual([g.chat_jid, g.group_id, g.phone_number, g.from_me, g.push_name], [group.body.id, group.body.id, null, false, 'Carol Push'])
  assert.equal(g.participant.phone_number, CAROL)
  assert.match(g.participant.lid, /^[0-9]+@lid$/)
  assert.ok(parts[0].chats.some((c) => c.group_id === group.body.id && c.name === 'History group'), JSON.stringify(parts[0].chats))

  // the same history again (an on-demand sync, inline this time): history.sync again, still no live message
  const again = await emu.api('POST', `/accounts/${ACCOUNT}/history/send`, { sync_type: 'ON_DEMAND', delivery: 'inline' })
  assert.equal(again.status, 200, JSON.stringify(again.body))
  const repeat = await until(async () => { const s = (await syncs()).slice(before + 3); return s.length === 3 && s }, 20000, 'the repeat')
  assert.ok(repeat.every((e) => e.sync_type === 'ON_DEMAND' && e.is_latest === false))
  assert.deepEqual(repeat.flatMap((e) => e.messages).map((m) => m.wa_id).sort(), messages.map((m) => m.wa_id).sort())
  const live = await liveIds()
  assert.ok(messages.every((m) => !live.has(m.wa_id)), 'no history message is a live message')
  // Baileys' own processing after each receipt (its messaging-history.set) added nothing the receipt hook journaled
  await sleep(1500)
  assert.equal((await syncs()).length, before + 6)
  assert.equal((await worker.call('GET', '/status')).body.state, 'connected')
})
