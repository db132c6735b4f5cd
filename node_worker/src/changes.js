// What changed on this shard, for one long-poll of the gateway instead of one per account (issue 28).
//
// The gateway mirrors every account's state and follows its event journal. Asking each account in turn
// (GET /accounts/<a>/status every second, a long-poll GET /events each) costs it a request per account per
// second and a connection per account; at 1,000 accounts that is the machine. Instead `GET /changes` answers
// the accounts whose state, registered flag or journal changed after the gateway's last `seq`, so an idle shard
// costs one waiting request, whatever its size.
//
// Each change gets a number (`seq`, per boot); an account's entry is its latest number. Answers are
// O(accounts changed): `#log` holds (seq, name) in order, searched by bisection and compacted when it is more
// than twice the accounts it names. No timer per account: the sessions' `state` events, the journals' `changed`
// listeners and the host's map of open accounts (open, remove) say when something changed.
import { randomUUID } from 'node:crypto'

const registered = (session) => session.store ? session.store.isRegistered() : null
const feeds = new WeakMap() // host -> its ChangeFeed (one per host, however many handlers are made)

/** The change feed of `host` (made on first use: it starts observing the host's accounts then). */
export function changeFeed (host) {
  let feed = feeds.get(host)
  if (!feed) {
    feed = new ChangeFeed(host)
    feeds.set(host, feed)
  }
  return feed
}

// The host's map of open accounts, observed: accounts.js opens and removes accounts only through it, so
// watching it needs no call-out there.
class ObservedAccounts extends Map {
  constructor (entries, feed) {
    super()
    this.feed = feed
    for (const [name, entry] of entries) this.set(name, entry)
  }

  set (name, entry) {
    super.set(name, entry)
    this.feed?.opened(name, entry) // undefined while Map's constructor runs
    return this
  }

  delete (name) {
    const had = super.delete(name)
    if (had) this.feed.removed(name)
    return had
  }
}

export class ChangeFeed {
  #host
  #log = [] // [seq, name] in seq order; an account may appear more than once (its last one counts)
  #latest = new Map() // name -> seq of its last change
  #unwatch = new Map() // name -> remove its listeners
  #waiters = new Set()

  constructor (host) {
    this.#host = host
    this.bootId = randomUUID()
    this.seq = 1 // the boot itself: a reader's first answer (after=0) is never at 0, which means "all"
    host.accounts = new ObservedAccounts(host.accounts, this)
  }

  opened (name, entry) {
    this.#unwatch.get(name)?.()
    const { session, journal } = entry
    // A session says `state` on every setState, a repeat too (a new QR): only a change of what is answered counts.
    let seen = null
    const onState = () => {
      const now = `${session.state} ${registered(session)}`
      if (now !== seen) this.touch(name)
      seen = now
    }
    const onJournal = () => this.touch(name)
    session.on('state', onState)
    journal.changed.add(onJournal)
    this.#unwatch.set(name, () => {
      session.off('state', onState)
      journal.changed.delete(onJournal)
    })
    this.touch(name)
  }

  removed (name) {
    this.#unwatch.get(name)?.()
    this.#unwatch.delete(name)
    this.touch(name)
  }

  touch (name) {
    this.seq += 1
    this.#latest.set(name, this.seq)
    this.#log.push([this.seq, name])
    if (this.#log.length > 64 && this.#log.length > 2 * this.#latest.size) this.#compact()
    for (const wake of this.#waiters) wake()
    this.#waiters.clear()
  }

  // Only each account's last change is kept; removed accounts stay (a reader behind must learn of them),
  // so the log is bounded by the accounts opened in this boot.
  #compact () {
    this.#log = [...this.#latest].map(([name, seq]) => [seq, name]).sort((a, b) => a[0] - b[0])
  }

  /** Names changed after `after`, each once: every open account when `after` is 0. */
  #since (after) {
    if (after <= 0) return [...this.#host.accounts.keys()]
    let lo = 0
    let hi = this.#log.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.#log[mid][0] <= after) lo = mid + 1
      else hi = mid
    }
    const names = new Set()
    for (let i = lo; i < this.#log.length; i++) names.add(this.#log[i][1])
    return [...names]
  }

  #entry (name) {
    const open = this.#host.accounts.get(name)
    if (!open) return { name, state: null, registered: null, last_seq: null, events_boot_id: null, removed: true }
    const { session, journal } = open
    return {
      name,
      state: session.state,
      registered: registered(session),
      last_seq: journal.seq,
      events_boot_id: journal.bootId
    }
  }

  /**
   * The accounts changed after `after` of boot `bootId` (all open ones when `after` is 0, the boot is another
   * or `after` is ahead of this boot), waiting up to `waitMs` for a change when there is none.
   */
  async read (after, waitMs, bootId = null) {
    if ((bootId && bootId !== this.bootId) || after > this.seq) after = 0
    if (after === this.seq && waitMs > 0) {
      await new Promise((resolve) => {
        const timer = setTimeout(() => { this.#waiters.delete(wake); resolve() }, waitMs)
        const wake = () => { clearTimeout(timer); resolve() }
        this.#waiters.add(wake)
      })
    }
    const seq = this.seq
    return { boot_id: this.bootId, seq, accounts: this.#since(after).map((name) => this.#entry(name)) }
  }

  /** Answers every waiting reader now (the worker stops). */
  wakeAll () {
    for (const wake of this.#waiters) wake()
    this.#waiters.clear()
  }
}
