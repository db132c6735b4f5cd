// Decryption that a crash cannot undo.
//
// Decrypting a Signal message advances the sender's session (or uses up a one-time prekey), and
// Baileys commits that key change to the session store as soon as the decrypt finishes, before the
// message reaches the worker's event journal. A kill -9 in between left a key that can no longer
// decrypt the message WhatsApp delivers again: the message was lost. Here every decryption result is
// committed (fsync'ed) *inside* the key-store transaction, so it is on disk before the key change
// is, and a redelivered copy (same sender, same ciphertext) is answered from this cache without
// touching the session. If the process dies after the result but before the key change, the old key
// state is simply kept; Signal handles the skipped step.
//
// No Baileys patch: the socket config's `makeSignalRepository` wraps Baileys' own repository, and the
// outer transaction on the same (transaction-capable) key store makes Baileys' inner one join it, so
// its commit waits for ours.
//
// A JournaledMap in $WA_DATA_DIR/decrypted/ (0700, files 0600), bounded by age and count; removed with
// the session on logout. Values are message plaintexts: never log them.
import { createHash } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { makeLibSignalRepository } from 'baileys/lib/Signal/libsignal.js'
import { closeOpenMap, openJournaledMap } from './journal.js'

export class DecryptCache {
  #map
  #order // keys oldest first
  #maxAgeMs
  #maxEntries
  stats = { hits: 0, puts: 0 }

  constructor (map, { maxAgeMs, maxEntries }) {
    this.#map = map
    this.#maxAgeMs = maxAgeMs
    this.#maxEntries = maxEntries
    const entries = [...map.keys()].map((k) => [k, JSON.parse(map.get(k)).at])
    entries.sort((a, b) => a[1] - b[1])
    this.#order = entries.map(([k]) => k)
  }

  static async open ({ dir, maxAgeMs = 24 * 3600 * 1000, maxEntries = 20000, logger }) {
    const cache = new DecryptCache(await openJournaledMap(dir, { logger, compactBytes: 4 * 1024 * 1024 }), { maxAgeMs, maxEntries })
    await cache.#map.commit(cache.#expired(Date.now(), 0))
    return cache
  }

  static key (jid, type, ciphertext) {
    return `${jid}|${type}|${createHash('sha256').update(ciphertext).digest('base64url')}`
  }

  #expired (now, adding) {
    const ops = []
    while (this.#order.length) {
      const key = this.#order[0]
      const at = JSON.parse(this.#map.get(key) ?? '{"at":0}').at
      if (this.#order.length + adding <= this.#maxEntries && now - at <= this.#maxAgeMs) break
      this.#order.shift()
      ops.push([key, null])
    }
    return ops
  }

  get (key) {
    const raw = this.#map.get(key)
    if (raw === undefined) return undefined
    this.stats.hits++
    return Buffer.from(JSON.parse(raw).p, 'base64')
  }

  async put (key, plaintext) {
    const now = Date.now()
    const fresh = this.#map.get(key) === undefined
    const ops = this.#expired(now, fresh ? 1 : 0)
    ops.push([key, JSON.stringify({ at: now, p: Buffer.from(plaintext).toString('base64') })])
    await this.#map.commit(ops)
    if (fresh) this.#order.push(key)
    this.stats.puts++
  }

  get size () { return this.#map.size }

  close () { return this.#map.close() }

  static async remove (dir) {
    await closeOpenMap(dir)
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * Baileys' signal repository with 1:1 and group (sender-key, `skmsg`) decryption made crash-safe through `cache`
 * (see above). A group message advances the sender's chain in our copy of their sender key and uses up its
 * message key: a copy delivered again after a crash could no longer be decrypted ("old counter"), so its result
 * is on disk before that key change is, as for 1:1.
 * `getCache` returns the cache of the current session (null: no cache).
 *
 * The lock: rc14 encrypts every send inside one key-store transaction locked on our own id (creds.me.id,
 * relayMessage) but decrypts under a lock on the sender's jid, so a send to a contact and a message from
 * that contact could update the same Signal session in two transactions at once, and the later commit
 * overwrote the other's ratchet step (the contact then could not decrypt our next messages: "No matching
 * sessions", "Over 2000 messages into the future"). Decrypting under the same lock as sending makes them
 * take turns on an account's sessions.
 */
export function makeDurableSignalRepository (getCache) {
  return (auth, logger, pnToLID) => {
    const inner = makeLibSignalRepository(auth, logger, pnToLID)
    return {
      ...inner,
      async decryptMessage (args) {
        const cache = getCache()
        const key = cache ? DecryptCache.key(args.jid, args.type, args.ciphertext) : null
        const done = cache?.get(key)
        if (done) {
          logger.debug({ jid: args.jid }, 'decrypt.replayed_from_cache')
          return done
        }
        return auth.keys.transaction(async () => {
          const plaintext = await inner.decryptMessage(args)
          if (cache) await cache.put(key, plaintext) // on disk before the transaction commits the key change
          return plaintext
        }, auth.creds?.me?.id ?? args.jid) // the outer transaction takes the lock; Baileys' inner one joins it
      },
      async decryptGroupMessage (args) {
        const cache = getCache()
        // one sender's key in one group: the author (with its device) and the group name the chain
        const key = cache ? DecryptCache.key(`${args.group}|${args.authorJid}`, 'skmsg', args.msg) : null
        const done = cache?.get(key)
        if (done) {
          logger.debug({ group: args.group }, 'decrypt.replayed_from_cache')
          return done
        }
        return auth.keys.transaction(async () => {
          const plaintext = await inner.decryptGroupMessage(args)
          if (cache) await cache.put(key, plaintext)
          return plaintext
        }, auth.creds?.me?.id ?? args.group)
      }
    }
  }
}
