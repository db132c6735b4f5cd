/**
 * Baileys auth state in PostgreSQL, fenced by the account's lease (issue 14): the drop-in for
 * auth-store.js when WA_DATABASE_URL is set, so that an account can move to another machine without a
 * new QR.
 *
 * Tables (the gateway's migration 007_cluster.sql creates them):
 *   leases(account PK, owner, generation, expires_at, updated_at)   written by the gateways only
 *   wa_auth(account, key, value, generation, updated_at)            key 'creds' or '<type>/<id>', as in
 *                                                                   auth-store.js; value BufferJSON text
 *
 * The fence: every write is ONE transaction that first runs
 *   SELECT owner, generation FROM leases WHERE account = $1 FOR SHARE
 * and goes on only while this instance owns the lease at the generation the session was attached with;
 * otherwise it rolls back and the write fails with FencedError. The row lock makes a takeover (an UPDATE
 * of that lease row) wait for a write in flight, and a write that starts after the takeover sees the new
 * owner: once a takeover has committed, no write of an older generation can land. A paused or
 * partitioned former owner is refused by the database, not by timing. Every row records the
 * generation that wrote it. Once fenced, the store refuses every later write without asking the
 * database; a new attach (a newer generation) opens a new store.
 *
 * Reads come from memory (all of the account's rows are loaded at open). A keys.set() or saveCreds()
 * resolves only once its transaction has committed; writes queued while one transaction runs go out
 * together in the next (group commit), in call order. A transaction is all or nothing, so a crash at any
 * instant leaves each batch wholly in or wholly out, as the local journal does. Any other failure
 * (connection lost, even during COMMIT, when the outcome is unknown) is fail-stop: the store refuses
 * further writes and `onFailed` is told, so the session reopens the store (reloading the truth) before
 * it goes on.
 */
import fs from 'node:fs'
import pg from 'pg'
import { BufferJSON, initAuthCreds, proto } from 'baileys'
import { trackCreds } from './creds-record.js'
import { openJournaledMap } from './journal.js'

const CREDS_KEY = 'creds'
const keyOf = (type, id) => `${type}/${id}`
const encode = (value) => JSON.stringify(value, BufferJSON.replacer)
const decode = (text) => JSON.parse(text, BufferJSON.reviver)
const nowSeconds = () => Date.now() / 1000

/** A write or a check refused because this instance does not hold the account's lease at its generation. */
export class FencedError extends Error {
  constructor (message, { owner = null, generation = null } = {}) {
    super(message)
    this.name = 'FencedError'
    this.code = 'not_owner'
    this.owner = owner
    this.generation = generation
  }
}

/**
 * The worker's connection pool (one per process). The URL is never logged (it may carry a password).
 *
 * idle_in_transaction_session_timeout: a worker frozen (SIGSTOP, a VM pause) inside a write transaction
 * holds the share lock on the lease row, and a takeover would wait for it for ever; the server ends such
 * a session after `idleInTransactionMs`, rolling the write back, so a takeover waits at most that long.
 * The frozen worker, once resumed, finds its connection gone (fail-stop, then fenced at the next check).
 */
export function makePool (url, { logger, max = 8, idleInTransactionMs = 5000, statementTimeoutMs = 30000 } = {}) {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    idleTimeoutMillis: 30000,
    connectionTimeoutMillis: 10000,
    idle_in_transaction_session_timeout: idleInTransactionMs,
    statement_timeout: statementTimeoutMs,
    application_name: 'wa-gateway-worker'
  })
  // An idle connection that breaks (server restart) emits here; without a listener it would crash the worker.
  pool.on('error', (err) => logger?.warn({ err: { message: err.message, code: err.code } }, 'pg.idle_connection_error'))
  return pool
}

/**
 * Throws FencedError unless `instanceId` holds the lease of `account` at `generation`. With `forShare`
 * (inside a transaction) the lease row stays share-locked until that transaction ends.
 */
