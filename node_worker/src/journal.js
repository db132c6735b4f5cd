/**
 * A small durable key/value map: snapshot + append-only journal in one directory.
 *
 * Values are opaque JSON text (the caller serializes), so reads can hand out
 * fresh copies and a record can embed them without double escaping.
 *
 * Files (N = generation):
 *   snapshot-N.snap  one framed record {"v":1,"gen":N,"data":{key: value}}; absent for N = 0
 *   journal-N.wal    framed records {"ops":[[key, value|null], ...]} applied onto snapshot-N
 *   *.tmp            an unfinished snapshot; always garbage
 * Frame: u32le payload length, u32le crc32(payload), UTF-8 JSON payload.
 *
 * Guarantees: commit() resolves only after its record is fdatasync'ed; one
 * commit is one record, so a crash shows all of it or none of it. A snapshot
 * is renamed into place only after it is fsync'ed, so the highest snapshot is
 * always complete and already contains its predecessor's journal.
 */
import { mkdir, open, readdir, readFile, rename, rm, chmod, unlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { crc32 } from 'node:zlib'
import { writeFailed } from './storage.js'

const HEADER_BYTES = 8
const FILE_MODE = 0o600
const DIR_MODE = 0o700
const DEFAULT_COMPACT_BYTES = 4 * 1024 * 1024

// One writer per directory per process; a second one would interleave appends.
const openMaps = new Map()

export function frame (payload) {
  const length = Buffer.byteLength(payload)
  const buf = Buffer.allocUnsafe(HEADER_BYTES + length)
  buf.write(payload, HEADER_BYTES, 'utf8')
  buf.writeUInt32LE(length, 0)
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 4)
  return buf
}

/** Parses consecutive frames; stops at the first incomplete or corrupt one. */
export function readFrames (buf) {
  const records = []
  let offset = 0
  while (buf.length - offset >= HEADER_BYTES) {
    const length = buf.readUInt32LE(offset)
    const end = offset + HEADER_BYTES + length
    if (end > buf.length) break
    const body = buf.subarray(offset + HEADER_BYTES, end)
    if (crc32(body) !== buf.readUInt32LE(offset + 4)) break
    let record
    try {
      record = JSON.parse(body.toString('utf8'))
    } catch {
      break
    }
    records.push(record)
    offset = end
  }
  return { records, validBytes: offset }
}

const encodeOps = (ops) =>
  '{"ops":[' + ops.map(([key, value]) => `[${JSON.stringify(key)},${value ?? 'null'}]`).join(',') + ']}'

const snapshotName = (gen) => `snapshot-${gen}.snap`
const journalName = (gen) => `journal-${gen}.wal`

