import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { watch } from 'node:fs'
import { appendFile, copyFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { BufferJSON, initAuthCreds, makeCacheableSignalKeyStore, proto } from 'baileys'
import { openAuthStore, removeAuthStore } from '../src/auth-store.js'
import { frame, openJournaledMap } from '../src/journal.js'

const WRITER = fileURLToPath(new URL('./fixtures/auth-store-writer.js', import.meta.url))

const tempDirs = []
async function tempDir () {
  const d = await mkdtemp(join(tmpdir(), 'auth-store-test-'))
  tempDirs.push(d)
  return join(d, 'session')
}
after(async () => {
  for (const d of tempDirs) await rm(d, { recursive: true, force: true })
})

const keyPair = () => ({ public: randomBytes(32), private: randomBytes(32) })

function sampleKeys () {
  return {
    'pre-key': { 1: keyPair(), 2: keyPair() },
    session: { '123@s.whatsapp.net.0': randomBytes(200) },
    'sender-key': { 'group@g.us::456::0': randomBytes(120) },
    'sender-key-memory': { 'group@g.us': { '456@s.whatsapp.net': true } },
    'app-state-sync-key': {
      AAAAAK1B: proto.Message.AppStateSyncKeyData.fromObject({
        keyData: randomBytes(32),
        fingerprint: { rawId: 7, currentIndex: 1, deviceIndexes: [0, 1] },
        timestamp: 1700000000000
      })
    },
    'app-state-sync-version': {
      regular_high: { version: 12, hash: randomBytes(128), indexValueMap: { abc: { valueMac: randomBytes(32) } } }
    },
    'lid-mapping': { '123': '999', '999_reverse': '123' },
    'device-list': { '123': ['0', '5'] },
    tctoken: { '123@s.whatsapp.net': { token: randomBytes(16), timestamp: '1700000000' } },
    'identity-key': { '123.0': randomBytes(33) }
  }
}

async function assertKeys (store, expected) {
  for (const [type, entries] of Object.entries(expected)) {
    const got = await store.state.keys.get(type, Object.keys(entries))
    for (const [id, value] of Object.entries(entries)) {
      if (!value) {
        assert.equal(got[id], null, `${type}/${id} should be absent`)
      } else if (type === 'app-state-sync-key') {
        assert.ok(got[id] instanceof proto.Message.AppStateSyncKeyData, 'revived as proto')
        assert.ok(Buffer.from(got[id].keyData).equals(Buffer.from(value.keyData)))
        assert.equal(got[id].fingerprint.rawId, value.fingerprint.rawId)
        assert.deepEqual(got[id].fingerprint.deviceIndexes, value.fingerprint.deviceIndexes)
        assert.equal(Number(got[id].timestamp), Number(value.timestamp))
      } else {
        assert.deepEqual(got[id], value, `${type}/${id}`)
      }
    }
  }
}

test('round trip: creds, every key type, Buffers, deletes, reopen, permissions', async () => {
  const dir = await tempDir()
  let store = await openAuthStore(dir)
  assert.equal(store.isRegistered(), false)
  const identity = Buffer.from(store.state.creds.signedIdentityKey.public)
  const keys = sampleKeys()
  await store.state.keys.set(keys)
  await store.state.keys.set({ 'pre-key': { 2: null }, session: { missing: null } })
  keys['pre-key'][2] = null
  store.state.creds.me = { id: '123:4@s.whatsapp.net', name: 'x' }
  store.state.creds.routingInfo = randomBytes(10)
  await store.saveCreds()
  assert.equal(store.isRegistered(), true)
  await assertKeys(store, keys)
  await store.close()

  store = await openAuthStore(dir)
  assert.ok(Buffer.isBuffer(store.state.creds.signedIdentityKey.public))
  assert.ok(identity.equals(store.state.creds.signedIdentityKey.public))
  assert.ok(Buffer.isBuffer(store.state.creds.routingInfo))
  assert.equal(store.state.creds.me.id, '123:4@s.whatsapp.net')
  assert.equal(store.isRegistered(), true)
  await assertKeys(store, keys)

  // Reads hand out copies: mutating a result must not change the store.
  const a = await store.state.keys.get('device-list', ['123'])
  a['123'].push('9')
  assert.deepEqual((await store.state.keys.get('device-list', ['123']))['123'], ['0', '5'])
  await store.close()

  assert.equal((await stat(dir)).mode & 0o777, 0o700)
  for (const name of await readdir(dir)) assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600, name)
})

