// Groups through the worker (issue 26): the real worker process (src/main.js, the real Baileys) against the
// emulator's groups. Created, read, changed and left through the worker's HTTP API; what the emulator's server and
// its contacts' phones hold is checked (GET /groups, each contact's inbox: decrypted with the sender key), not what
// the worker says it did. A contact's group message, the receipts of ours and the group's changes are journal events.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import nodePath from 'node:path'
import { startEmulator, inboxEntry, tmpDir, until } from './emulator-helpers.js'
import { startWorker } from './worker-process.js'

const ACCOUNT = '+15550008601'
const [ANA, BEN, CAI, DEE] = ['+15550008602', '+15550008603', '+15550008604', '+15550008605']
const PRIVATE = '+15550008606' // refuses being added to groups (privacy)

let emu
let worker
let mediaDir
let n = 0
const nextId = () => `GRP${String(++n).padStart(4, '0')}${randomBytes(5).toString('hex').toUpperCase()}`
const path = (id, rest = '') => `/groups/${encodeURIComponent(id)}${rest}`
const events = async (type) => (await worker.call('GET', '/events?after=0&limit=1000')).body.events.filter((e) => e.type === type)
const serverGroup = async (id) => (await emu.api('GET', '/groups')).body.find((g) => g.id === id)

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20', WA_EMULATOR_MEDIA_DIR: tmpDir('wa-groups-emu-media-') } })
  mediaDir = tmpDir('wa-groups-media-')
  worker = startWorker(emu, { WA_SANDBOX_MEDIA_CA: (await emu.api('GET', '/media')).body.ca_file, WA_MEDIA_DIR: mediaDir })
  await worker.ready()
  const connect = await worker.call('POST', '/connect', { wait_ms: 10000 })
  assert.equal(connect.body.state, 'qr', JSON.stringify(connect.body))
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr: connect.body.qr })).status, 200)
  await until(async () => (await worker.call('GET', '/status')).body.state === 'connected', 20000, 'connected')
  assert.equal((await emu.api('POST', `/contacts/${encodeURIComponent(PRIVATE)}/privacy`, { groups_add: 'nobody' })).status, 200)
})

after(async () => {
  await worker?.stop()
  await emu?.stop()
})

async function createGroup (subject, participants) {
  const r = await worker.call('POST', '/groups', { subject, participants })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  return r.body
}

test('a group created through the worker: WhatsApp\'s result per participant, the server\'s members, our role', async () => {
  const created = await createGroup('Team', [ANA, BEN, PRIVATE])
  assert.match(created.id, /^[0-9]+(-[0-9]+)?@g\.us$/)
  assert.equal(created.subject, 'Team')
  assert.equal(created.owner, ACCOUNT)
  assert.deepEqual(created.results, [
    { phone_number: ANA, status: 200 }, { phone_number: BEN, status: 200 }, { phone_number: PRIVATE, status: 403, code: 'privacy' }
  ])
  const phones = created.participants.map((p) => p.phone_number).sort()
  assert.deepEqual(phones, [ACCOUNT, ANA, BEN].sort())
  assert.equal(created.participants.find((p) => p.phone_number === ACCOUNT).admin, 'superadmin')
  assert.ok(created.participants.every((p) => /^[0-9]+@lid$/.test(p.lid)), JSON.stringify(created.participants))
  const server = await serverGroup(created.id)
  assert.deepEqual(server.participants.map((p) => p.phone_number).sort(), phones)

  const list = await worker.call('GET', '/groups')
  assert.equal(list.status, 200, JSON.stringify(list.body))
  assert.deepEqual(list.body.groups.find((g) => g.id === created.id), { id: created.id, subject: 'Team', participants_count: 3, role: 'superadmin' })
  const one = await worker.call('GET', path(created.id))
  assert.equal(one.status, 200, JSON.stringify(one.body))
  assert.deepEqual(Object.keys(one.body).sort(), ['announce', 'created_at', 'description', 'id', 'owner', 'participants', 'restrict', 'subject'])
  assert.equal(one.body.description, null)
  assert.ok(Date.parse(one.body.created_at) > Date.now() - 600000, one.body.created_at)
})

