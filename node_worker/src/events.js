// The worker's event journal: numbered events that the gateway reads with a long poll.
//
// Numbers start at 1 on every boot and the boot id tells the reader when to start over. The gateway
// only reads, so several readers (the gateway, a test) never steal events from each other.
import { randomUUID } from 'node:crypto'

export class EventJournal {
  constructor ({ capacity }) {
    this.bootId = randomUUID()
    this.capacity = capacity
    this.events = []
    this.seq = 0
    this.waiters = new Set()
  }

  push (type, fields) {
    this.seq += 1
    const event = { seq: this.seq, type, at: new Date().toISOString(), ...fields }
    this.events.push(event)
    if (this.events.length > this.capacity) this.events.shift()
    for (const wake of this.waiters) wake()
    this.waiters.clear()
    return event
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

  wakeAll () {
    for (const wake of this.waiters) wake()
    this.waiters.clear()
  }
}