export async function checkLease (db, { account, instanceId, generation }, { forShare = false } = {}) {
  const { rows } = await db.query(
    `SELECT owner, generation FROM leases WHERE account = $1${forShare ? ' FOR SHARE' : ''}`, [account])
  const row = rows[0]
  if (!row) throw new FencedError(`no lease for account ${account}`)
  const held = row.generation === null ? null : Number(row.generation)
  if (row.owner !== instanceId || held !== generation) {
    throw new FencedError(`the lease of account ${account} is held by ${row.owner ?? 'nobody'} at generation ${held}, ` +
      `not by this instance (${instanceId}) at generation ${generation}`, { owner: row.owner, generation: held })
  }
}

/** Runs `work(client)` in one transaction behind the fence; rolls back (and rethrows) on any error. */
export async function fencedTransaction (pool, lease, work) {
  const client = await pool.connect()
  let broken
  // The server may end the connection between two statements (idle-in-transaction timeout after a
  // freeze): without a listener that 'error' would be thrown at the event loop; the next query fails.
  const onError = (err) => { broken ??= err }
  client.on('error', onError)
  try {
    await client.query('BEGIN')
    try {
      await checkLease(client, lease, { forShare: true })
      const result = await work(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch((e) => { broken = e })
      throw err
    }
  } catch (err) {
    if (!(err instanceof FencedError) && !(err instanceof pg.DatabaseError)) broken ??= err
    throw err
  } finally {
    client.off('error', onError)
    client.release(broken) // a connection in an unknown state is discarded, not reused
  }
}

async function writeOps (client, account, generation, ops) {
  const upKeys = []
  const upValues = []
  const deleted = []
  for (const [key, value] of ops) {
    if (value == null) deleted.push(key)
    else { upKeys.push(key); upValues.push(value) }
  }
  if (upKeys.length) {
    await client.query(
      `INSERT INTO wa_auth (account, key, value, generation, updated_at)
       SELECT $1, k, v, $2, $3 FROM unnest($4::text[], $5::text[]) AS t(k, v)
       ON CONFLICT (account, key) DO UPDATE
       SET value = EXCLUDED.value, generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at`,
      [account, generation, nowSeconds(), upKeys, upValues])
  }
  if (deleted.length) {
    await client.query('DELETE FROM wa_auth WHERE account = $1 AND key = ANY($2::text[])', [account, deleted])
  }
}

/** Whether the account has a session (creds) in the store. */
export async function hasPgSession (pool, account) {
  const { rows } = await pool.query('SELECT 1 FROM wa_auth WHERE account = $1 AND key = $2', [account, CREDS_KEY])
  return rows.length > 0
}

/** Whether any of the account's rows was written by a generation newer than `generation` (another owner). */
export async function writtenAfter (pool, account, generation) {
  const { rows } = await pool.query('SELECT 1 FROM wa_auth WHERE account = $1 AND generation > $2 LIMIT 1', [account, generation])
  return rows.length > 0
}

/** Deletes the account's whole session (logout), behind the fence. */
export async function removePgAuthStore (pool, lease) {
  await fencedTransaction(pool, lease, (client) => client.query('DELETE FROM wa_auth WHERE account = $1', [lease.account]))
}

// A local session directory (auth-store.js) holds a session: its entries, or null.
async function readLocalSession (dir, logger) {
  let names
  try {
    names = fs.readdirSync(dir)
  } catch {
    return null
  }
  if (!names.length) return null
  const map = await openJournaledMap(dir, { logger })
  try {
    const entries = [...map.keys()].map((key) => [key, map.get(key)])
    return entries.some(([key]) => key === CREDS_KEY) ? entries : null
  } finally {
    await map.close()
  }
}

// The store's writes, in call order: those queued while one transaction runs go out together in the next
// (group commit), each transaction behind the fence. The first refusal by the fence (`fenced`) or other
// failure (`failed`) latches: every later write is refused without a query.
class GroupCommits {
  constructor ({ pool, lease, data, logger, onFenced, onFailed }) {
    Object.assign(this, { pool, lease, data, logger, onFenced, onFailed })
    this.stats = { transactions: 0, records: 0 }
    this.pending = []
    this.running = null
    this.fenced = null
    this.failed = null
    this.closed = false
  }

  commit (ops) {
    if (this.closed) return Promise.reject(Object.assign(new Error('auth store: closed'), { code: 'store_closed' }))
    if (this.fenced) return Promise.reject(this.fenced)
    if (this.failed) return Promise.reject(this.failed)
    if (ops.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.pending.push({ ops, resolve, reject })
      this.kick()
    })
  }

  kick () {
    if (this.running) return
    this.running = this.drain().finally(() => {
      this.running = null
      if (this.pending.length) this.kick()
    })
  }

  async drain () {
    const { data, lease } = this
    while (this.pending.length) {
      const batch = this.pending
      this.pending = []
      const merged = new Map() // later writes of a key win, as they would one after the other
      for (const { ops } of batch) for (const [key, value] of ops) merged.set(key, value)
      try {
        const fence = { ...lease } // one generation for the check and the rows, even if setGeneration() runs meanwhile
        await fencedTransaction(this.pool, fence, (client) => writeOps(client, lease.account, fence.generation, merged))
      } catch (err) {
        const rejected = [...batch, ...this.pending]
        this.pending = []
        this.refuse(err, rejected)
        return
      }
      this.stats.transactions++
      this.stats.records += batch.length
      for (const [key, value] of merged) {
        if (value == null) data.delete(key)
        else data.set(key, value)
      }
      for (const { resolve } of batch) resolve()
    }
  }

  // A transaction failed: its writes and all queued ones are refused, and so is every later one.
  refuse (err, rejected) {
    const { logger, lease } = this
    if (err instanceof FencedError) {
      this.fenced = err
      logger?.warn({ reason: err.message, generation: lease.generation, owner: err.owner, owner_generation: err.generation }, 'auth_store.fenced')
      for (const { reject } of rejected) reject(err)
      this.onFenced?.(err)
    } else {
      this.failed = new Error(`auth store: write failed, store is read-only until reopened: ${err.message}`, { cause: err })
      logger?.error({ err: { message: err.message, code: err.code } }, 'auth_store.write_failed')
      for (const { reject } of rejected) reject(this.failed)
      this.onFailed?.(this.failed)
    }
  }

  async flush () {
    while (this.running) await this.running
    if (this.failed) throw this.failed
    if (this.fenced) throw this.fenced
  }

  async close () {
    if (this.closed) return
    this.closed = true
    while (this.running) await this.running.catch(() => {})
  }
}