test('torn or garbage journal tail is cut; batches are all-or-nothing; writes continue', async () => {
  const dir = await tempDir()
  let store = await openAuthStore(dir)
  await store.state.keys.set({ session: { a: Buffer.from('A') } })
  await store.close()
  const journal = join(dir, 'journal-0.wal')
  const goodSize = (await stat(journal)).size

  // A big batch whose record is torn halfway: none of it may be visible.
  store = await openAuthStore(dir)
  const big = {}
  for (let i = 0; i < 800; i++) big[`k${i}`] = keyPair()
  await store.state.keys.set({ 'pre-key': big, session: { b: Buffer.from('B') } })
  await store.close()
  const fullSize = (await stat(journal)).size
  await truncate(journal, goodSize + Math.floor((fullSize - goodSize) / 2))

  store = await openAuthStore(dir)
  assert.deepEqual((await store.state.keys.get('session', ['a']))['a'], Buffer.from('A'))
  assert.equal((await store.state.keys.get('session', ['b']))['b'], null)
  const got = await store.state.keys.get('pre-key', Object.keys(big))
  assert.equal(Object.values(got).filter(Boolean).length, 0)
  await store.state.keys.set({ session: { c: Buffer.from('C') } })
  await store.close()

  // Garbage, a header claiming more bytes than exist, and a bad checksum.
  for (const junk of [
    randomBytes(37),
    Buffer.from([0xff, 0xff, 0xff, 0x0f, 1, 2, 3, 4, 5]),
    (() => { const b = frame('{"ops":[["session/evil",{"type":"Buffer","data":"eA=="}]]}'); b[b.length - 3] ^= 1; return b })()
  ]) {
    await appendFile(journal, junk)
    store = await openAuthStore(dir)
    const s = await store.state.keys.get('session', ['a', 'b', 'c', 'evil'])
    assert.deepEqual(s, { a: Buffer.from('A'), b: null, c: Buffer.from('C'), evil: null })
    await store.state.keys.set({ session: { d: Buffer.from('D') } })
    await store.close()
  }
  store = await openAuthStore(dir)
  assert.deepEqual((await store.state.keys.get('session', ['d']))['d'], Buffer.from('D'))
  await store.close()
})

test('concurrent set() calls are serialized, each durable, and share fsyncs', async () => {
  const dir = await tempDir()
  let store = await openAuthStore(dir)
  const before = store.stats.syncs
  await Promise.all(Array.from({ length: 200 }, (_, i) =>
    store.state.keys.set({ session: { [`s${i}`]: Buffer.from(String(i)) }, 'pre-key': { [i]: keyPair() } })))
  const syncs = store.stats.syncs - before
  assert.ok(syncs >= 1 && syncs < 200, `group commit used ${syncs} fsyncs for 200 sets`)
  await store.close()
  store = await openAuthStore(dir)
  const got = await store.state.keys.get('session', Array.from({ length: 200 }, (_, i) => `s${i}`))
  for (let i = 0; i < 200; i++) assert.deepEqual(got[`s${i}`], Buffer.from(String(i)))
  await store.close()
})

async function fillStore (dir, compactBytes, count, extra) {
  const map = await openJournaledMap(dir, { compactBytes })
  const ops = []
  for (let i = 0; i < count; i++) {
    ops.push([`session/${i}`, JSON.stringify({ i, pad: 'x'.repeat(200) })])
    if (ops.length === 50) await map.commit(ops.splice(0))
  }
  if (ops.length) await map.commit(ops)
  await map.commit([['session/0', null]])
  if (extra) await map.commit([['session/extra', '"E"']])
  const gen = map.generation
  await map.close()
  return gen
}

async function assertFilled (dir, count, extra) {
  const map = await openJournaledMap(dir)
  assert.equal(map.get('session/0'), undefined)
  for (let i = 1; i < count; i++) assert.equal(JSON.parse(map.get(`session/${i}`)).i, i)
  assert.equal(map.get('session/extra'), extra ? '"E"' : undefined)
  assert.equal(map.size, count - 1 + (extra ? 1 : 0))
  const gen = map.generation
  await map.close()
  return gen
}