test('a group message is decrypted by every contact member (the sender key reaches each), mentions included', async () => {
  const group = await createGroup('Send', [ANA, BEN, CAI])
  const id = nextId()
  const r = await worker.call('POST', '/send', { group_id: group.id, id, text: `hello @${ANA.slice(1)}`, mentions: [ANA] })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body, { id, status: 'sent' })
  for (const phone of [ANA, BEN, CAI]) {
    const got = await inboxEntry(emu, phone, id)
    assert.equal(got.error, null, `${phone} could not decrypt: ${got.error}`)
    assert.equal(got.text, `hello @${ANA.slice(1)}`)
    assert.equal(got.group_id, group.id)
    assert.equal(got.from, ACCOUNT)
  }
  // the same id again (a resend after a crash): the stored message goes again, not this new text; one message
  const again = await worker.call('POST', '/send', { group_id: group.id, id, text: 'another text' })
  assert.deepEqual(again.body, { id, status: 'sent' })
  const twice = await inboxEntry(emu, BEN, id, (e) => e.duplicate_count >= 1)
  assert.equal(twice.text, `hello @${ANA.slice(1)}`)
  assert.equal((await emu.api('GET', `/contacts/${encodeURIComponent(BEN)}/messages`)).body.filter((m) => m.id === id).length, 1)
  // (a phone keeps the first copy of an id whatever the second holds: the worker's log says which one it sent)
  const relayed = worker.lines.map((l) => { try { return JSON.parse(l) } catch { return {} } }).filter((l) => l.event === 'message.relayed' && l.message_id === id)
  assert.deepEqual(relayed.map((l) => l.resend), [false, true])
  // a batch to the group, then a reply to it: each decrypted, in order
  const [a, b] = [nextId(), nextId()]
  const batch = await worker.call('POST', '/send/batch', { messages: [{ group_id: group.id, id: a, text: 'one' }, { group_id: group.id, id: b, text: 'two', quoted: { id, from_me: true, text: 'hello', lid: null } }] })
  assert.equal(batch.status, 200, JSON.stringify(batch.body))
  assert.deepEqual(batch.body.results, [{ id: a, status: 'sent' }, { id: b, status: 'sent' }])
  assert.equal((await inboxEntry(emu, BEN, b)).quoted_id, id)
  // the receipts of the members' phones: a status per participant
  await until(async () => {
    const got = (await events('message.status')).filter((e) => e.id === id && e.status === 'delivered')
    return got.length === 3 ? got : null
  }, 10000, 'a delivered status per member')
  const who = (await events('message.status')).filter((e) => e.id === id && e.status === 'delivered').map((e) => e.participant).sort()
  assert.deepEqual(who, [ANA, BEN, CAI].sort())
  // one member reads it: a read status naming that member only
  assert.equal((await emu.api('POST', `/contacts/${encodeURIComponent(CAI)}/receipts`, { id, type: 'read' })).status, 200)
  const read = await until(async () => {
    const got = (await events('message.status')).filter((e) => e.id === id && e.status === 'read')
    return got.length ? got : null
  }, 10000, 'the read status')
  assert.deepEqual(read.map((e) => e.participant), [CAI])
})

// a file in the gateway's media store (<sha256[:2]>/<sha256[2:]>), named by its sha256
const stored = (bytes) => {
  const sha = createHash('sha256').update(bytes).digest('hex')
  fs.mkdirSync(nodePath.join(mediaDir, sha.slice(0, 2)), { recursive: true })
  fs.writeFileSync(nodePath.join(mediaDir, sha.slice(0, 2), sha.slice(2)), bytes)
  return sha
}

test('media to a group: uploaded once, every member decrypts the message that names it; a caption mentions', async () => {
  const group = await createGroup('Media', [ANA, BEN])
  const id = nextId()
  const media = { kind: 'document', sha256: stored(randomBytes(2000)), mimetype: 'application/pdf', filename: 'plan.pdf', caption: `for @${BEN.slice(1)}` }
  const r = await worker.call('POST', '/send', { group_id: group.id, id, media, mentions: [BEN] })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  for (const phone of [ANA, BEN]) {
    const got = await inboxEntry(emu, phone, id)
    assert.equal(got.error, null, `${phone} could not decrypt: ${got.error}`)
    assert.match(got.kind, /^document/, got.kind)
  }
  const uploads = worker.lines.filter((l) => l.includes('"message.media_uploaded"') && l.includes(id))
  assert.equal(uploads.length, 1)
})

