// Sessions in PostgreSQL, owned through leases (issue 14): real Baileys against the emulator, the worker's
// AccountHost and internal API in-process, each "instance" with its own (empty) data directory and
// WA_INSTANCE_ID, one real PostgreSQL (test/pg-helpers.js). The tests run in order on one account:
//   1. paired with the PostgreSQL store, restarted from PostgreSQL only: no QR, messages both ways
//   2. a second instance attached with the next generation connects with the same credentials; the
//      first gets 440 and is fenced instead of reconnecting
//   3. the lease taken under a connected session: a send is refused by the owner check, an attach under a
//      lease that is not this instance's connects nothing
//   4. the lease bumped under a connected session: its next key write is refused, it is fenced without
//      logging out, sends are refused, no row of its generation lands; a newer attach brings it back
//   5. the account back on the first instance: reloaded from PostgreSQL (the other wrote meanwhile)
//   6. the same after another owner wrote without connecting (no 440, so no fence): reloaded all the same
//   7. release: closed without logout; a restarted worker resumes from the generation in accounts.json
// and, without PostgreSQL, 440 still reconnects as before.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { startEmulator, trustEmulator, tmpDir, until } from './emulator-helpers.js'
import { pgMissing, startPostgres } from './pg-helpers.js'
import { AccountHost, accountSettings } from '../src/accounts.js'
import { makeLogger } from '../lib/logger.js'
import { makeHandler } from '../src/server.js'
import { readSettings } from '../src/settings.js'

const ACCOUNT = 'acme'
const PHONE = '+15550007001'
const CONTACT = '+15550007009'
const skip = pgMissing() ?? false
if (skip) console.log(`# pg-session tests skipped: ${skip}`)

let emu
let pg
const instances = []
before(async () => {
  if (skip) return
  ;[emu, pg] = await Promise.all([startEmulator(), startPostgres()])
  trustEmulator(emu)
})
after(async () => {
  for (const inst of instances) await inst.host.shutdown().catch(() => {})
  if (process.env.WA_TEST_LOG_DUMP) fs.writeFileSync(process.env.WA_TEST_LOG_DUMP, instances.map((i) => i.lines.map((l) => `${i.instanceId} ${l.trimEnd()}\n`).join('')).join(''))
  await emu?.stop()
  await pg?.stop()
  for (const inst of instances) {
    fs.rmSync(inst.dataDir, { recursive: true, force: true })
    // the database URL carries a password: no log line of any instance may show it
    if (pg) assert.ok(!inst.lines.some((l) => l.includes(pg.password)), 'the database password is never logged')
  }
})

/** One gateway instance's worker: its own empty data dir, WA_INSTANCE_ID, the shared PostgreSQL (or none). */
function instance (instanceId, { database = true } = {}) {
  const dataDir = tmpDir('wa-pgsession-')
  fs.writeFileSync(path.join(dataDir, 'accounts.json'), JSON.stringify({ accounts: { [ACCOUNT]: { shard: 0 } } }))
  const settings = readSettings({
    WA_DATA_DIR: dataDir,
    WA_SERVER_URL: emu.wsUrl,
    WA_LOG_FORMAT: 'json',
    WA_BAILEYS_LOG_LEVEL: 'silent',
    WA_DATABASE_URL: database ? pg.url : '',
    WA_INSTANCE_ID: instanceId,
    // a wrongly scheduled reconnect would come within 100 ms
    WA_RECONNECT_BASE_MS: '100',
    WA_RECONNECT_MAX_MS: '400'
  })
  const lines = []
  const host = new AccountHost({ settings, logger: makeLogger({ level: 'debug', write: (line) => lines.push(String(line)) }) })
  const handle = makeHandler({ host })
  const call = (method, pathname, body) => {
    const req = Object.assign(Readable.from(body === undefined ? [] : [Buffer.from(JSON.stringify(body))]), { method, headers: {} })
    return handle(req, new URL(pathname, 'http://worker'))
  }
  const inst = {
    instanceId,
    dataDir,
    settings,
    host,
    lines,
    call,
    states: [],
    session: () => host.get(ACCOUNT)?.session,
    status: () => call('GET', `/accounts/${ACCOUNT}/status`),
    async attach (generation) {
      const out = await call('POST', `/accounts/${ACCOUNT}/attach`, { lease_generation: generation })
      const session = inst.session()
      if (!session.listenerCount('state') || !inst.watching) {
        inst.watching = true
        session.on('state', (s) => inst.states.push(s))
      }
      return out
    },
    events: async () => (await call('GET', `/accounts/${ACCOUNT}/events?after=0`)).events,
    sessionDir: accountSettings(settings, ACCOUNT).sessionDir
  }
  instances.push(inst)
  return inst
}

