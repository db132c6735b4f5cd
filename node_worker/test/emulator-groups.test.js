// Groups at the emulator, managed by the real Baileys client: the w:g2 iqs of Baileys' Socket/groups.js
// (create, metadata, participating, subject, description, participants with per-participant codes,
// invite get/revoke, join by code, leave), WhatsApp's refusals (not admin, not a participant, more than
// 1,024 participants, a privacy that refuses group adds) and the w:gp2 notifications Baileys turns into
// groups.upsert / groups.update / group-participants.update.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, trustEmulator, pairDevice, until } from './emulator-helpers.js'

const ACCOUNT = '+15550007101'
const OTHER = '+15550007102' // a second account (a bare Baileys client) that joins by invite
const C1 = '+15550007201'
const C2 = '+15550007202'
const C3 = '+15550007203'
const jidOf = (phone) => `${phone.slice(1)}@s.whatsapp.net`

describe('groups managed by the real Baileys client against the emulator', () => {
  let emu
  let a
  let b
  const events = { upserts: [], updates: [], participants: [], bParticipants: [] }
  const view = async (id) => (await emu.api('GET', '/groups')).body.find((g) => g.id === id)
  const iqError = async (promise) => {
    try { await promise } catch (err) { return typeof err.data === 'number' ? err.data : Number(err.data?.attrs?.code ?? err.output?.statusCode) }
    assert.fail('the iq was not refused')
  }

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_RECEIPT_DELAY_MS: '20' } })
    trustEmulator(emu)
    a = (await pairDevice(emu, ACCOUNT, { settle: true })).client
    b = (await pairDevice(emu, OTHER, { settle: true })).client
    a.sock.ev.on('groups.upsert', (g) => events.upserts.push(...g))
    a.sock.ev.on('groups.update', (g) => events.updates.push(...g))
    a.sock.ev.on('group-participants.update', (u) => events.participants.push(u))
    b.sock.ev.on('group-participants.update', (u) => events.bParticipants.push(u))
  })

  after(async () => {
    await a?.end()
    await b?.end()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('create: the creator is superadmin, the answer and the create notification carry the group', async () => {
    const meta = await a.sock.groupCreate('Team', [jidOf(C1), jidOf(C2)])
    assert.match(meta.id, /^\d+@g\.us$/)
    assert.equal(meta.subject, 'Team')
    assert.equal(meta.owner, jidOf(ACCOUNT))
    const roles = Object.fromEntries(meta.participants.map((p) => [p.id, p.admin]))
    assert.deepEqual(roles, { [jidOf(ACCOUNT)]: 'superadmin', [jidOf(C1)]: null, [jidOf(C2)]: null })
    assert.ok(meta.participants.every((p) => /@lid$/.test(p.lid)), 'each participant with its LID')
    await until(() => events.upserts.find((g) => g.id === meta.id), 5000, 'groups.upsert from the create notification')
    const v = await view(meta.id)
    assert.deepEqual(v.participants.map((p) => p.phone_number).sort(), [ACCOUNT, C1, C2].sort())
    assert.equal(v.owner, ACCOUNT)
    const fetched = await a.sock.groupMetadata(meta.id)
    assert.equal(fetched.size, 3)
    const all = await a.sock.groupFetchAllParticipating()
    assert.ok(all[meta.id], 'listed among the groups the account is in')
  })

  test('participants: per-participant codes 200, 403 (privacy), 409 (already in / not in), 404 (not on WhatsApp)', async () => {
    const { id } = await a.sock.groupCreate('Codes', [jidOf(C1)])
    assert.equal((await emu.api('POST', `/contacts/${C3}/privacy`, { groups_add: 'nobody' })).status, 200)
    assert.equal((await emu.api('POST', '/contacts', { phone_number: '+15550007299', on_whatsapp: false })).status, 200)
    const res = await a.sock.groupParticipantsUpdate(id, [jidOf(C2), jidOf(C3), jidOf(C1), '15550007299@s.whatsapp.net'], 'add')
    assert.deepEqual(res.map((r) => [r.jid, r.status]), [[jidOf(C2), '200'], [jidOf(C3), '403'], [jidOf(C1), '409'], ['15550007299@s.whatsapp.net', '404']])
    assert.ok(res[1].content.content?.some((n) => n.tag === 'add_request'), 'a privacy refusal carries an add_request')
    const added = await until(() => events.participants.find((u) => u.id === id && u.action === 'add'), 5000, 'the add notification')
    assert.deepEqual(added.participants.map((p) => p.id), [jidOf(C2)])
    const promoted = await a.sock.groupParticipantsUpdate(id, [jidOf(C2)], 'promote')
    assert.equal(promoted[0].status, '200')
    assert.equal((await view(id)).participants.find((p) => p.phone_number === C2).admin, 'admin')
    await a.sock.groupParticipantsUpdate(id, [jidOf(C2)], 'demote')
    assert.equal((await view(id)).participants.find((p) => p.phone_number === C2).admin, null)
    const removed = await a.sock.groupParticipantsUpdate(id, [jidOf(C2), jidOf(C3)], 'remove')
    assert.deepEqual(removed.map((r) => r.status), ['200', '409'])
    await until(() => events.participants.find((u) => u.id === id && u.action === 'remove'), 5000, 'the remove notification')
    assert.deepEqual((await view(id)).participants.map((p) => p.phone_number).sort(), [ACCOUNT, C1].sort())
    assert.equal((await emu.api('POST', `/contacts/${C3}/privacy`, { groups_add: 'everyone' })).status, 200)
    assert.equal((await a.sock.groupParticipantsUpdate(id, [jidOf(C3)], 'add'))[0].status, '200', 'allowed again')
  })

  test('subject and description: changed, notified (groups.update) and in the metadata', async () => {
    const { id } = await a.sock.groupCreate('Old', [jidOf(C1)])
    await a.sock.groupUpdateSubject(id, 'New name')
    await until(() => events.updates.find((u) => u.id === id && u.subject === 'New name'), 5000, 'the subject update')
    await a.sock.groupUpdateDescription(id, 'What we do')
    await until(() => events.updates.find((u) => u.id === id && u.desc === 'What we do'), 5000, 'the description update')
    const meta = await a.sock.groupMetadata(id)
    assert.deepEqual([meta.subject, meta.desc, meta.descOwner], ['New name', 'What we do', jidOf(ACCOUNT)])
    await a.sock.groupUpdateDescription(id, 'Second') // its `prev` is the current description id
    assert.equal((await view(id)).description, 'Second')
  })

  test('invite code: get, revoke (the old code is gone), join by code, leave', async () => {
    const { id } = await a.sock.groupCreate('Open', [jidOf(C1)])
    const code = await a.sock.groupInviteCode(id)
    assert.match(code, /^[A-Za-z0-9]{22}$/)
    assert.equal(await a.sock.groupInviteCode(id), code, 'stable until revoked')
    const fresh = await a.sock.groupRevokeInvite(id)
    assert.notEqual(fresh, code)
    assert.equal(await iqError(b.sock.groupAcceptInvite(code)), 410, 'a revoked code: gone')
    assert.equal(await iqError(b.sock.groupAcceptInvite('NoSuchCode0000000000xx')), 406, 'an unknown code: not acceptable')
    const info = await b.sock.groupGetInviteInfo(fresh)
    assert.equal(info.id, id)
    assert.equal(await b.sock.groupAcceptInvite(fresh), id)
    const joined = await until(() => events.participants.find((u) => u.id === id && u.action === 'add' && u.participants.some((p) => p.id === jidOf(OTHER))), 5000, 'the join notification')
    assert.equal(joined.author, jidOf(OTHER))
    assert.ok((await view(id)).participants.some((p) => p.phone_number === OTHER))
    await b.sock.groupLeave(id)
    await until(() => events.participants.find((u) => u.id === id && u.action === 'remove' && u.participants.some((p) => p.id === jidOf(OTHER))), 5000, 'the leave notification')
    assert.ok(!(await view(id)).participants.some((p) => p.phone_number === OTHER))
    assert.equal(await iqError(b.sock.groupMetadata(id)), 403, 'no longer a participant')
  })

  test('refusals: not admin (401), unknown group (404), more than 1,024 participants (419)', async () => {
    const { id } = await a.sock.groupCreate('Admins only', [jidOf(C1)])
    const code = await a.sock.groupInviteCode(id)
    await b.sock.groupAcceptInvite(code)
    assert.equal(await iqError(b.sock.groupParticipantsUpdate(id, [jidOf(C2)], 'add')), 401)
    assert.equal(await iqError(b.sock.groupInviteCode(id)), 401)
    assert.equal(await iqError(b.sock.groupRevokeInvite(id)), 401)
    assert.ok(!(await view(id)).participants.some((p) => p.phone_number === C2), 'nothing changed')
    await a.sock.groupSettingUpdate(id, 'locked')
    assert.equal(await iqError(b.sock.groupUpdateSubject(id, 'mine now')), 401, 'a locked group: admins only')
    assert.equal((await view(id)).subject, 'Admins only')
    assert.equal(await iqError(a.sock.groupMetadata('120363999999999999@g.us')), 404)
    const many = Array.from({ length: 1024 }, (_, i) => `1555100${String(i).padStart(4, '0')}@s.whatsapp.net`)
    assert.equal(await iqError(a.sock.groupCreate('Too many', many)), 419, '1,024 plus the creator')
    // 2 participants and 1,023 more is one too many (creating 1,023 contacts would outlast Baileys' query timeout)
    assert.equal(await iqError(a.sock.groupParticipantsUpdate(id, many.slice(0, 1023), 'add')), 419)
    assert.equal((await view(id)).participants.length, 3, 'none added')
  })
})
