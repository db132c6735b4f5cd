// The auth store under kill -9 at random moments, in a child process (fixtures/auth-store-writer.js): no
// acknowledged write is lost and never half a batch is seen.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { watch } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { BufferJSON } from 'baileys'
import { openAuthStore } from '../src/auth-store.js'
import { openJournaledMap } from '../src/journal.js'
import { tempDir } from './auth-store-helpers.js'

const WRITER = fileURLToPath(new URL('./fixtures/auth-store-writer.js', import.meta.url))

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
