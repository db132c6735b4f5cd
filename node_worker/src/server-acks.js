// "sent" means the server has it.
//
// relayMessage returns once the stanza is handed to the socket; a worker killed right then has sent
// nothing WhatsApp will ever see, while a caller told "sent" never sends it again. So a send waits for
// the server's <ack class=message id> (as WhatsApp Web waits before showing one tick): only then does
// the worker answer, and the gateway record `sent`. A send whose ack does not come (a drop, a kill, a
// timeout) is retried by the gateway with the same WhatsApp id, which the recipient treats as the same
// message. An ack that carries an error is the server refusing the message.
import { WorkerError } from './errors.js'
import { SEND_RETRY } from './states.js'

export class ServerAcks {
  #waiting = new Map() // WhatsApp id -> { resolve, reject, timer }

  /**
   * Registers the wait before the stanza leaves (the ack can come before relayMessage returns).
   * @returns {Promise<void>} resolves on the ack, rejects with a WorkerError on an error ack or timeout
   */
  expect (id, timeoutMs) {
    this.#waiting.get(id)?.reject(new WorkerError(409, SEND_RETRY.SUPERSEDED, 'The same message was sent again; its first attempt is no longer awaited.'))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new WorkerError(504, SEND_RETRY.WHATSAPP_TIMEOUT,
          `WhatsApp did not acknowledge the message within ${timeoutMs} ms; it is retried with the same id.`))
      }, timeoutMs)
      timer.unref?.()
      const settle = (fn) => (value) => { clearTimeout(timer); this.#waiting.delete(id); fn(value) }
      this.#waiting.set(id, { resolve: settle(resolve), reject: settle(reject) })
    })
  }

  /** the server's ack for `id` (error: its error code, e.g. '479'); ignored when nobody waits */
  settle (id, error) {
    const waiter = this.#waiting.get(id)
    if (!waiter) return
    if (!error) return waiter.resolve()
    waiter.reject(new WorkerError(502, SEND_RETRY.WHATSAPP_REJECTED, `WhatsApp refused the message (error ${error}).`, { server_error: String(error) }))
  }

  /** the connection went away: no ack will come on it, the sends are retried on the next one */
  failAll (reason) {
    for (const waiter of [...this.#waiting.values()]) {
      waiter.reject(new WorkerError(409, SEND_RETRY.NOT_CONNECTED, `The WhatsApp connection closed before the server acknowledged the message (${reason}).`))
    }
  }

  forget (id) {
    const waiter = this.#waiting.get(id)
    if (waiter) waiter.resolve() // nobody awaits it any more
  }

  get size () { return this.#waiting.size }
}
