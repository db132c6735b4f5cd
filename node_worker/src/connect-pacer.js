// How fast a worker shard dials WhatsApp: one budget of connection attempts per second (WA_CONNECT_RATE,
// the instance's, split over its WA_WORKER_SHARDS shards) shared by every attempt of every account of the
// shard: the resumes at start, the attaches, the reconnects after a drop and the fresh links.
//
// A token bucket kept as the time its next token is due (GCRA, "virtual scheduling"): `reserve()` hands
// out the next free slot at least 1/rate after the one before, so a thousand accounts resuming at once, or
// a thousand sockets dropped at once by a server restart, reach WhatsApp spread over N/rate seconds instead
// of in one thundering herd. The bucket starts full (`burst` slots, 1 by default): one account whose link
// drops, or a one-account worker restarted after a crash, dials at once; only a crowd queues.
// In any one-second window a shard dials at most rate + burst times.
//
// A slot is a time, not a promise: the caller keeps its own timer (the session's reconnect timer, which
// release, logout and shutdown already cancel), so nothing waits on the pacer after the account is gone.
export class ConnectPacer {
  /**
   * @param {{ ratePerSec: number, burst?: number, now?: () => number }} opts  ratePerSec <= 0: no pacing
   */
  constructor ({ ratePerSec, burst = 1, now = Date.now }) {
    this.intervalMs = ratePerSec > 0 ? 1000 / ratePerSec : 0
    this.burst = Math.max(1, burst)
    this.now = now
    this.due = -Infinity // when the next token is due (the theoretical arrival time of GCRA)
    this.reserved = 0 // slots handed out, for the status and the tests
  }

  /**
   * Takes the next slot: how many ms from now this attempt may dial (0: now). With `wait: false` the
   * attempt dials now whatever the bucket holds (a user's POST /connect, the reconnect WhatsApp asks for
   * right after a link) and only pushes the attempts that wait further back, so the rate still holds over time.
   */
  reserve ({ wait = true } = {}) {
    this.reserved += 1
    if (!this.intervalMs) return 0
    const now = this.now()
    // the bucket holds `burst` tokens: a slot may be that much earlier than `due`
    const slot = wait ? Math.max(now, this.due - (this.burst - 1) * this.intervalMs) : now
    this.due = Math.max(this.due, slot) + this.intervalMs
    return Math.max(0, Math.ceil(slot - now))
  }

  /** How far ahead the slots are booked, in ms: 0 when an attempt may dial now. */
  backlogMs () {
    if (!this.intervalMs) return 0
    return Math.max(0, Math.ceil(this.due - (this.burst - 1) * this.intervalMs - this.now()))
  }
}

/** Each shard's share of the instance's rate (WA_CONNECT_RATE over WA_WORKER_SHARDS); 0: no pacing. */
export const shardRate = (settings) => settings.connectRate > 0 ? settings.connectRate / Math.max(1, settings.workerShards) : 0
