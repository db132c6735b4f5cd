// The worker's event journal: what the gateway has not acknowledged yet, on disk.
//
// Every inbound message, message status and session change becomes a numbered event. An event is
// committed (fsync'ed, src/journal.js) before `push` resolves, and the Baileys hooks wait for that
// before WhatsApp is told the message or receipt arrived (patches/*durable-before-receipt.patch). The
// gateway long-polls `GET /events?after=N`, stores what it reads, then `POST /events/ack {upto}`:
// only then are events deleted. So an event survives a kill -9 of the worker at any instant, and the
// gateway sees each one at least once (it deduplicates by `event_id`).
//
// Numbers keep growing across restarts (the highest acknowledged number is stored), and reading
// never consumes, so a second reader (a test) does not steal events from the gateway. `boot_id` is
// per process: a reader of an earlier boot is answered at once so it can start over from 0.
//
// Layout: a JournaledMap in $WA_DATA_DIR/events/ (0700, files 0600) with keys `e:<seq>` (the event)
// and `acked` (the highest acknowledged seq). Values hold message bodies: never log them.
//
// With sessions in PostgreSQL (a cluster) the journal lives in the account's own rows instead, beside its
// session and fenced like it (`attach`): an instance killed or lost with events it had already acknowledged
// to WhatsApp strands nothing, since the account's next owner takes them over.
import { randomUUID } from 'node:crypto'
import { openJournaledMap } from './journal.js'

const RECENT_IDS = 20000 // event ids remembered after their ack, so a repeat is not journaled again

export class EventJournal {
  #map
  #log
  #capacity
  #byId = new Map() // event_id -> seq, for unacknowledged events
  #recent = new Set() // event_ids acknowledged lately (bounded, oldest first)
  #attaching = null // a move into another map in progress: pushes and acks wait for it
  #attached = new WeakSet() // maps given to attach(): their closing or fencing detaches the journal

  constructor ({ map, capacity, logger }) {
    this.#map = map
    this.#log = logger
    this.#capacity = capacity
    this.bootId = randomUUID()
    this.events = [] // unacknowledged, durable, oldest first
    this.acked = Number(map?.get('acked') ?? 0)
    for (const key of map ? map.keys() : []) {
      if (!key.startsWith('e:')) continue
      const event = JSON.parse(map.get(key))
      this.events.push(event)
    }
    this.events.sort((a, b) => a.seq - b.seq)
    for (const e of this.events) this.#byId.set(e.event_id, e.seq)
    this.seq = Math.max(this.acked, this.events.at(-1)?.seq ?? 0) // last number handed out
    this.waiters = new Set()
    // Called (no argument) when the journal changed for a reader: an event became visible, or `attach` renumbered
    // it under a new boot id (the shard's change feed, src/changes.js).
    this.changed = new Set()
  }

  /** Opens (or creates) the journal in `dir`; `dir` null keeps it in memory only (unit tests). */
  static async open ({ dir, capacity, logger }) {
    const map = dir ? await openJournaledMap(dir, { logger, compactBytes: 4 * 1024 * 1024 }) : null
    const journal = new EventJournal({ map, capacity, logger })
    if (journal.events.length) logger?.info({ events: journal.events.length, after: journal.acked }, 'events.recovered')
    return journal
  }

  get pending () { return this.events.length }

  /**
   * Durably records an event and resolves with it (or with the earlier one of the same `event_id`,
   * which is not recorded twice). The event is visible to readers only once it is on disk.
   */
  async push (type, fields, eventId = randomUUID()) {
    return (await this.add(type, fields, eventId)).event
  }