/** Without this a freshly created or renamed file can vanish on power loss. */
export async function syncDir (dir) {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

async function writeAll (fh, buf) {
  let written = 0
  while (written < buf.length) {
    const { bytesWritten } = await fh.write(buf, written, buf.length - written)
    written += bytesWritten
  }
}

function listGenerations (names) {
  const snapshots = []
  const journals = []
  const temps = []
  for (const name of names) {
    let m
    if ((m = /^snapshot-(\d+)\.snap$/.exec(name))) snapshots.push(Number(m[1]))
    else if ((m = /^journal-(\d+)\.wal$/.exec(name))) journals.push(Number(m[1]))
    else if (name.endsWith('.tmp')) temps.push(name)
  }
  snapshots.sort((a, b) => b - a)
  return { snapshots, journals, temps }
}

async function loadSnapshot (dir, gen) {
  const buf = await readFile(join(dir, snapshotName(gen)))
  const { records, validBytes } = readFrames(buf)
  if (records.length !== 1 || validBytes !== buf.length || records[0].gen !== gen) {
    // Cannot come from a crash (it is fsync'ed before rename): refuse rather than guess.
    throw new Error(`auth store: ${join(dir, snapshotName(gen))} is corrupt; refusing to open`)
  }
  const data = new Map()
  for (const [key, value] of Object.entries(records[0].data)) data.set(key, JSON.stringify(value))
  return { data, bytes: buf.length }
}

export class JournaledMap {
  #dir
  #logger
  #compactBytes
  #data
  #gen
  #fh
  #journalBytes
  #snapshotBytes
  #pending = []
  #running = null
  #failed = null
  #closed = false

  /** Counters so tests and operators can see the write path doing its work. */
  stats = { syncs: 0, records: 0, compactions: 0 }

  constructor (fields) {
    this.#dir = fields.dir
    this.#logger = fields.logger
    this.#compactBytes = fields.compactBytes
    this.#data = fields.data
    this.#gen = fields.gen
    this.#fh = fields.fh
    this.#journalBytes = fields.journalBytes
    this.#snapshotBytes = fields.snapshotBytes
  }

  get dir () { return this.#dir }
  get generation () { return this.#gen }
  get size () { return this.#data.size }

  /** Raw JSON text of the last acknowledged value, or undefined. */
  get (key) {
    return this.#data.get(key)
  }

  keys () {
    return this.#data.keys()
  }

  /**
   * Durably applies ops ([key, jsonText | null] pairs, null deletes) as one
   * atomic record. Encoding happens now, so later mutation of the caller's
   * objects cannot leak into this write.
   */
  commit (ops) {
    if (this.#closed) return Promise.reject(new Error('auth store: closed'))
    if (this.#failed) return Promise.reject(this.#failed)
    if (ops.length === 0) return Promise.resolve()
    const buf = frame(encodeOps(ops))
    return new Promise((resolve, reject) => {
      this.#pending.push({ buf, ops, resolve, reject })
      this.#kick()
    })
  }

  #kick () {
    if (this.#running) return
    this.#running = this.#drain().finally(() => {
      this.#running = null
      // A commit may have queued between the drain's last check and this callback.
      if (this.#pending.length) this.#kick()
    })
  }

  /** Waits until every commit issued so far is durable (or has failed). */
  async flush () {
    while (this.#running) await this.#running
    if (this.#failed) throw this.#failed
  }

  async close () {
    if (this.#closed) return
    this.#closed = true
    try {
      while (this.#running) await this.#running
    } finally {
      openMaps.delete(this.#dir)
      await this.#fh.close()
    }
  }

  // Group commit: everything queued while the previous fsync ran goes out in
  // one write + one fsync, still as separate (individually atomic) records.
  async #drain () {
    while (this.#pending.length) {
      const batch = this.#pending.splice(0)
      const buf = batch.length === 1 ? batch[0].buf : Buffer.concat(batch.map((b) => b.buf))
      try {
        await writeAll(this.#fh, buf)
        await this.#fh.datasync()
      } catch (err) {
        this.#fail(err, batch)
        return
      }
      this.stats.syncs++
      this.stats.records += batch.length
      this.#journalBytes += buf.length
      for (const { ops } of batch) {
        for (const [key, value] of ops) {
          if (value == null) this.#data.delete(key)
          else this.#data.set(key, value)
        }
      }
      for (const { resolve } of batch) resolve()
      if (this.#journalBytes > Math.max(this.#compactBytes, this.#snapshotBytes)) {
        try {
          await this.#compact()
        } catch (err) {
          this.#fail(err, [])
          return
        }
      }
    }
  }

  /**
   * Fail-stop: after a failed write or fsync the kernel may have dropped dirty
   * pages, so nothing later could be acknowledged honestly. Reopening (which
   * replays the journal and cuts any torn tail) is the recovery. In the worker process the recovery is
   * taken at once: the handler (storage.js) ends the process before any caller learns of the failure, so
   * nothing can act on a write that did not happen.
   */
  #fail (err, batch) {
    this.#failed = new Error(`auth store: write failed, store is now read-only until reopened: ${err.message}`, { cause: err })
    writeFailed(err, this.#dir)
    this.#logger?.error({ err, dir: this.#dir }, 'auth_store.write_failed')
    for (const { reject } of [...batch, ...this.#pending.splice(0)]) reject(this.#failed)
  }

  async #compact () {
    const started = Date.now()
    const gen = this.#gen + 1
    const parts = []
    for (const [key, value] of this.#data) parts.push(`${JSON.stringify(key)}:${value}`)
    const buf = frame(`{"v":1,"gen":${gen},"data":{${parts.join(',')}}}`)
    const tmp = join(this.#dir, `${snapshotName(gen)}.tmp`)

    // Until the rename, a failure here leaves the current generation intact.
    try {
      const fh = await open(tmp, 'w', FILE_MODE)
      try {
        await writeAll(fh, buf)
        await fh.sync()
      } finally {
        await fh.close()
      }
    } catch (err) {
      await unlink(tmp).catch(() => {})
      this.#snapshotBytes = this.#journalBytes // back off instead of retrying every commit
      this.#logger?.warn({ err, dir: this.#dir }, 'auth_store.compaction_failed: continuing on the old journal')
      return
    }

    // From the rename on, the new generation wins on reopen, so errors must fail-stop.
    await rename(tmp, join(this.#dir, snapshotName(gen)))
    const fh = await open(join(this.#dir, journalName(gen)), 'w', FILE_MODE)
    try {
      await syncDir(this.#dir)
    } catch (err) {
      await fh.close()
      throw err
    }
    this.stats.syncs += 2
    const old = this.#fh
    const oldGen = this.#gen
    this.#fh = fh
    this.#gen = gen
    this.#journalBytes = 0
    this.#snapshotBytes = buf.length
    this.stats.compactions++
    await old.close()
    // Leftovers are harmless (open ignores and removes older generations).
    await unlink(join(this.#dir, journalName(oldGen))).catch(() => {})
    await unlink(join(this.#dir, snapshotName(oldGen))).catch(() => {})
    this.#logger?.debug({ gen, bytes: buf.length, keys: this.#data.size, ms: Date.now() - started }, 'auth_store.compacted')
  }
}

export async function openJournaledMap (dir, { logger, compactBytes = DEFAULT_COMPACT_BYTES } = {}) {
  dir = resolve(dir)
  if (openMaps.has(dir)) throw new Error(`auth store: ${dir} is already open in this process`)
  openMaps.set(dir, null) // reserve before the first await
  try {
    const map = await load(dir, logger, compactBytes)
    openMaps.set(dir, map)
    return map
  } catch (err) {
    openMaps.delete(dir)
    throw err
  }
}

async function load (dir, logger, compactBytes) {
  await mkdir(dir, { recursive: true, mode: DIR_MODE })
  await chmod(dir, DIR_MODE)
  await syncDir(dirname(dir))

  const { snapshots, journals, temps } = listGenerations(await readdir(dir))
  const gen = snapshots.length ? snapshots[0] : 0
  const { data, bytes: snapshotBytes } = snapshots.length
    ? await loadSnapshot(dir, gen)
    : { data: new Map(), bytes: 0 }

  const stale = [...temps]
  for (const g of snapshots) if (g < gen) stale.push(snapshotName(g))
  for (const g of journals) {
    if (g < gen) stale.push(journalName(g))
    if (g > gen) {
      // A compaction that crashed before its rename reached disk; it never held acknowledged data.
      const content = await readFile(join(dir, journalName(g)))
      if (content.length) throw new Error(`auth store: ${journalName(g)} has data but ${snapshotName(g)} is missing`)
      stale.push(journalName(g))
    }
  }

  const path = join(dir, journalName(gen))
  const created = !journals.includes(gen)
  const fh = await open(path, 'a+', FILE_MODE)
  let journalBytes
  try {
    await fh.chmod(FILE_MODE)
    const content = created ? Buffer.alloc(0) : await readFile(path)
    const { records, validBytes } = readFrames(content)
    for (const { ops } of records) {
      for (const [key, value] of ops) {
        if (value === null) data.delete(key)
        else data.set(key, JSON.stringify(value))
      }
    }
    if (validBytes < content.length) {
      // Only the last, unacknowledged append can be torn; cut it so new records follow valid ones.
      logger?.warn({ dir, droppedBytes: content.length - validBytes, records: records.length }, 'auth_store.torn_tail_discarded')
      await fh.truncate(validBytes)
      await fh.datasync()
    }
    journalBytes = validBytes
  } catch (err) {
    await fh.close()
    throw err
  }

  for (const name of stale) await rm(join(dir, name), { force: true })
  if (created || stale.length) await syncDir(dir)

  return new JournaledMap({ dir, logger, compactBytes, data, gen, fh, journalBytes, snapshotBytes })
}

/** Closes an open map for dir (if any) so its directory can be removed. */
export async function closeOpenMap (dir) {
  const map = openMaps.get(resolve(dir))
  if (map) await map.close()
}