// The account's creds: its row, or else (migration from one machine) a local session directory that
// becomes the account's rows in one fenced transaction, or else a new identity, persisted now (as
// auth-store.js does).
async function loadCreds (data, commits, importDir, logger) {
  if (data.has(CREDS_KEY)) return decode(data.get(CREDS_KEY))
  const local = importDir ? await readLocalSession(importDir, logger) : null
  if (local) {
    await commits.commit(local)
    const creds = decode(data.get(CREDS_KEY))
    logger?.info({ keys: local.length }, 'auth_store.imported')
    return creds
  }
  const creds = initAuthCreds()
  await commits.commit([[CREDS_KEY, encode(creds)]])
  return creds
}

// Baileys' key store over the rows in memory; every set() one commit, with the creds when they changed.
function pgKeys (data, commitWithCreds) {
  return {
    async get (type, ids) {
      const out = {}
      for (const id of ids) {
        const text = data.get(keyOf(type, id))
        let value = text === undefined ? null : decode(text)
        if (value && type === 'app-state-sync-key') value = proto.Message.AppStateSyncKeyData.fromObject(value)
        out[id] = value
      }
      return out
    },
    // One call is one atomic batch, with the creds when they changed (creds-record.js). Falsy values
    // delete, as in auth-store.js.
    async set (values) {
      const ops = []
      for (const type in values) {
        for (const id in values[type]) {
          const value = values[type][id]
          ops.push([keyOf(type, id), value ? encode(value) : null])
        }
      }
      await commitWithCreds(ops)
    }
  }
}