test('compaction, and a crash between its steps', async () => {
  const count = 2000
  // Plain compaction across several generations.
  const dir = await tempDir()
  const gen = await fillStore(dir, 64 * 1024, count, true)
  assert.ok(gen >= 2, `expected compactions, generation=${gen}`)
  assert.equal(await assertFilled(dir, count, true), gen)
  assert.deepEqual((await readdir(dir)).sort(), [`journal-${gen}.wal`, `snapshot-${gen}.snap`])

  // "before": everything in journal-0; "after": the last write triggered compaction to gen 1.
  const before = await tempDir()
  assert.equal(await fillStore(before, 1 << 30, count, true), 0)
  const afterDir = await tempDir()
  await fillStore(afterDir, 1 << 30, count, false)
  {
    const map = await openJournaledMap(afterDir, { compactBytes: 1024 })
    await map.commit([['session/extra', '"E"']])
    await map.flush() // compaction runs right after the commit is acknowledged
    assert.equal(map.generation, 1)
    await map.close()
  }
  const snap1 = await readFile(join(afterDir, 'snapshot-1.snap'))

  const scenarios = {
    // Renamed, new journal not yet created, old generation not yet deleted.
    afterRename: { 'journal-0.wal': 'before', 'snapshot-1.snap': snap1 },
    // New journal created too, old files still there.
    afterNewJournal: { 'journal-0.wal': 'before', 'snapshot-1.snap': snap1, 'journal-1.wal': Buffer.alloc(0) },
    // Snapshot still a partial temp file.
    partialTemp: { 'journal-0.wal': 'before', 'snapshot-1.snap.tmp': snap1.subarray(0, snap1.length >> 1) },
    // Directory ops reordered by power loss: empty new journal reached disk, rename did not.
    journalWithoutSnapshot: { 'journal-0.wal': 'before', 'journal-1.wal': Buffer.alloc(0), 'snapshot-1.snap.tmp': snap1 }
  }
  for (const [name, files] of Object.entries(scenarios)) {
    const d = await tempDir()
    await openJournaledMap(d).then((m) => m.close()) // creates the directory
    await rm(join(d, 'journal-0.wal'))
    for (const [file, content] of Object.entries(files)) {
      if (content === 'before') await copyFile(join(before, file), join(d, file))
      else await writeFile(join(d, file), content, { mode: 0o600 })
    }
    const gen = await assertFilled(d, count, true)
    const expected = gen === 0 ? ['journal-0.wal'] : [`journal-${gen}.wal`, `snapshot-${gen}.snap`]
    assert.deepEqual((await readdir(d)).sort(), expected, `${name}: only the winning generation is left`)
    // And it still accepts writes that survive another reopen.
    const m = await openJournaledMap(d, { compactBytes: 1024 })
    await m.commit([['session/after', '1']])
    await m.close()
    const m2 = await openJournaledMap(d)
    assert.equal(m2.get('session/after'), '1')
    await m2.close()
  }
})

test('refuses inconsistent stores instead of silently starting fresh', async () => {
  const dir = await tempDir()
  await fillStore(dir, 1024, 100, false)
  const [snap] = (await readdir(dir)).filter((f) => f.endsWith('.snap'))
  const buf = await readFile(join(dir, snap))
  buf[buf.length - 2] ^= 1
  await writeFile(join(dir, snap), buf)
  await assert.rejects(openJournaledMap(dir), /corrupt/)
  await assert.rejects(openJournaledMap(dir), /corrupt/) // a failed open must not hold the directory
})

test('a directory can be open only once per process; removeAuthStore closes and deletes it', async () => {
  const dir = await tempDir()
  const store = await openAuthStore(dir)
  await assert.rejects(openAuthStore(dir), /already open/)
  await store.state.keys.set({ session: { x: Buffer.from('x') } })
  await removeAuthStore(dir)
  await assert.rejects(stat(dir), { code: 'ENOENT' })
  await assert.rejects(store.saveCreds(), /closed/)
  const fresh = await openAuthStore(dir)
  assert.equal(fresh.isRegistered(), false)
  assert.equal((await fresh.state.keys.get('session', ['x']))['x'], null)
  await fresh.close()
  await removeAuthStore(dir)
  await removeAuthStore(dir) // idempotent
})

