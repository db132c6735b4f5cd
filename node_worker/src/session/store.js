// The session's stores: the auth store (keys and creds: auth-store.js on disk, auth-store-pg.js in
// PostgreSQL) and what lives beside it (the sent messages, the decryption results, with PostgreSQL the
// event journal). Only the lifecycle operations open, close or delete them (session/lifecycle.js).
import fs from 'node:fs'
import { openAuthStore, removeAuthStore } from '../auth-store.js'
import { FencedError, hasPgSession, openPgAuthStore, removePgAuthStore } from '../auth-store-pg.js'
import { DecryptCache } from '../decrypt-cache.js'
import { WorkerError } from '../errors.js'
import { SentMessages } from '../sent-messages.js'
import { isStorageError, storageRefusal, writeFailed } from '../storage.js'
import { SEND_RETRY, SESSION_ERROR, STATE } from '../states.js'

export const DECRYPTED_MAX = 20000

export class Stores {
  constructor (session) {
    this.session = session
  }

  storeExists () {
    try {
      return fs.readdirSync(this.session.settings.sessionDir).length > 0
    } catch {
      return false
    }
  }

  // Whether there is a session to log in with: the local directory, or (PostgreSQL) the account's rows,
  // or a local directory to import into them. Never before the gateway attached the account with a lease.
  async sessionExists () {
    const s = this.session
    if (!s.pg) return this.storeExists()
    if (s.leaseGeneration === null) return false
    if (s.store || this.storeExists()) return true
    try {
      return await hasPgSession(s.pg.pool, s.pg.account)
    } catch (err) {
      throw this.storeUnavailable(err)
    }
  }

  // 503 store_unavailable: PostgreSQL cannot be reached (one log line; the caller may retry).
  storeUnavailable (err) {
    this.session.log.error({ err: { message: err.message, code: err.code } }, 'session.store_unavailable')
    return new WorkerError(503, SEND_RETRY.STORE_UNAVAILABLE, `The session store (PostgreSQL) cannot be reached: ${err.message}`)
  }

  // A PostgreSQL write failed for another reason (connection lost, outcome of a COMMIT unknown): the
  // store is read-only, so the socket ends and the next attempt reloads the store from the database.
  onStoreFailed (err) {
    const s = this.session
    if (s.closing || s.state === STATE.FENCED) return
    const store = s.store
    s.store = null
    store?.close().catch(() => {})
    s.generation += 1
    s.connection.clearTimers()
    s.connection.endSocket()
    s.lastError = `the session store failed: ${err.message}`
    s.lifecycle.scheduleReconnect()
  }

  async openPgStore () {
    const s = this.session
    if (s.leaseGeneration === null) throw s.fencing.notOwner()
    const { pool, instanceId, account } = s.pg
    let store = null
    try {
      store = await openPgAuthStore({
        pool,
        account,
        instanceId,
        generation: s.leaseGeneration,
        logger: s.log,
        // a session directory from before PostgreSQL is imported once (migration from one machine)
        importDir: s.settings.sessionDir,
        onFenced: (err) => { if (store === null || s.store === store) s.fencing.fence(err.message) },
        onFailed: (err) => { if (store !== null && s.store === store) this.onStoreFailed(err) }
      })
    } catch (err) {
      if (err instanceof FencedError) {
        s.fencing.fence(err.message)
        throw s.fencing.notOwner()
      }
      if (err instanceof SyntaxError) throw err // a row that is not BufferJSON: the store is unreadable
      s.lastError = `the session store (PostgreSQL) cannot be reached: ${err.message}`
      throw this.storeUnavailable(err)
    }
    return store
  }

  async openStore () {
    const s = this.session
    if (s.store) return s.store
    try {
      s.store = s.pg ? await this.openPgStore() : await openAuthStore(s.settings.sessionDir, { logger: s.log })
      await this.openBeside(s.store)
    } catch (err) {
      throw await this.openFailure(err)
    }
    return s.store
  }

  // What lives beside the auth store.
  async openBeside (store) {
    const s = this.session
    const sent = { maxAgeMs: s.settings.sentMessagesMaxAgeMs, maxEntries: s.settings.sentMessagesMax }
    if (s.pg) {
      // With PostgreSQL everything that must move with the keys lives beside them, fenced like them: the
      // decryption results (a message redelivered after a crash is answered from there), the sent messages
      // (the next owner answers retry receipts for them) and the event journal (what a dead instance had
      // acknowledged to WhatsApp but not handed to the gateway is taken over, not stranded on its disk).
      s.decrypted = new DecryptCache(store.prefixed('decrypted/'), { maxAgeMs: 24 * 3600 * 1000, maxEntries: DECRYPTED_MAX })
      s.sentMessages = await SentMessages.inMap(store.prefixed('sent/'), sent)
      await s.journal.attach(store.prefixed('events/'))
    } else {
      s.sentMessages ??= await SentMessages.open({ dir: s.settings.sentMessagesDir, ...sent, logger: s.log })
      s.decrypted ??= await DecryptCache.open({ dir: s.settings.decryptedDir, logger: s.log })
    }
  }

  // The error openStore throws when a store would not open.
  async openFailure (err) {
    const s = this.session
    if (err instanceof WorkerError) return err // fenced (not_owner) or PostgreSQL unreachable: not a broken store
    if (err instanceof FencedError) { // the journal's or the sent messages' first write under a lost lease
      s.fencing.fence(err.message)
      return s.fencing.notOwner()
    }
    // A full (or failing) disk is no broken store: the worker stops and opens it again later (storage.js).
    const disk = isStorageError(err) ? err : await storageRefusal(s.settings.dataDir)
    if (disk) writeFailed(disk, s.settings.sessionDir)
    s.lastError = `the session store cannot be read: ${err.message}`
    s.log.error({ err }, 'session.store_unreadable')
    s.lifecycle.setState(STATE.FAILED)
    return new WorkerError(500, SESSION_ERROR.SESSION_STORE_ERROR, s.lastError)
  }

  // Logout or 401: the session's data is deleted (behind the fence with PostgreSQL, like every write).
  async clearSession () {
    const s = this.session
    const store = s.store
    s.store = null
    if (store) await store.close() // waits for the writes in flight; later ones are refused
    if (s.pg && s.leaseGeneration !== null) {
      try {
        await removePgAuthStore(s.pg.pool, s.fencing.lease()) // behind the fence, like every write
      } catch (err) {
        if (!(err instanceof FencedError)) throw err
        s.fencing.fence(err.message)
        throw s.fencing.notOwner()
      }
    }
    await removeAuthStore(s.settings.sessionDir) // with PostgreSQL too: a local session would be imported again
    s.sentMessages = null
    await SentMessages.remove(s.settings.sentMessagesDir)
    s.decrypted = null
    await DecryptCache.remove(s.settings.decryptedDir)
    s.sentIds.clear()
    s.statuses.clear()
    s.me = null
    s.sender.onWhatsAppCache.clear()
    s.log.info('session.data_removed')
  }
}