test('a member added later gets the sender key and decrypts what follows; one removed gets nothing more', async () => {
  const group = await createGroup('Grow', [ANA])
  const first = nextId()
  assert.equal((await worker.call('POST', '/send', { group_id: group.id, id: first, text: 'before' })).status, 200)
  await inboxEntry(emu, ANA, first)
  const add = await worker.call('POST', path(group.id, '/participants'), { add: [DEE, ANA] })
  assert.equal(add.status, 200, JSON.stringify(add.body))
  assert.deepEqual(add.body.results, [{ phone_number: DEE, status: 200 }, { phone_number: ANA, status: 409, code: 'already_in_group' }])
  const second = nextId()
  assert.equal((await worker.call('POST', '/send', { group_id: group.id, id: second, text: 'after the add' })).status, 200)
  const got = await inboxEntry(emu, DEE, second)
  assert.equal(got.error, null, got.error)
  assert.equal(got.text, 'after the add')
  const remove = await worker.call('POST', path(group.id, '/participants'), { remove: [ANA] })
  assert.deepEqual(remove.body.results, [{ phone_number: ANA, status: 200 }])
  const third = nextId()
  assert.equal((await worker.call('POST', '/send', { group_id: group.id, id: third, text: 'after the remove' })).status, 200)
  assert.equal((await inboxEntry(emu, DEE, third)).text, 'after the remove')
  const ana = (await emu.api('GET', `/contacts/${encodeURIComponent(ANA)}/messages`)).body
  assert.equal(ana.find((m) => m.id === third), undefined, 'a removed member got the message')
})

test('a contact\'s group message is a message event with the group and the participant', async () => {
  const group = await createGroup('Inbound', [ANA, BEN])
  const sent = await emu.api('POST', `/contacts/${encodeURIComponent(BEN)}/messages`, { to: group.id, text: 'from ben' })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  const event = await until(async () => (await events('message')).find((e) => e.id === sent.body.id), 10000, 'the group message event').catch((err) => { console.log(worker.lines.slice(-40).join('\n')); throw err })
  assert.equal(event.group_id, group.id)
  assert.equal(event.from, BEN)
  assert.match(event.lid, /^[0-9]+@lid$/)
  assert.match(event.from_jid, /@(s\.whatsapp\.net|lid)$/)
  assert.equal(event.text, 'from ben')
  assert.equal(event.kind, 'text')
  // a reply to it and a reaction on it name its sender as its event does (from_jid)
  const reply = nextId()
  const quoted = { id: event.id, from_me: false, text: 'from ben', lid: null, participant: event.from_jid }
  assert.equal((await worker.call('POST', '/send', { group_id: group.id, id: reply, text: 'seen', quoted })).status, 200)
  assert.equal((await inboxEntry(emu, BEN, reply)).quoted_id, event.id)
  const reaction = { key: { id: event.id, from_me: false, participant: event.from_jid }, emoji: '👍' }
  const reacted = nextId()
  assert.equal((await worker.call('POST', '/send', { group_id: group.id, id: reacted, reaction })).status, 200)
  // (the emulator's phones apply a reaction to a group message of theirs not yet: it arrives naming it)
  const got = await inboxEntry(emu, BEN, reacted)
  assert.equal(got.error, null, got.error)
  assert.equal(got.action?.type, 'reaction')
  assert.equal(got.action?.target_id, event.id)
  // and a second one (its sender key is known now: a plain skmsg)
  const again = await emu.api('POST', `/contacts/${encodeURIComponent(ANA)}/messages`, { to: group.id, text: 'from ana' })
  const second = await until(async () => (await events('message')).find((e) => e.id === again.body.id), 10000, 'the second group message')
  assert.equal(second.from, ANA)
  assert.equal(second.text, 'from ana')
})

test('the group\'s changes are group.participants and group.updated events', async () => {
  const group = await createGroup('Changes', [ANA])
  const created = await until(async () => (await events('group.participants')).find((e) => e.group_id === group.id && e.action === 'create'), 10000, 'the create event')
  assert.equal(created.by.phone_number, ACCOUNT)
  assert.equal(created.subject, 'Changes')
  assert.equal((await worker.call('POST', path(group.id, '/participants'), { add: [BEN] })).status, 200)
  const added = await until(async () => (await events('group.participants')).find((e) => e.group_id === group.id && e.action === 'add'), 10000, 'the add event')
  assert.deepEqual(added.participants.map((p) => p.phone_number), [BEN])
  assert.match(added.participants[0].lid, /^[0-9]+@lid$/)
  assert.equal(added.by.phone_number, ACCOUNT)
  assert.equal((await worker.call('POST', path(group.id, '/participants'), { promote: [BEN] })).status, 200)
  await until(async () => (await events('group.participants')).find((e) => e.group_id === group.id && e.action === 'promote'), 10000, 'the promote event')
  const patched = await worker.call('PATCH', path(group.id), { subject: 'Renamed', description: 'what we do' })
  assert.equal(patched.status, 200, JSON.stringify(patched.body))
  assert.equal(patched.body.subject, 'Renamed')
  assert.equal(patched.body.description, 'what we do')
  assert.equal((await serverGroup(group.id)).subject, 'Renamed')
  const updated = await until(async () => {
    const got = (await events('group.updated')).filter((e) => e.group_id === group.id)
    return got.length >= 2 ? got : null
  }, 10000, 'the subject and description events')
  assert.deepEqual(updated.map((e) => e.subject ?? e.description).sort(), ['Renamed', 'what we do'])
})

