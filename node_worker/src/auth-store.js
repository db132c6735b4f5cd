/**
 * Crash-safe Baileys auth state (drop-in for useMultiFileAuthState).
 *
 * useMultiFileAuthState writes one file per key without fsync or atomic
 * rename, so a crash can leave truncated JSON and half-applied key batches;
 * losing Signal sessions or pre-keys that way breaks decryption until the
 * account is re-paired. Here every keys.set() and saveCreds() is one
 * fsync'ed journal record (see journal.js), and reads come from memory.
 */
import { rm } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { BufferJSON, initAuthCreds, proto } from 'baileys'
import { trackCreds } from './creds-record.js'
import { closeOpenMap, openJournaledMap, syncDir } from './journal.js'

// No key type contains '/', so "type/id" cannot collide with another type or with "creds".
const CREDS_KEY = 'creds'
const keyOf = (type, id) => `${type}/${id}`

const encode = (value) => JSON.stringify(value, BufferJSON.replacer)
const decode = (text) => JSON.parse(text, BufferJSON.reviver)

/**
 * @param {string} dir session directory (created 0700 if missing)
 * @param {{ logger?: import('pino').Logger, compactBytes?: number }} [options]
 */
export async function openAuthStore (dir, { logger, compactBytes } = {}) {
  const map = await openJournaledMap(dir, { logger, compactBytes })

  let creds
  try {
    const stored = map.get(CREDS_KEY)
    if (stored !== undefined) {
      creds = decode(stored)
    } else {
      creds = initAuthCreds()
      // Persist the identity now, so keys written before the first creds.update
      // never end up belonging to an identity that a restart would regenerate.
      await map.commit([[CREDS_KEY, encode(creds)]])
    }
  } catch (err) {
    await map.close()
    throw err
  }

  const credsRecord = trackCreds(creds, encode, CREDS_KEY)
  const commitWithCreds = async (ops) => {
    const op = credsRecord.op()
    if (op) ops.push(op)
    await map.commit(ops) // nothing to write resolves at once (or rejects on a closed or failed store)
    credsRecord.committed(op)
  }

  const keys = {
    // Missing ids map to null, as in useMultiFileAuthState; callers test truthiness.
    async get (type, ids) {
      const out = {}
      for (const id of ids) {
        const text = map.get(keyOf(type, id))
        let value = text === undefined ? null : decode(text)
        if (value && type === 'app-state-sync-key') {
          value = proto.Message.AppStateSyncKeyData.fromObject(value)
        }
        out[id] = value
      }
      return out
    },
    // One call is one atomic record, with the creds when they changed (creds-record.js). Falsy values
    // delete, matching useMultiFileAuthState.
    async set (data) {
      const ops = []
      for (const type in data) {
        for (const id in data[type]) {
          const value = data[type][id]
          ops.push([keyOf(type, id), value ? encode(value) : null])
        }
      }
      await commitWithCreds(ops)
    }
  }

  return {
    state: { creds, keys },
    /** Call on every 'creds.update' (Baileys has already merged the update into state.creds). */
    saveCreds: () => commitWithCreds([]),
    /**
     * Whether these creds belong to a paired device. Baileys sends a login
     * (not a registration) exactly when creds.me is set, except that asking for a
     * pairing code sets me to the bare number (with creds.pairingCode) before any
     * link: that device is registered once the code exchange finished (`registered`).
     */
    isRegistered: () => !!creds.registered || (!!creds.me && !creds.pairingCode),
    flush: () => map.flush(),
    close: () => map.close(),
    /** Write-path counters ({ syncs, records, compactions }) for tests and diagnostics. */
    stats: map.stats
  }
}

/** Deletes the whole session (logout). Closes the store first if this process has it open. */
export async function removeAuthStore (dir) {
  dir = resolve(dir)
  await closeOpenMap(dir)
  await rm(dir, { recursive: true, force: true })
  await syncDir(dirname(dir)).catch(() => {})
}
