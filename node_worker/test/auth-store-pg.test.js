// auth-store-pg.js against a real PostgreSQL (test/pg-helpers.js): the same interface and crash-safety as
// the local journal, and the lease fence (issue 14): no write of a generation lands after a takeover.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BufferJSON, proto } from 'baileys'
import { openAuthStore } from '../src/auth-store.js'
import { FencedError, openPgAuthStore, removePgAuthStore } from '../src/auth-store-pg.js'
import { readSettings, redactDatabaseUrl, SettingsError } from '../src/settings.js'
import { pgMissing, startPostgres } from './pg-helpers.js'

const WRITER = fileURLToPath(new URL('./fixtures/auth-store-pg-writer.js', import.meta.url))
const skip = pgMissing() ?? false
if (skip) console.log(`# auth-store-pg tests skipped: ${skip}`)

let server
let pool
const dirs = []
before(async () => {
  if (skip) return
  server = await startPostgres()
  pool = server.pool({ max: 6 })
})
after(async () => {
  await server?.stop()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const keyPair = () => ({ public: randomBytes(32), private: randomBytes(32) })
const rowsOf = async (account) =>
  (await server.query('SELECT key, value, generation::int AS generation, updated_at FROM wa_auth WHERE account = $1 ORDER BY key', [account])).rows
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('round trip: creds, key types, deletes, reopen; every row records its generation; writes queued together commit together', { skip }, async () => {
  await server.grant('rt', 'inst-a', 5)
  let store = await openPgAuthStore({ pool, account: 'rt', instanceId: 'inst-a', generation: 5 })
  assert.deepEqual((await rowsOf('rt')).map((r) => [r.key, r.generation]), [['creds', 5]], 'a new identity is persisted at open')
  const identity = store.state.creds.signedIdentityKey.public
  const syncKey = proto.Message.AppStateSyncKeyData.fromObject({ keyData: randomBytes(32), fingerprint: { rawId: 7, currentIndex: 1, deviceIndexes: [0, 1] }, timestamp: 1700000000000 })
  const pre = { 1: keyPair(), 2: keyPair() }
  await store.state.keys.set({ 'pre-key': pre, session: { 'a.0': randomBytes(100) }, 'app-state-sync-key': { K1: syncKey } })
  await store.state.keys.set({ 'pre-key': { 1: null } })
  store.state.creds.me = { id: '15550001111:1@s.whatsapp.net' }
  await store.saveCreds()
  await store.close()
  await assert.rejects(store.saveCreds(), /closed/)

  store = await openPgAuthStore({ pool, account: 'rt', instanceId: 'inst-a', generation: 5 })
  assert.ok(store.state.creds.signedIdentityKey.public.equals(identity), 'the same identity after reopen')
  assert.ok(store.isRegistered())
  const got = await store.state.keys.get('pre-key', ['1', '2'])
  assert.equal(got[1], null, 'deleted')
  assert.ok(got[2].private.equals(pre[2].private), 'Buffers survive')
  const sk = (await store.state.keys.get('app-state-sync-key', ['K1'])).K1
  assert.ok(sk instanceof proto.Message.AppStateSyncKeyData, 'revived as proto')
  assert.deepEqual((await rowsOf('rt')).map((r) => r.key), ['app-state-sync-key/K1', 'creds', 'pre-key/2', 'session/a.0'])
  assert.ok((await rowsOf('rt')).every((r) => r.generation === 5))

  // Concurrent writes: each resolves only once committed, later ones win, and they share transactions.
  const before = store.stats.transactions
  await Promise.all(Array.from({ length: 30 }, (_, i) => store.state.keys.set({ session: { hot: Buffer.from(String(i)) } })))
  assert.equal((await store.state.keys.get('session', ['hot'])).hot.toString(), '29')
  const hot = (await rowsOf('rt')).find((r) => r.key === 'session/hot')
  assert.equal(JSON.parse(hot.value, BufferJSON.reviver).toString(), '29', 'the last write is the one stored')
  assert.ok(store.stats.transactions - before < 30, `group commit: ${store.stats.transactions - before} transactions for 30 writes`)
  await store.close()
})

test('a lost lease fences every write: rejected, nothing lands, later writes refused at once', { skip }, async () => {
  await server.grant('fx', 'inst-a', 7)
  const fenced = []
  const store = await openPgAuthStore({ pool, account: 'fx', instanceId: 'inst-a', generation: 7, onFenced: (err) => fenced.push(err) })
  await store.state.keys.set({ session: { s1: randomBytes(10) } })
  await store.checkLease()

  // A takeover by another instance.
  await server.query('UPDATE leases SET owner = $2, generation = generation + 1 WHERE account = $1', ['fx', 'inst-b'])
  const bumpedAt = Date.now() / 1000
  const snapshot = await rowsOf('fx')
  await assert.rejects(store.state.keys.set({ session: { s1: randomBytes(10), s2: randomBytes(10) } }), (err) => {
    assert.ok(err instanceof FencedError)
    assert.equal(err.code, 'not_owner')
    assert.equal(err.owner, 'inst-b')
    assert.equal(err.generation, 8)
    return true
  })
  assert.equal(fenced.length, 1, 'onFenced told once')
  const txBefore = store.stats.transactions
  await assert.rejects(store.saveCreds(), FencedError)
  await assert.rejects(store.checkLease(), FencedError)
  assert.equal(store.stats.transactions, txBefore)
  assert.deepEqual(await rowsOf('fx'), snapshot, 'no row changed after the takeover')
  assert.ok((await rowsOf('fx')).every((r) => r.generation < 8 || r.updated_at < bumpedAt))
  assert.equal((await store.state.keys.get('session', ['s2'])).s2, null, 'memory holds only what committed')
  assert.equal(fenced.length, 1)
  await store.close()

  // The same owner at a newer generation (lease re-acquired) fences the old generation too; so does no lease at all.
  await server.grant('fy', 'inst-a', 1)
  const old = await openPgAuthStore({ pool, account: 'fy', instanceId: 'inst-a', generation: 1 })
  await server.grant('fy', 'inst-a', 2)
  await assert.rejects(old.saveCreds(), FencedError)
  await old.close()
  await assert.rejects(openPgAuthStore({ pool, account: 'nolease', instanceId: 'inst-a', generation: 1 }), FencedError)
  assert.deepEqual(await rowsOf('nolease'), [], 'a new identity is not written without the lease')
  // Removal (logout) is fenced as well.
  await assert.rejects(removePgAuthStore(pool, { account: 'fy', instanceId: 'inst-a', generation: 1 }), FencedError)
  assert.equal((await rowsOf('fy')).length, 1)
  await removePgAuthStore(pool, { account: 'fy', instanceId: 'inst-a', generation: 2 })
  assert.equal((await rowsOf('fy')).length, 0)
})

test('a takeover waits for the write in flight: once it commits, no row of the old generation changes', { skip }, async (t) => {
  // The writer keeps several writes in flight; the takeover lands at a random moment. Without the
  // FOR SHARE lock a write that passed its check before the takeover would commit after it.
  const trials = 12
  let caughtInFlight = 0
  for (let trial = 0; trial < trials; trial++) {
    const account = `race-${trial}`
    await server.grant(account, 'inst-a', 1)
    const store = await openPgAuthStore({ pool, account, instanceId: 'inst-a', generation: 1 })
    let stop = false
    let n = 0
    const writers = Array.from({ length: 3 }, async (_, w) => {
      while (!stop) {
        const keys = {}
        for (let i = 0; i < 20; i++) keys[`w${w}-${n}-${i}`] = keyPair()
        n++
        try {
          await store.state.keys.set({ 'pre-key': keys, session: { [`w${w}`]: Buffer.from(String(n)) } })
        } catch (err) {
          if (!(err instanceof FencedError)) throw err
          return
        }
      }
    })
    await sleep(5 + Math.random() * 40)
    const other = await pool.connect()
    try {
      await other.query('UPDATE leases SET owner = $2, generation = generation + 1 WHERE account = $1', [account, 'inst-b'])
    } finally {
      other.release()
    }
    const atTakeover = await rowsOf(account)
    stop = true
    await Promise.all(writers)
    await store.flush().catch(() => {})
    const after = await rowsOf(account)
    assert.deepEqual(after, atTakeover, `trial ${trial}: rows changed after the takeover committed`)
    if (store.fenced) caughtInFlight++
    await store.close()
  }
  t.diagnostic(`${trials} takeovers under load, ${caughtInFlight} fenced a writer`)
  assert.ok(caughtInFlight > 0)
})

test('migration: a local session directory is imported once, in one fenced transaction', { skip }, async () => {
  const dir = join(await mkdtemp(join(tmpdir(), 'auth-pg-import-')), 'session')
  dirs.push(dirname(dir))
  const local = await openAuthStore(dir)
  local.state.creds.me = { id: '15550002222:3@s.whatsapp.net' }
  await local.saveCreds()
  const pre = { 11: keyPair(), 12: keyPair() }
  await local.state.keys.set({ 'pre-key': pre, session: { 'x.0': randomBytes(50) } })
  const identity = local.state.creds.signedIdentityKey.public
  await local.close()

  // Not without the lease.
  await assert.rejects(openPgAuthStore({ pool, account: 'imp', instanceId: 'inst-a', generation: 3, importDir: dir }), FencedError)
  assert.deepEqual(await rowsOf('imp'), [])
  await server.grant('imp', 'inst-a', 3)
  const store = await openPgAuthStore({ pool, account: 'imp', instanceId: 'inst-a', generation: 3, importDir: dir })
  assert.ok(store.state.creds.signedIdentityKey.public.equals(identity), 'the same identity: no new QR')
  assert.ok(store.isRegistered())
  assert.ok((await store.state.keys.get('pre-key', ['12']))[12].private.equals(pre[12].private))
  assert.deepEqual((await rowsOf('imp')).map((r) => [r.key, r.generation]),
    [['creds', 3], ['pre-key/11', 3], ['pre-key/12', 3], ['session/x.0', 3]])
  await store.close()
  // Once the account has creds in PostgreSQL, the local directory is not read again.
  await server.query("UPDATE wa_auth SET value = $2 WHERE account = $1 AND key = 'session/x.0'", ['imp', JSON.stringify(Buffer.from('pg'), BufferJSON.replacer)])
  const again = await openPgAuthStore({ pool, account: 'imp', instanceId: 'inst-a', generation: 3, importDir: dir })
  assert.equal((await again.state.keys.get('session', ['x.0']))['x.0'].toString(), 'pg')
  await again.close()
})

function runWriter (account, generation, run, killAfterMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, server.url, account, 'inst-a', String(generation), String(run)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let timer = null
    const guard = setTimeout(() => child.kill('SIGKILL'), 20000)
    child.stdout.on('data', (d) => {
      out += d
      if (!timer && out.startsWith('READY\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    })
    child.stderr.on('data', (d) => { err += d })
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      clearTimeout(timer)
      if (signal !== 'SIGKILL' || !timer) reject(new Error(`writer exited early (code=${code} signal=${signal}): ${err}`))
      else resolve(out.split('\n'))
    })
  })
}

test('kill -9 of the writer at random moments: every acknowledged write is there, never half a batch', { skip }, async (t) => {
  const account = 'crash'
  await server.grant(account, 'inst-a', 4)
  const acked = []
  let maxCredsAck = 0
  let identity = null
  let total = 0
  const kills = 6
  for (let run = 1; run <= kills; run++) {
    const lines = await runWriter(account, 4, run, 60 + Math.floor(Math.random() * 400))
    for (const line of lines) {
      const [kind, ...rest] = line.split(' ')
      if (kind === 'K') acked.push({ run: +rest[0], seq: +rest[1], n: +rest[2] })
      if (kind === 'C') maxCredsAck = Math.max(maxCredsAck, +rest[0])
      if (kind === 'K' || kind === 'C') total++
    }
    const rows = new Map((await rowsOf(account)).map((r) => [r.key, r.value]))
    const markerOf = (r, s) => {
      const v = rows.get(`session/r${r}-m${s}`)
      return v === undefined ? undefined : Number(JSON.parse(v, BufferJSON.reviver).toString())
    }
    const creds = JSON.parse(rows.get('creds'), BufferJSON.reviver)
    identity ??= creds.signedIdentityKey.public
    assert.ok(identity.equals(creds.signedIdentityKey.public), 'creds identity never regenerated')
    assert.ok((creds.testSeq ?? 0) >= maxCredsAck, `creds.testSeq ${creds.testSeq} < acked ${maxCredsAck}`)
    for (const { run: r, seq, n } of acked) assert.equal(markerOf(r, seq), n, `acked batch r${r}/${seq} present`)
    const byBatch = new Map()
    for (const key of rows.keys()) {
      const m = /^pre-key\/r(\d+)-b(\d+)-(\d+)$/.exec(key)
      if (m) byBatch.set(`${m[1]}/${m[2]}`, (byBatch.get(`${m[1]}/${m[2]}`) ?? 0) + 1)
    }
    for (const key of rows.keys()) {
      const m = /^session\/r(\d+)-m(\d+)$/.exec(key)
      if (!m) continue
      const [r, s] = [+m[1], +m[2]]
      const n = markerOf(r, s)
      const deletedByNext = s % 2 === 0 && markerOf(r, s + 1) !== undefined
      assert.equal(byBatch.get(`${r}/${s}`) ?? 0, n - (deletedByNext ? 1 : 0), `batch r${r}/${s} complete`)
      byBatch.delete(`${r}/${s}`)
    }
    assert.deepEqual([...byBatch.keys()], [], 'no batch is partially present')
  }
  // Through the public API, and still writable.
  const store = await openPgAuthStore({ pool, account, instanceId: 'inst-a', generation: 4 })
  assert.ok(store.state.creds.testSeq >= maxCredsAck)
  await store.state.keys.set({ session: { final: Buffer.from('ok') } })
  await store.close()
  t.diagnostic(`kill -9: ${kills} kills, ${total} acknowledged writes (${acked.length} key batches) checked`)
  assert.ok(acked.length > 0)
})

test('a writer frozen (SIGSTOP) inside its transaction holds a takeover up only until the idle-in-transaction timeout, and writes nothing after it', { skip }, async (t) => {
  const account = 'frozen'
  await server.grant(account, 'inst-a', 1)
  const idleMs = 800
  const child = spawn(process.execPath, [WRITER, server.url, account, 'inst-a', '1', '1', String(idleMs)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  try {
    let acked = 0
    child.stdout.on('data', (d) => { acked += String(d).split('\n').filter((l) => /^[KC] /.test(l)).length })
    const deadline = Date.now() + 10000
    while (acked < 20 && Date.now() < deadline) await sleep(20)
    assert.ok(acked >= 20, 'the writer is writing')
    // Frozen inside a write transaction (it writes back to back; stopped between two transactions, it is
    // let go and stopped again) until the takeover is through.
    const idleInTx = async () => (await server.query( // past its lease check: the row lock gave the transaction an id
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'wa-gateway-worker' AND state = 'idle in transaction' AND backend_xid IS NOT NULL")).rows[0].n
    let inTx = 0
    for (let attempt = 0; attempt < 50 && !inTx; attempt++) {
      child.kill('SIGSTOP')
      await sleep(30) // the statement in flight, if any, finishes on the server
      inTx = await idleInTx()
      if (!inTx) { child.kill('SIGCONT'); await sleep(Math.random() * 20) }
    }
    assert.ok(inTx > 0, 'frozen inside a transaction')
    const started = Date.now()
    const other = await pool.connect()
    let timer
    try {
      await Promise.race([
        other.query('UPDATE leases SET owner = $2, generation = generation + 1 WHERE account = $1', [account, 'inst-b']),
        new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('the takeover is still waiting for the frozen writer')), idleMs + 4000) })
      ])
    } finally {
      clearTimeout(timer)
      other.release()
    }
    const waited = Date.now() - started
    assert.ok(waited >= idleMs / 2, `the takeover waited for the frozen writer's lock (${waited} ms)`)
    const atTakeover = await rowsOf(account)
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    child.kill('SIGCONT')
    // The resumed writer goes on: its connection is gone (its write rolled back), then the fence refuses it.
    const code = await Promise.race([exited, sleep(5000).then(() => 'running')])
    assert.notEqual(code, 'running', 'the resumed writer stopped on a refused write')
    assert.match(stderr, /FencedError|auth store: write failed/, 'a rejected write, not a crash elsewhere')
    assert.doesNotMatch(stderr, /Unhandled 'error' event/)
    assert.deepEqual(await rowsOf(account), atTakeover, 'nothing written by the old generation after the takeover')
    t.diagnostic(`frozen with ${inTx} connection(s) idle in a transaction; the takeover waited ${waited} ms`)
  } finally {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await exited
  }
})

test('settings: WA_DATABASE_URL (postgresql:// or empty, never echoed) and WA_INSTANCE_ID', () => {
  const s = readSettings({ WA_DATABASE_URL: ' postgresql://gw:s3cret@db.example:5433/wa?sslmode=require ', WA_INSTANCE_ID: 'node-1.eu' })
  assert.equal(s.databaseUrl, 'postgresql://gw:s3cret@db.example:5433/wa?sslmode=require')
  assert.equal(s.instanceId, 'node-1.eu')
  assert.equal(redactDatabaseUrl(s.databaseUrl), 'postgresql://gw@db.example:5433/wa')
  assert.equal(readSettings({ WA_DATABASE_URL: 'postgres://h/db' }).databaseUrl, 'postgres://h/db')
  assert.equal(readSettings({}).databaseUrl, null, 'empty: the local session store, as before')
  assert.equal(redactDatabaseUrl(null), null)
  assert.ok(readSettings({}).instanceId, 'defaults to the host name, as the gateway does')
  assert.throws(() => readSettings({ WA_DATABASE_URL: 'mysql://u:s3cret@h/db' }), (err) => err instanceof SettingsError && !err.message.includes('s3cret'))
  assert.throws(() => readSettings({ WA_DATABASE_URL: 'not a url s3cret' }), (err) => err instanceof SettingsError && !err.message.includes('s3cret'))
  assert.throws(() => readSettings({ WA_INSTANCE_ID: 'bad id/with slash' }), SettingsError)
})

function dirname (p) { return join(p, '..') }