test('invite links, joining by code, leaving', async () => {
  const group = await createGroup('Invite', [ANA])
  const invite = await worker.call('GET', path(group.id, '/invite'))
  assert.equal(invite.status, 200, JSON.stringify(invite.body))
  assert.equal(invite.body.link, `https://chat.whatsapp.com/${invite.body.code}`)
  const revoked = await worker.call('DELETE', path(group.id, '/invite'))
  assert.equal(revoked.status, 200)
  assert.notEqual(revoked.body.code, invite.body.code)
  // the old code joins nothing; leave, then join again with the new one
  const left = await worker.call('POST', path(group.id, '/leave'), {})
  assert.deepEqual(left.body, { id: group.id })
  assert.ok(!(await serverGroup(group.id)).participants.some((p) => p.phone_number === ACCOUNT))
  assert.equal((await worker.call('GET', path(group.id))).body.error.code, 'group_not_found')
  const stale = await worker.call('POST', '/groups/join', { code: invite.body.code })
  assert.equal(stale.status, 404, JSON.stringify(stale.body))
  const joined = await worker.call('POST', '/groups/join', { code: revoked.body.link })
  assert.equal(joined.status, 200, JSON.stringify(joined.body))
  assert.deepEqual(joined.body, { id: group.id })
  assert.equal((await worker.call('GET', path(group.id))).body.participants.find((p) => p.phone_number === ACCOUNT).admin, null)
  // a member, no admin: WhatsApp refuses the admin's changes (403 not_admin), the send goes
  assert.equal((await worker.call('POST', path(group.id, '/participants'), { add: [BEN] })).body.error?.code, 'not_admin')
  assert.equal((await worker.call('GET', path(group.id, '/invite'))).body.error?.code, 'not_admin')
  assert.equal((await worker.call('POST', '/send', { group_id: group.id, id: nextId(), text: 'still here' })).status, 200)
})

test('refusals: not a group id, a group the account is not in, participant lists, contents a group cannot take', async () => {
  const bad = [
    ['GET', '/groups/notagroup', undefined, 400, 'invalid_group_id'],
    ['GET', path('123@s.whatsapp.net'), undefined, 400, 'invalid_group_id'],
    ['GET', path('999999999999@g.us'), undefined, 404, 'group_not_found'],
    ['POST', '/send', { group_id: '999999999999@g.us', text: 'x' }, 404, 'group_not_found'],
    ['POST', '/send', { group_id: 'x@g.us', text: 'x' }, 400, 'invalid_group_id'],
    ['POST', '/send', { group_id: '1@g.us', phone_number: ANA, text: 'x' }, 400, 'invalid_phone_number'],
    ['POST', '/send', { group_id: '1@g.us', presence: { state: 'composing' } }, 400, 'invalid_message'],
    ['POST', '/send', { group_id: '1@g.us', reaction: { key: { id: 'ABC', from_me: false }, emoji: '👍' } }, 400, 'invalid_message'],
    ['POST', '/send', { phone_number: ANA, text: 'x', mentions: ['nope'] }, 400, 'invalid_message'],
    ['POST', '/groups', { subject: 'x', participants: [] }, 400, 'invalid_participants'],
    ['POST', '/groups', { subject: 'x', participants: Array.from({ length: 1025 }, (_, i) => `+1555001${String(i).padStart(4, '0')}`) }, 400, 'invalid_participants'],
    ['POST', '/groups', { subject: ' ', participants: [ANA] }, 400, 'invalid_message'],
    ['POST', path('1@g.us', '/participants'), { add: [ANA], remove: [BEN] }, 400, 'invalid_message'],
    ['PATCH', path('1@g.us'), { owner: ANA }, 400, 'unknown_field']
  ]
  for (const [method, p, body, status, code] of bad) {
    const r = await worker.call(method, p, body)
    assert.equal(r.status, status, `${method} ${p} ${JSON.stringify(body)?.slice(0, 80)}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, code, `${method} ${p}`)
  }
})
