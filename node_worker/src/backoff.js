// Reconnect delays: exponential with +-20% jitter and a cap, reset after a stable connection.
// With that jitter each delay is still longer than the one before until the cap (0.8 * 2 > 1.2).
export class Backoff {
  constructor ({ baseMs, maxMs, random = Math.random, historySize = 20 }) {
    this.baseMs = baseMs
    this.maxMs = maxMs
    this.random = random
    this.historySize = historySize
    this.attempt = 0
    this.history = []
  }

  next () {
    const raw = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt)
    const delay = Math.min(this.maxMs, Math.round(raw * (0.8 + 0.4 * this.random())))
    this.attempt += 1
    this.history.push(delay)
    if (this.history.length > this.historySize) this.history.shift()
    return delay
  }

  reset () {
    this.attempt = 0
  }
}