test('works with real Baileys objects (initAuthCreds, makeCacheableSignalKeyStore)', async () => {
  const dir = await tempDir()
  let store = await openAuthStore(dir)
  Object.assign(store.state.creds, initAuthCreds()) // what Baileys' creds.update merge looks like
  const creds = JSON.parse(JSON.stringify(store.state.creds, BufferJSON.replacer), BufferJSON.reviver)
  await store.saveCreds()
  const keys = makeCacheableSignalKeyStore(store.state.keys)
  const preKey = keyPair()
  await keys.set({ 'pre-key': { 5: preKey }, 'app-state-sync-key': { K1: { keyData: randomBytes(32), timestamp: 5 } } })
  assert.deepEqual((await keys.get('pre-key', ['5', '6'])), { 5: preKey })
  await store.close()

  store = await openAuthStore(dir)
  assert.deepEqual(store.state.creds, creds)
  const cold = makeCacheableSignalKeyStore(store.state.keys)
  assert.deepEqual(await cold.get('pre-key', ['5', '6']), { 5: preKey })
  const { K1 } = await cold.get('app-state-sync-key', ['K1'])
  assert.ok(K1 instanceof proto.Message.AppStateSyncKeyData)
  await store.close()
})

test('micro-measure: 800-key batch and saveCreds latency', async (t) => {
  const dir = await tempDir()
  const store = await openAuthStore(dir)
  const rounds = 20
  let t0 = performance.now()
  for (let r = 0; r < rounds; r++) {
    const batch = {}
    for (let i = 0; i < 800; i++) batch[r * 800 + i] = keyPair()
    await store.state.keys.set({ 'pre-key': batch })
  }
  const perBatch = (performance.now() - t0) / rounds
  t0 = performance.now()
  for (let r = 0; r < 100; r++) {
    store.state.creds.accountSyncCounter = r
    await store.saveCreds()
  }
  const perCreds = (performance.now() - t0) / 100
  const msg = `800-key keys.set: ${perBatch.toFixed(2)} ms/batch; saveCreds: ${perCreds.toFixed(2)} ms/call; ` +
    `fsyncs=${store.stats.syncs}, compactions=${store.stats.compactions}`
  t.diagnostic(msg)
  await store.close()
})

// --- kill -9 -------------------------------------------------------------

// Kills the writer killAfterMs after it is ready, or (atCompaction) a few ms
// after a snapshot temp file appears, to land inside a compaction.
function runWriter (dir, run, { killAfterMs, atCompaction }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(run), String(256 * 1024)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const kill = () => child.kill('SIGKILL')
    let out = ''
    let err = ''
    let timer
    let watcher
    const guard = setTimeout(kill, 15000)
    child.stdout.on('data', (d) => {
      out += d
      if (timer || !out.startsWith('READY\n')) return
      timer = setTimeout(kill, killAfterMs)
      if (atCompaction) {
        watcher = watch(dir, (_, name) => {
          if (name?.endsWith('.tmp')) setTimeout(kill, Math.floor(Math.random() * 15))
        })
      }
    })
    child.stderr.on('data', (d) => { err += d })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(guard)
      watcher?.close()
      if (signal !== 'SIGKILL') reject(new Error(`writer exited early (code=${code} signal=${signal}): ${err}`))
      else resolve(out.split('\n'))
    })
  })
}

