// Runs the session's lifecycle operations one at a time, in the order they were asked for.
//
// Connect, disconnect (logout), reconnect, close handling, resume and shutdown each open, write,
// close or delete the session store; run one after the other, none of them can find the store
// closed or deleted under it by another. An operation must never queue another one and wait for
// it: it would wait for itself.
export class SerialQueue {
  #tail = Promise.resolve()
  /** Name of the operation that runs now, or null. */
  running = null

  /** Queues `fn` and resolves (or rejects) with its result once it has run. */
  run (name, fn) {
    const result = this.#tail.then(async () => {
      this.running = name
      try {
        return await fn()
      } finally {
        this.running = null
      }
    })
    this.#tail = result.catch(() => {})
    return result
  }
}
