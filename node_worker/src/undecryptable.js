// A contact's message that could not be decrypted is never silent.
//
// Baileys answers a message it cannot decrypt with a retry receipt (the contact encrypts it again, on a
// rebuilt session) and upserts a CIPHERTEXT stub with the same id; each failed resend does the same, up
// to its retry limit, after which nothing more comes. So a message is undecryptable only once no readable
// copy followed its last stub for `afterMs`: then one durable `message.undecryptable` event says so
// (sender, id, time, the decryption error), and a readable copy that still arrives later is an ordinary
// message. Stubs seen meanwhile are counted; a worker restart forgets the ones still waiting (the contact
// resends to the new worker if it asked, and a new failure starts a new wait). The wait is bounded: past
// `maxWaiting` messages (a flood of undecryptable ones) the oldest is reported at once.
export class UndecryptableMessages {
  #pending = new Map() // "<chat>|<id>" -> { msg, stubs, timer }
  #afterMs
  #report

  /**
   * @param {{ afterMs: number, report: (msg: object, info: { stubs: number, error: string|null }) => Promise<unknown>, maxWaiting?: number }} o
   */
  #maxWaiting

  constructor ({ afterMs, report, maxWaiting = 10000 }) {
    this.#afterMs = afterMs
    this.#report = report
    this.#maxWaiting = maxWaiting
    this.stats = { stubs: 0, reported: 0, healed: 0 }
  }

  static key (chat, id) { return `${chat}|${id}` }

  /** a CIPHERTEXT stub for a contact's message: wait for a readable copy, from now */
  failed (msg) {
    const key = UndecryptableMessages.key(msg.key.remoteJid, msg.key.id)
    const entry = this.#pending.get(key) ?? { msg, stubs: 0, timer: null }
    clearTimeout(entry.timer)
    entry.msg = msg
    entry.stubs++
    this.stats.stubs++
    entry.timer = setTimeout(() => this.#expire(key), this.#afterMs)
    entry.timer.unref?.()
    this.#pending.delete(key) // re-inserted: the map stays ordered by latest failure
    this.#pending.set(key, entry)
    while (this.#pending.size > this.#maxWaiting) {
      const oldest = this.#pending.keys().next().value
      clearTimeout(this.#pending.get(oldest).timer)
      this.#expire(oldest)
    }
  }

  /** a readable copy of the message arrived */
  decrypted (chat, id) {
    const key = UndecryptableMessages.key(chat, id)
    const entry = this.#pending.get(key)
    if (!entry) return
    clearTimeout(entry.timer)
    this.#pending.delete(key)
    this.stats.healed++
  }

  #expire (key) {
    const entry = this.#pending.get(key)
    if (!entry) return
    this.#pending.delete(key)
    this.stats.reported++
    const error = entry.msg.messageStubParameters?.[0] ?? null
    this.#report(entry.msg, { stubs: entry.stubs, error: typeof error === 'string' ? error : null })
  }

  get waiting () { return this.#pending.size }

  get maxWaiting () { return this.#maxWaiting }

  stop () {
    for (const entry of this.#pending.values()) clearTimeout(entry.timer)
    this.#pending.clear()
  }
}