test('kill -9 at random moments loses no acknowledged write and never half a batch', async (t) => {
  const dir = await tempDir()
  const acked = [] // { run, seq, n }
  let maxCredsAck = 0
  let identity = null
  let totalAcks = 0
  let generation = 0
  let tornTails = 0
  let midCompaction = 0
  const kills = 8
  const t0 = performance.now()

  for (let run = 1; run <= kills; run++) {
    const atCompaction = run % 2 === 0
    const lines = await runWriter(dir, run, { killAfterMs: atCompaction ? 900 : 30 + Math.floor(Math.random() * 220), atCompaction })
    for (const line of lines) {
      const [kind, ...rest] = line.split(' ')
      if (kind === 'K') acked.push({ run: +rest[0], seq: +rest[1], n: +rest[2] })
      if (kind === 'C') maxCredsAck = Math.max(maxCredsAck, +rest[0])
      if (kind === 'K' || kind === 'C') totalAcks++
    }

    // Count how often a kill landed mid-append or mid-compaction, to show the test bites.
    if ((await readdir(dir)).length > 2) midCompaction++
    const logger = { warn: () => { tornTails++ } }
    // The raw map shows every key, so a half-applied batch cannot hide.
    const map = await openJournaledMap(dir, { logger })
    generation = map.generation
    const markerOf = (r, s) => {
      const v = map.get(`session/r${r}-m${s}`)
      return v === undefined ? undefined : Number(JSON.parse(v, BufferJSON.reviver).toString())
    }
    const creds = JSON.parse(map.get('creds'), BufferJSON.reviver)
    identity ??= creds.signedIdentityKey.public
    assert.ok(identity.equals(creds.signedIdentityKey.public), 'creds identity never regenerated')
    assert.ok((creds.testSeq ?? 0) >= maxCredsAck, `creds.testSeq ${creds.testSeq} < acked ${maxCredsAck}`)
    for (const { run: r, seq, n } of acked) assert.equal(markerOf(r, seq), n, `acked batch r${r}/${seq} present`)
    const byBatch = new Map()
    for (const key of map.keys()) {
      const m = /^pre-key\/r(\d+)-b(\d+)-(\d+)$/.exec(key)
      if (!m) continue
      const id = `${m[1]}/${m[2]}`
      byBatch.set(id, (byBatch.get(id) ?? 0) + 1)
    }
    for (const key of map.keys()) {
      const m = /^session\/r(\d+)-m(\d+)$/.exec(key)
      if (!m) continue
      const [r, s] = [+m[1], +m[2]]
      const n = markerOf(r, s)
      // Batch s+1 (odd) deletes b<s>-0 in the same record, so it is gone exactly when s+1 is present.
      const deletedByNext = s % 2 === 0 && markerOf(r, s + 1) !== undefined
      assert.equal(byBatch.get(`${r}/${s}`) ?? 0, n - (deletedByNext ? 1 : 0), `batch r${r}/${s} complete`)
      assert.equal(map.get(`pre-key/r${r}-b${s}-0`) === undefined, deletedByNext)
      byBatch.delete(`${r}/${s}`)
    }
    // Pre-keys without their marker would be a half-applied batch.
    assert.deepEqual([...byBatch.keys()], [], 'no batch is partially present')
    await map.close()
  }

  // Through the public API too, and still writable after all that.
  let store = await openAuthStore(dir)
  assert.ok(store.state.creds.testSeq >= maxCredsAck)
  const sample = acked.filter((_, i) => i % Math.ceil(acked.length / 100) === 0) // raw check above covered all
  for (const { run: r, seq, n } of sample) {
    const { [`r${r}-m${seq}`]: marker } = await store.state.keys.get('session', [`r${r}-m${seq}`])
    assert.equal(marker.toString(), String(n))
    const ids = Array.from({ length: n }, (_, i) => `r${r}-b${seq}-${i}`).slice(1)
    const got = await store.state.keys.get('pre-key', ids)
    assert.ok(ids.every((id) => Buffer.isBuffer(got[id]?.private)), `acked batch r${r}/${seq} pre-keys`)
  }
  await store.state.keys.set({ session: { final: Buffer.from('ok') } })
  await store.close()
  store = await openAuthStore(dir)
  assert.equal((await store.state.keys.get('session', ['final'])).final.toString(), 'ok')
  await store.close()

  const msg = `kill -9: ${kills} kills, ${totalAcks} acknowledged writes (${acked.length} key batches) checked, ` +
    `final generation ${generation}, torn tails cut ${tornTails}, kills mid-compaction ${midCompaction}, ${((performance.now() - t0) / 1000).toFixed(1)} s`
  t.diagnostic(msg)
})

test('a key commit carries the creds Baileys changed with it (a pre-key and its counter land together)', async () => {
  const dir = await tempDir()
  let store = await openAuthStore(dir)
  const before = store.stats.records
  await store.saveCreds() // nothing changed: nothing written
  assert.equal(store.stats.records, before)
  store.state.creds.nextPreKeyId = 4242 // what getNextPreKeys' creds.update merges, never saved by the app
  await store.state.keys.set({ 'pre-key': { 4241: { public: Buffer.alloc(32, 1), private: Buffer.alloc(32, 2) } } })
  await store.close()
  store = await openAuthStore(dir)
  assert.equal(store.state.creds.nextPreKeyId, 4242)
  assert.ok((await store.state.keys.get('pre-key', ['4241']))['4241'])
  await store.close()
  await removeAuthStore(dir)
})
