// The WhatsApp accounts this worker holds: one session and one event journal per account.
//
// Which accounts exist, and which worker holds each, is the gateway's decision; it writes it to
// $WA_DATA_DIR/accounts.json ({"accounts": {"<name>": {"shard": N}}}, temp file + rename) before it
// asks a worker to attach an account. A worker reads the file at start and on attach, and holds the
// accounts of its shard (WA_SHARD, 0 by default). `default` always exists, on shard 0 unless the file
// says otherwise.
//
// Data layout: `default` keeps the original places ($WA_DATA_DIR/session, events, sent-messages,
// sent-ids.txt), so an existing deployment keeps its link; any other account has the same layout
// under $WA_DATA_DIR/accounts/<name>/ (0700), removed whole when the account is deleted.
import fs from 'node:fs'
import path from 'node:path'
import { makePool } from './auth-store-pg.js'
import { ConnectPacer, shardRate } from './connect-pacer.js'
import { EventJournal } from './event-journal.js'
import { WhatsAppSession } from './session.js'
import { DEFAULT_ACCOUNT } from './states.js'

export const ACCOUNT_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/

/** The settings of one account: the worker's, with that account's own data paths. */
export function accountSettings (settings, name) {
  if (name === DEFAULT_ACCOUNT) return settings
  const dir = path.join(settings.dataDir, 'accounts', name)
  return Object.freeze({
    ...settings,
    accountDir: dir,
    sessionDir: path.join(dir, 'session'),
    eventsDir: path.join(dir, 'events'),
    sentIdsFile: path.join(dir, 'sent-ids.txt'),
    sentMessagesDir: path.join(dir, 'sent-messages'),
    decryptedDir: path.join(dir, 'decrypted')
  })
}

/** The registry the gateway wrote: {name: shard}; `default` on shard 0 when absent. */
export function readRegistry (dataDir) {
  let accounts = {}
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(dataDir, 'accounts.json'), 'utf8'))
    if (parsed && typeof parsed.accounts === 'object') accounts = parsed.accounts
  } catch (err) {
    if (err.code !== 'ENOENT') throw new Error(`accounts.json is unreadable: ${err.message}`)
  }
  const shards = new Map()
  for (const [name, entry] of Object.entries(accounts)) {
    if (ACCOUNT_NAME.test(name) && Number.isInteger(entry?.shard)) shards.set(name, entry.shard)
  }
  if (!shards.has(DEFAULT_ACCOUNT)) shards.set(DEFAULT_ACCOUNT, 0)
  return shards
}

/**
 * With sessions in PostgreSQL the gateway also writes each account's lease generation into accounts.json
 * ({"<name>": {"shard": N, "lease_generation": G}}): {name: generation} for the accounts that have one.
 */
export function readLeaseGenerations (dataDir) {
  let accounts = {}
  try {
    accounts = JSON.parse(fs.readFileSync(path.join(dataDir, 'accounts.json'), 'utf8'))?.accounts ?? {}
  } catch {
    return new Map()
  }
  const generations = new Map()
  for (const [name, entry] of Object.entries(accounts)) {
    if (ACCOUNT_NAME.test(name) && Number.isSafeInteger(entry?.lease_generation) && entry.lease_generation >= 0) {
      generations.set(name, entry.lease_generation)
    }
  }
  return generations
}

export class AccountHost {
  constructor ({ settings, logger }) {
    this.settings = settings
    this.log = logger
    this.accounts = new Map() // name -> { name, session, journal }
    this.opening = new Map() // name -> Promise of the entry
    // With WA_DATABASE_URL: sessions live in PostgreSQL (auth-store-pg.js), one pool for every account
    this.pool = settings.databaseUrl ? makePool(settings.databaseUrl, { logger }) : null
    // this shard's share of WA_CONNECT_RATE, shared by every account's resume, attach, reconnect and link
    this.pacer = new ConnectPacer({ ratePerSec: shardRate(settings) })
  }

  get shard () { return this.settings.shard }

  get (name) { return this.accounts.get(name) }

  names () { return [...this.accounts.keys()] }

  /** Whether `name` has data here (an account dir; `default` always does). */
  hasData (name) {
    const { accountDir } = accountSettings(this.settings, name)
    return !accountDir || fs.existsSync(accountDir)
  }