/**
 * A map of this account's own rows under `prefix` (get/keys/commit/size/close), for data that must move
 * with the session: the decryption results of decrypt-cache.js ('decrypted/...'), written through the
 * same fenced, durable commits. Baileys never reads these (no key type has this prefix).
 */
function prefixedMap (data, commits, prefix) {
  return {
    get: (key) => data.get(prefix + key),
    keys: () => [...data.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)),
    commit: (ops) => commits.commit(ops.map(([key, value]) => [prefix + key, value])),
    get size () { let n = 0; for (const k of data.keys()) if (k.startsWith(prefix)) n++; return n },
    close: async () => {} // the store owns the rows
  }
}

/**
 * @param {object} o
 * @param {import('pg').Pool} o.pool
 * @param {string} o.account
 * @param {string} o.instanceId this instance (WA_INSTANCE_ID)
 * @param {number} o.generation the lease generation the account was attached with
 * @param {(err: FencedError) => void} [o.onFenced] called once, when a write is refused by the fence
 * @param {(err: Error) => void} [o.onFailed] called once, when a write failed otherwise (store now read-only)
 * @param {string} [o.importDir] a local session directory to import when the account has no creds here yet
 */
export async function openPgAuthStore ({ pool, account, instanceId, generation, logger, onFenced, onFailed, importDir }) {
  if (!Number.isSafeInteger(generation) || generation < 0) throw new TypeError('generation must be a whole number')
  const lease = { account, instanceId, generation }
  const data = new Map()
  const { rows } = await pool.query('SELECT key, value FROM wa_auth WHERE account = $1', [account])
  for (const { key, value } of rows) data.set(key, value)
  const commits = new GroupCommits({ pool, lease, data, logger, onFenced, onFailed })
  const creds = await loadCreds(data, commits, importDir, logger)

  const credsRecord = trackCreds(creds, encode, CREDS_KEY)
  const commitWithCreds = async (ops) => {
    const op = credsRecord.op()
    if (op) ops.push(op)
    await commits.commit(ops)
    credsRecord.committed(op)
  }

  return {
    state: { creds, keys: pgKeys(data, commitWithCreds) },
    // Always a fenced write (a former owner learns here that it lost the account), even with nothing new.
    saveCreds: async () => {
      const op = [CREDS_KEY, encode(creds)]
      await commits.commit([op])
      credsRecord.committed(op)
    },
    isRegistered: () => !!creds.registered || (!!creds.me && !creds.pairingCode),
    flush: () => commits.flush(),
    close: () => commits.close(),
    stats: commits.stats,
    get generation () { return lease.generation },
    get fenced () { return commits.fenced },
    /** The session learned otherwise that it lost the account (440): refuse every later write from here on. */
    markFenced (reason) {
      commits.fenced ??= new FencedError(`the session was fenced: ${reason}`)
    },
    /** The same instance was attached again with a newer generation (its memory is still the truth). */
    setGeneration (next) {
      if (!Number.isSafeInteger(next) || next < lease.generation) throw new TypeError('the generation only grows')
      lease.generation = next
    },
    prefixed: (prefix) => prefixedMap(data, commits, prefix),
    /** The read-only check before a connect or a send: throws FencedError (and latches it) unless owner. */
    async checkLease () {
      if (commits.fenced) throw commits.fenced
      try {
        await checkLease(pool, lease)
      } catch (err) {
        if (err instanceof FencedError) commits.fenced = err
        throw err
      }
    }
  }
}