const rows = async () =>
  (await pg.query('SELECT key, value, generation::int AS generation, updated_at FROM wa_auth WHERE account = $1 ORDER BY key', [ACCOUNT])).rows
const takeover = (owner) =>
  pg.query('UPDATE leases SET owner = $2, generation = generation + 1, updated_at = $3 WHERE account = $1 RETURNING generation::int AS generation',
    [ACCOUNT, owner, Date.now() / 1000]).then((r) => r.rows[0].generation)
const device = async () => (await emu.api('GET', '/')).body.accounts.find((a) => a.phone_number === PHONE)?.devices ?? []

// Messages both ways through one instance: a send reaches the contact, the contact's reply reaches the journal.
async function twoWay (inst, tag) {
  const id = `PG${tag}`.padEnd(12, '0').slice(0, 16)
  const sent = await inst.call('POST', `/accounts/${ACCOUNT}/send`, { phone_number: CONTACT, text: `out ${tag}`, id })
  assert.equal(sent.id, id)
  await until(async () => (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body.find((m) => m.id === id && m.text === `out ${tag}`),
    10000, `${tag}: our message decrypted at the contact`)
  const reply = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: PHONE, text: `in ${tag}` })
  assert.equal(reply.status, 200)
  await until(async () => (await inst.events()).find((e) => e.type === 'message' && e.id === reply.body.id && e.text === `in ${tag}`),
    10000, `${tag}: the contact's message in the journal`)
}

let a2 // the instance that owns the account after test 1
let b

test('paired with the PostgreSQL store; a restart from PostgreSQL alone logs in without QR, messages flow both ways', { skip }, async () => {
  const a = instance('inst-a')
  await pg.grant(ACCOUNT, 'inst-a', 1)
  // The gateway names the lease generation; nothing runs before it did.
  await assert.rejects(a.call('POST', `/accounts/${ACCOUNT}/attach`, {}), (e) => e.status === 400 && e.code === 'invalid_lease_generation')
  await assert.rejects(a.call('POST', `/accounts/${ACCOUNT}/attach`, { lease_generation: 1.5 }), (e) => e.status === 400 && e.code === 'invalid_lease_generation')
  await assert.rejects(a.call('POST', `/accounts/${ACCOUNT}/connect`, {}), (e) => e.status === 409 && e.code === 'not_owner')
  const attached = await a.attach(1)
  assert.equal(attached.lease_generation, 1)
  assert.equal(attached.state, 'stopped')

  const started = await a.call('POST', `/accounts/${ACCOUNT}/connect`, { wait_ms: 10000 })
  assert.equal(started.state, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: PHONE, qr: started.qr })).status, 200)
  await until(async () => (await a.status()).state === 'connected', 20000, 'connected after pairing')
  await twoWay(a, 'A1')
  const stored = await rows()
  const creds = JSON.parse(stored.find((r) => r.key === 'creds').value)
  assert.ok(creds.me?.id, 'the paired identity is in PostgreSQL')
  assert.ok(stored.some((r) => r.key.startsWith('session/')), 'Signal sessions are in PostgreSQL')
  assert.ok(stored.every((r) => r.generation === 1), 'every row written under generation 1')
  assert.ok(!fs.existsSync(a.sessionDir), 'no local session directory')
  await a.host.shutdown()

  // "Restart": a new worker with an empty data directory of its own; only PostgreSQL has the session.
  a2 = instance('inst-a')
  assert.equal((await a2.attach(1)).lease_generation, 1)
  await until(async () => (await a2.status()).state === 'connected', 15000, 'logged in again from PostgreSQL')
  assert.ok(!a2.states.includes('qr'), `no QR: ${a2.states}`)
  assert.ok(!fs.existsSync(a2.sessionDir), 'no local session directory')
  await twoWay(a2, 'A2')
  // A repeated attach with the same generation keeps the link.
  assert.equal((await a2.attach(1)).state, 'connected')
})