  /** Whether the registry assigns `name` to this worker. */
  assigned (name) {
    return readRegistry(this.settings.dataDir).get(name) === this.shard
  }

  /** Opens the account's journal and session (idempotent). */
  open (name) {
    if (this.accounts.has(name)) return Promise.resolve(this.accounts.get(name))
    if (!this.opening.has(name)) {
      const opening = this.#open(name).finally(() => this.opening.delete(name))
      this.opening.set(name, opening)
    }
    return this.opening.get(name)
  }

  async #open (name) {
    const settings = accountSettings(this.settings, name)
    if (settings.accountDir) fs.mkdirSync(settings.accountDir, { recursive: true, mode: 0o700 })
    const logger = this.log.child({ account: name })
    // With sessions in PostgreSQL the journal moves into the account's rows when its session store opens
    // (WhatsAppSession.openStore, EventJournal.attach); until then nothing WhatsApp is told depends on it.
    const journal = await EventJournal.open({ dir: this.pool ? null : settings.eventsDir, capacity: settings.eventBufferSize, logger })
    const pg = this.pool ? { pool: this.pool, instanceId: this.settings.instanceId, account: name } : null
    const session = new WhatsAppSession({ settings, logger, journal, pg, account: name, pacer: this.pacer })
    const entry = { name, session, journal }
    this.accounts.set(name, entry)
    return entry
  }

  /**
   * At start: opens every account of this shard and logs the linked ones back in. The stores open a few
   * at a time (file or database reads); the connections are paced by the shard's pacer (each session
   * waits for its slot on its own timer), so a restart with a thousand accounts dials WhatsApp at
   * WA_CONNECT_RATE instead of all in one second, and this returns once every account has its slot.
   */
  async resumeAll ({ concurrency = 4 } = {}) {
    const mine = [...readRegistry(this.settings.dataDir)].filter(([, shard]) => shard === this.shard).map(([name]) => name)
    const queue = [...mine]
    // sessions in PostgreSQL: only the accounts the gateway holds a lease for, at that generation
    const generations = this.pool ? readLeaseGenerations(this.settings.dataDir) : new Map()
    const runOne = async () => {
      while (queue.length) {
        const name = queue.shift()
        try {
          const { session } = await this.open(name)
          if (generations.has(name)) await session.adoptLease(generations.get(name))
          await session.resume()
        } catch (err) {
          this.log.error({ err, account: name }, 'account.resume_failed')
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, mine.length) }, runOne))
    if (mine.length > 1) this.log.info({ accounts: mine.length, dials_until_ms: this.pacer.backlogMs() }, 'worker.resume_paced')
    return mine
  }

  /**
   * The gateway created or moved an account here: open it (and log it in if it has a session). With
   * PostgreSQL, `leaseGeneration` is the generation of the lease the gateway holds for it: the session
   * writes and sends only while the lease is still this instance's at that generation.
   */
  async attach (name, { leaseGeneration = null } = {}) {
    const entry = await this.open(name)
    if (this.pool) await entry.session.adoptLease(leaseGeneration)
    await entry.session.resume()
    return entry
  }

  /**
   * The account's lease moved to another instance: close its session here without logging out (its data
   * stays; the account stays open for its journal). Nothing to do for an account that is not open here.
   */
  async release (name) {
    const entry = this.accounts.get(name) ?? await this.opening.get(name)
    if (!entry) return null
    await entry.session.release()
    this.log.info({ account: name }, 'account.released')
    return entry
  }

  /** The account is deleted: log it out at WhatsApp, close it and remove its data. */
  async remove (name) {
    const entry = this.accounts.get(name) ?? await this.open(name)
    const unlinked = await entry.session.logout()
    await entry.session.shutdown()
    await entry.journal.close()
    this.accounts.delete(name)
    const settings = accountSettings(this.settings, name)
    if (settings.accountDir) fs.rmSync(settings.accountDir, { recursive: true, force: true })
    this.log.info({ account: name, unlinked }, 'account.removed')
    return { unlinked }
  }

  async shutdown () {
    await Promise.all([...this.accounts.values()].map(async ({ session, journal }) => {
      await session.shutdown()
      await journal.close()
    }))
    if (this.pool && !this.pool.ending) await this.pool.end().catch((err) => this.log.warn({ err }, 'pg.pool_close_failed'))
  }

  wakeAll () {
    for (const { journal } of this.accounts.values()) journal.wakeAll()
  }
}