  // push, saying whether this call added the event (`added`) or found it journaled already (the same id
  // again: a redelivery, or the receipt hook and Baileys' upsert recording one message): a caller logs once.
  async add (type, fields, eventId = randomUUID()) {
    while (this.#attaching) await this.#attaching.catch(() => {}) // its failure is its caller's
    if (this.#byId.has(eventId) || this.#recent.has(eventId)) {
      return { event: this.events.find((e) => e.event_id === eventId) ?? null, added: false }
    }
    this.seq += 1
    const event = { seq: this.seq, event_id: eventId, type, at: new Date().toISOString(), ...fields }
    this.#byId.set(eventId, event.seq)
    const ops = [[`e:${event.seq}`, JSON.stringify(event)]]
    // Bounded: past `capacity` unacknowledged events (the gateway has been away very long) the
    // oldest go, loudly. Disk use stays bounded; the gateway's event log has the rest.
    const over = this.events.length + 1 - this.#capacity
    const dropped = over > 0 ? this.events.slice(0, over) : []
    for (const old of dropped) ops.push([`e:${old.seq}`, null])
    if (this.#map) await this.#commit(ops) // in memory only: visible at once, as before
    if (dropped.length) {
      this.events.splice(0, dropped.length)
      for (const old of dropped) this.#byId.delete(old.event_id)
      this.#log?.error({ dropped: dropped.length, capacity: this.#capacity }, 'events.dropped_unacknowledged')
    }
    // Commits resolve in order, so events become visible in seq order.
    this.events.push(event)
    for (const wake of this.waiters) wake()
    this.waiters.clear()
    this.#changed()
    return { event, added: true }
  }

  /** Forgets every event up to `upto` (the gateway stored them). */
  async ack (upto) {
    while (this.#attaching) await this.#attaching.catch(() => {}) // its failure is its caller's
    upto = Math.min(Number(upto) || 0, this.seq)
    if (upto <= this.acked) return { acked: this.acked, pending: this.events.length }
    const done = this.events.filter((e) => e.seq <= upto)
    const ops = done.map((e) => [`e:${e.seq}`, null])
    ops.push(['acked', String(upto)])
    if (this.#map) await this.#commit(ops)
    this.acked = Math.max(this.acked, upto)
    this.events = this.events.filter((e) => e.seq > upto)
    for (const e of done) {
      this.#byId.delete(e.event_id)
      this.#recent.add(e.event_id)
    }
    while (this.#recent.size > RECENT_IDS) this.#recent.delete(this.#recent.values().next().value)
    return { acked: this.acked, pending: this.events.length }
  }

  // A journal attached to an account's rows in PostgreSQL outlives them: once its session store is closed
  // (shutdown, logout, a failed store being reopened) or fenced (another instance owns the account), the
  // journal goes on in memory for the events still to hand over (no socket is open then: nothing is told
  // to WhatsApp on their strength), until the next store attaches it again. Any other failed write throws:
  // the caller stops the worker (fail-stop) rather than acknowledge what is not durable.
  async #commit (ops) {
    const map = this.#map
    try {
      await map.commit(ops)
    } catch (err) {
      if (!this.#attached.has(map) || !['store_closed', 'not_owner'].includes(err?.code)) throw err
      if (this.#map === map) { // writes in flight together fail together: the first one detaches
        this.#map = null
        this.#log?.info({ reason: err.code, pending: this.events.length }, 'events.detached')
      }
    }
  }

  after (seq) {
    return this.events.filter((e) => e.seq > seq)
  }

  // Resolves with the events after `seq`, waiting up to `waitMs` for the first one. A reader of an
  // earlier boot (its `bootId` differs, or its `seq` is beyond ours) is answered at once, so that it
  // sees the new boot id and starts over instead of waiting for a number this boot may never reach.
  async read (seq, waitMs, bootId = null) {
    let found = this.after(seq)
    if (found.length || waitMs <= 0 || seq > this.seq || (bootId && bootId !== this.bootId)) return found
    await new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters.delete(wake); resolve() }, waitMs)
      const wake = () => { clearTimeout(timer); resolve() }
      this.waiters.add(wake)
    })
    found = this.after(seq)
    return found
  }

  /**
   * Moves the journal into `map` (the account's rows in PostgreSQL, fenced with its session: the map's
   * commits throw once another instance owns the account). Events a former owner journaled there and never
   * saw acknowledged are taken over (their event ids kept, so the gateway stores each once), followed by
   * this process's own unacknowledged ones, all renumbered after what was acknowledged here; a new boot id
   * makes the gateway's reader start over. Resolves once the merged journal is committed in `map`.
   */
  attach (map) {
    const moving = (async () => {
      const stranded = []
      for (const key of map.keys()) if (key.startsWith('e:')) stranded.push(JSON.parse(map.get(key)))
      stranded.sort((a, b) => a.seq - b.seq)
      const ours = new Set(this.events.map((e) => e.event_id))
      const merged = [...stranded.filter((e) => !ours.has(e.event_id) && !this.#recent.has(e.event_id)), ...this.events]
      let seq = this.acked
      const renumbered = merged.map((e) => ({ ...e, seq: ++seq }))
      const ops = stranded.map((e) => [`e:${e.seq}`, null]) // later writes of a key win within one commit
      for (const e of renumbered) ops.push([`e:${e.seq}`, JSON.stringify(e)])
      ops.push(['acked', String(this.acked)])
      await map.commit(ops)
      this.#map = map
      this.#attached.add(map)
      this.events = renumbered
      this.seq = seq
      this.#byId = new Map(renumbered.map((e) => [e.event_id, e.seq]))
      this.bootId = randomUUID()
      if (stranded.length) this.#log?.info({ taken_over: stranded.length, pending: renumbered.length }, 'events.taken_over')
      this.wakeAll()
      this.#changed()
    })()
    this.#attaching = moving.finally(() => { this.#attaching = null })
    return this.#attaching
  }

  #changed () {
    for (const listener of this.changed) listener()
  }

  wakeAll () {
    for (const wake of this.waiters) wake()
    this.waiters.clear()
  }

  close () { return this.#map?.close() }
}