test('a second instance attached with the next generation takes over without QR; the first gets 440 and is fenced, not reconnecting', { skip }, async () => {
  b = instance('inst-b')
  const generation = await takeover('inst-b')
  assert.equal(generation, 2)
  await b.attach(generation)
  await until(async () => (await b.status()).state === 'connected', 15000, 'the second instance connected')
  assert.ok(!b.states.includes('qr'), `no QR: ${b.states}`)
  await until(async () => (await a2.status()).state === 'fenced', 10000, 'the first instance fenced')
  const fenced = await a2.status()
  // fenced by the 440, or a moment earlier by its own next write (its event journal is fenced with the session)
  assert.match(fenced.last_error, /440|not_owner/)
  assert.equal(fenced.reconnect.scheduled, false)
  await until(async () => (await a2.events()).some((e) => e.type === 'session.status' && e.state === 'fenced'), 5000, 'fenced journaled for the gateway')
  // Refused: sends, connects, an older attach; the same generation changes nothing.
  await assert.rejects(a2.call('POST', `/accounts/${ACCOUNT}/send`, { phone_number: CONTACT, text: 'stale', id: 'STALESEND001' }),
    (e) => e.status === 409 && e.code === 'not_owner')
  await assert.rejects(a2.call('POST', `/accounts/${ACCOUNT}/connect`, {}), (e) => e.status === 409 && e.code === 'not_owner')
  await assert.rejects(a2.call('POST', `/accounts/${ACCOUNT}/attach`, { lease_generation: 0 }), (e) => e.status === 409 && e.code === 'stale_lease')
  assert.equal((await a2.attach(1)).state, 'fenced')
  // Several reconnect periods later: still fenced, and the second instance was never kicked out.
  const since = b.states.length
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal((await a2.status()).state, 'fenced')
  assert.deepEqual(b.states.slice(since), [], 'the second instance kept its connection')
  assert.ok(!(await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body.some((m) => m.id === 'STALESEND001'))
  await twoWay(b, 'B1')
})

test('the lease taken under a connected session: a send is refused by the owner check and nothing goes out; a connect under a lease that is not ours is refused', { skip }, async () => {
  assert.equal(await takeover('inst-c'), 3) // another instance takes the account (it does not connect)
  const before = await rows() // from the takeover's commit on, nothing of generation 2 may land
  await assert.rejects(b.call('POST', `/accounts/${ACCOUNT}/send`, { phone_number: CONTACT, text: 'too late', id: 'LATESEND0001' }),
    (e) => e.status === 409 && e.code === 'not_owner')
  assert.equal((await b.status()).state, 'fenced')
  assert.ok(!b.lines.some((l) => l.includes('"auth_store.fenced"')), 'fenced by the check, not by a write')
  await until(async () => (await device()).length === 1 && !(await device())[0].connected, 5000, 'the device linked but offline')
  // An attach naming a generation that is not this instance's lease: refused before any connection.
  await assert.rejects(b.attach(3), (e) => e.status === 409 && e.code === 'not_owner')
  assert.equal((await b.status()).state, 'fenced')
  assert.equal((await device())[0].connected, false)
  assert.deepEqual(await rows(), before, 'nothing written')
  const inbox = (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body
  assert.ok(!inbox.some((m) => m.id === 'LATESEND0001'), 'nothing sent after the takeover')
})

test('the lease bumped under a connected session: the next key write is refused, it is fenced without logout, no row of its generation lands', { skip }, async () => {
  await pg.grant(ACCOUNT, 'inst-b', 4)
  const qrs = b.states.filter((s) => s === 'qr').length
  await b.attach(4)
  await until(async () => (await b.status()).state === 'connected', 15000, 'back after a newer attach')
  assert.equal(await takeover('inst-c'), 5)
  const bumpedAt = Date.now() / 1000
  const before = await rows() // from the takeover's commit on, nothing of generation 4 may land
  // A contact writes: decrypting it ratchets the Signal session, a key write under generation 4.
  const msg = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: PHONE, text: 'after the bump' })
  assert.equal(msg.status, 200)
  await until(async () => (await b.status()).state === 'fenced', 15000, 'fenced by the refused write')
  assert.ok(b.lines.some((l) => l.includes('"auth_store.fenced"')), 'fenced by a refused write')
  assert.deepEqual(await rows(), before, 'no row changed after the bump')
  assert.ok((await rows()).every((r) => r.generation !== 4 || r.updated_at < bumpedAt))
  // Closed without logging out: the device is still linked at WhatsApp, just not connected.
  await until(async () => (await device()).length === 1 && !(await device())[0].connected, 5000, 'the device linked but offline')
  await assert.rejects(b.call('POST', `/accounts/${ACCOUNT}/send`, { phone_number: CONTACT, text: 'late', id: 'LATESEND0002' }),
    (e) => e.status === 409 && e.code === 'not_owner')
  const batch = await b.call('POST', `/accounts/${ACCOUNT}/send/batch`, { messages: [{ phone_number: CONTACT, text: 'late', id: 'LATESEND0003' }] })
  assert.equal(batch.results[0].error.code, 'not_owner')
  await new Promise((resolve) => setTimeout(resolve, 600)) // several reconnect periods: nothing reconnects
  assert.equal((await b.status()).state, 'fenced')
  assert.equal((await device())[0].connected, false)
  const inbox = (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body
  assert.ok(!inbox.some((m) => m.id.startsWith('LATESEND')), 'nothing sent after the bump')

  // The account comes back to this instance (a newer generation): reloaded, no QR, and the message it
  // refused to acknowledge is delivered now.
  await pg.grant(ACCOUNT, 'inst-b', 6)
  await b.attach(6)
  await until(async () => (await b.status()).state === 'connected', 15000, 'back after a newer attach')
  assert.equal(b.states.filter((s) => s === 'qr').length, qrs, 'no QR')
  await until(async () => (await b.events()).find((e) => e.type === 'message' && e.id === msg.body.id), 10000, 'the refused message delivered')
  await twoWay(b, 'B2')
  assert.ok((await rows()).some((r) => r.generation === 6), 'written under the new generation')
})

test('the account returns to the first instance: it reloads what the other wrote meanwhile, no QR, messages both ways', { skip }, async () => {
  const generation = await takeover('inst-a')
  await a2.attach(generation)
  await until(async () => (await a2.status()).state === 'connected', 15000, 'the first instance connected again')
  assert.ok(!a2.states.includes('qr'))
  await until(async () => (await b.status()).state === 'fenced', 10000, 'the other fenced by 440')
  await twoWay(a2, 'A3')
})

test('a newer attach after another owner wrote (without connecting) reloads the store instead of keeping its memory', { skip }, async () => {
  assert.equal((await a2.status()).state, 'connected')
  const taken = await takeover('inst-c')
  // what another owner writes under its lease (it never connects, so this session sees no 440)
  await pg.query('INSERT INTO wa_auth (account, key, value, generation, updated_at) VALUES ($1, $2, $3, $4, $5)',
    [ACCOUNT, 'session/written-by-c', JSON.stringify({ c: 1 }), taken, Date.now() / 1000])
  await pg.grant(ACCOUNT, 'inst-a', taken + 1)
  await a2.attach(taken + 1)
  await until(async () => (await a2.status()).state === 'connected', 15000, 'connected again')
  const { 'written-by-c': seen } = await a2.session().store.state.keys.get('session', ['written-by-c'])
  assert.deepEqual(seen, { c: 1 }, 'the store was reloaded from PostgreSQL')
  await pg.query('DELETE FROM wa_auth WHERE account = $1 AND key = $2', [ACCOUNT, 'session/written-by-c'])
})

test('release closes the session without logging out; a restarted worker resumes the accounts accounts.json gives it a generation for', { skip }, async () => {
  assert.equal((await a2.status()).state, 'connected')
  const released = await a2.call('POST', `/accounts/${ACCOUNT}/release`, {})
  assert.equal(released.released, true)
  assert.equal(released.state, 'stopped')
  await until(async () => (await device()).length === 1 && !(await device())[0].connected, 5000, 'the device linked but offline')
  assert.deepEqual(await a2.call('POST', '/accounts/other/release', {}), { account: 'other', released: false })
  assert.equal((await a2.call('POST', `/accounts/${ACCOUNT}/release`, {})).state, 'stopped', 'idempotent')

  // The gateway of another instance takes it; after a restart its worker logs in from accounts.json alone.
  const generation = await takeover('inst-b')
  const restarted = instance('inst-b')
  fs.writeFileSync(path.join(restarted.dataDir, 'accounts.json'),
    JSON.stringify({ version: 1, accounts: { [ACCOUNT]: { shard: 0, lease_generation: generation } } }))
  await restarted.host.resumeAll({ jitterMs: 0 })
  restarted.session().on('state', (st) => restarted.states.push(st))
  await until(async () => (await restarted.status()).state === 'connected', 15000, 'resumed from accounts.json')
  assert.equal((await restarted.status()).lease_generation, generation)
  await twoWay(restarted, 'R1')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal((await a2.status()).state, 'stopped', 'the released session stayed down')
  assert.deepEqual(restarted.states.filter((st) => st !== 'connected'), [], 'never kicked out')
})

test('without PostgreSQL a 440 still reconnects, and there is nothing to release', { skip }, async () => {
  const local = instance('inst-local', { database: false })
  await local.call('POST', `/accounts/${ACCOUNT}/attach`, {})
  const started = await local.call('POST', `/accounts/${ACCOUNT}/connect`, { wait_ms: 10000 })
  assert.equal(started.state, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: '+15550007002', qr: started.qr })).status, 200)
  await until(async () => (await local.status()).state === 'connected', 20000, 'connected')
  local.session().on('state', (s) => local.states.push(s))
  assert.equal((await emu.api('POST', '/faults', { kind: 'conflict', phone_number: '+15550007002' })).status, 200)
  await until(() => local.states.includes('connecting'), 5000, 'the 440 seen')
  await until(async () => (await local.status()).state === 'connected', 10000, 'reconnected')
  assert.ok(!local.states.includes('fenced'))
  // nothing to release without a shared store: refused, the link stays
  await assert.rejects(local.call('POST', `/accounts/${ACCOUNT}/release`, {}), (e) => e.status === 409 && e.code === 'not_clustered')
  assert.equal((await local.status()).state, 'connected')
})
