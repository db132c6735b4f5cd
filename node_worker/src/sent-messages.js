// The contents of the messages this worker sent, kept so that Baileys' `getMessage(key)` can answer a
// retry receipt (a recipient device that could not decrypt asks for the message again) after the socket
// that sent it is gone: a reconnect, or a restart of the worker (SIGKILL included). Baileys' own
// recent-message cache lives and dies with one socket.
//
// Why here and not in the gateway's outbox (which holds the text too): Baileys asks from inside its
// receipt handler and resends with the exact protobuf it sent (the same messageSecret), so the answer
// must be local, quick and not depend on the gateway being up; and only the worker knows the protobuf.
//
// A JournaledMap (journal.js) in $WA_DATA_DIR/sent-messages/ (0700, files 0600): each entry is committed
// (fsync'ed) before the message is handed to Baileys. Bounded: entries older than `maxAgeMs` or beyond
// the newest `maxEntries` are dropped (in the same commit as the next put, and at open). Removed with the
// session on logout. Values hold message bodies: never log them.
import { rm } from 'node:fs/promises'
import { proto } from 'baileys'
import { closeOpenMap, openJournaledMap } from './journal.js'

export class SentMessages {
  #map
  #order // ids oldest first (by send time)
  #maxAgeMs
  #maxEntries

  constructor (map, { maxAgeMs, maxEntries }) {
    this.#map = map
    this.#maxAgeMs = maxAgeMs
    this.#maxEntries = maxEntries
    const entries = []
    for (const id of map.keys()) entries.push([id, JSON.parse(map.get(id)).at])
    entries.sort((a, b) => a[1] - b[1])
    this.#order = entries.map(([id]) => id)
  }

  static async open ({ dir, maxAgeMs, maxEntries, logger }) {
    return SentMessages.inMap(await openJournaledMap(dir, { logger, compactBytes: 8 * 1024 * 1024 }), { maxAgeMs, maxEntries })
  }

  /** In a given map: with sessions in PostgreSQL, the account's own rows (they move with the session). */
  static async inMap (map, { maxAgeMs, maxEntries }) {
    const store = new SentMessages(map, { maxAgeMs, maxEntries })
    await store.#map.commit(store.#expired(Date.now(), 0))
    return store
  }

  get size () { return this.#map.size }

  // Deletes for the entries past their age or beyond the bound once `adding` more are in.
  #expired (now, adding) {
    const ops = []
    while (this.#order.length) {
      const id = this.#order[0]
      const at = JSON.parse(this.#map.get(id) ?? '{"at":0}').at
      if (this.#order.length + adding <= this.#maxEntries && now - at <= this.#maxAgeMs) break
      this.#order.shift()
      ops.push([id, null])
    }
    return ops
  }

  /** Durably records `message` (a proto.Message) sent to `jid` under WhatsApp id `id`. */
  async put (id, jid, message) {
    const now = Date.now()
    const fresh = this.#map.get(id) === undefined
    const ops = this.#expired(now, fresh ? 1 : 0)
    const value = JSON.stringify({ jid, at: now, m: Buffer.from(proto.Message.encode(message).finish()).toString('base64') })
    ops.push([id, value])
    await this.#map.commit(ops)
    if (fresh) this.#order.push(id)
  }

  /** { jid, at, message } for an id this worker sent (and still keeps), else undefined. */
  get (id) {
    const raw = typeof id === 'string' ? this.#map.get(id) : undefined
    if (raw === undefined) return undefined
    const { jid, at, m } = JSON.parse(raw)
    if (Date.now() - at > this.#maxAgeMs) return undefined
    return { jid, at, message: proto.Message.decode(Buffer.from(m, 'base64')) }
  }

  close () { return this.#map.close() }

  /** Closes the store (if open) and removes its directory: logout forgets what was sent. */
  static async remove (dir) {
    await closeOpenMap(dir)
    await rm(dir, { recursive: true, force: true })
  }
}
