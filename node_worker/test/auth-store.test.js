import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFile, copyFile, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { BufferJSON, initAuthCreds, makeCacheableSignalKeyStore, proto } from 'baileys'
import { openAuthStore, removeAuthStore } from '../src/auth-store.js'
import { frame, openJournaledMap } from '../src/journal.js'
import { assertKeys, keyPair, sampleKeys, tempDir } from './auth-store-helpers.js'

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
