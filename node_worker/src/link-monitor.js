// Whether the WhatsApp link of an open socket demonstrably works, not just whether Baileys still
// calls it open. Baileys notices a dead link only when its own keep-alive finds no frame for
// keepAliveIntervalMs + 5 s (35 s by default), and says nothing when its event buffer holds events.
//
//   every frame from the server ──▶ frame()            (any frame counts: a message, an ack, a pong)
//   quiet for probeAfterMs       ──▶ probe()           (one w:p ping; its answer is a frame)
//   probe unanswered timeoutMs   ──▶ onDead(reason)    (once; the session ends the socket and reconnects)
//
// Baileys' event buffer (ev.buffer during connect, offline delivery, the initial sync) is sampled on
// every tick: buffering seen on every tick for longer than timeoutMs counts as stuck, which makes the
// session not ready but does not end the link (Baileys flushes by itself after 30 s at most).
//
// The clock is injected and nothing runs by itself until start(): tests drive tick() directly.

export class LinkMonitor {
  /**
   * @param {object} o
   * @param {number} o.probeAfterMs  silence after which a probe is sent
   * @param {number} o.timeoutMs     how long a probe may go unanswered (no frame at all) before the link is dead
   * @param {() => Promise<unknown>} o.probe  sends one ping; its answer reaches frame() like any frame
   * @param {(info: {reason: string, message: string, last_frame_age_ms: number}) => void} o.onDead
   * @param {() => boolean} [o.isBuffering]  Baileys' ev.isBuffering
   * @param {() => number} [o.now]
   */
  constructor ({ probeAfterMs, timeoutMs, probe, onDead, isBuffering = () => false, now = Date.now }) {
    this.probeAfterMs = probeAfterMs
    this.timeoutMs = timeoutMs
    this.probeFn = probe
    this.onDead = onDead
    this.isBuffering = isBuffering
    this.now = now
    this.lastFrameAt = now()
    this.probeSentAt = null
    this.probes = 0
    this.bufferingSince = null
    this.dead = null // { reason, message, last_frame_age_ms } once the link was declared dead
    this.timer = null
  }

  /** How often tick() must run for the bounds to hold within a quarter of the shorter one. */
  get tickMs () {
    return Math.max(50, Math.min(1000, Math.floor(Math.min(this.probeAfterMs, this.timeoutMs) / 4)))
  }

  start () {
    this.stop()
    this.timer = setInterval(() => this.tick(), this.tickMs)
    this.timer.unref?.()
    return this
  }

  stop () {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** A frame arrived from the server: the link works. */
  frame () {
    this.lastFrameAt = this.now()
    this.probeSentAt = null
  }

  tick () {
    if (this.dead) return
    const t = this.now()
    let buffering = false
    try { buffering = !!this.isBuffering() } catch { /* unknown: taken as not buffering */ }
    if (buffering) this.bufferingSince ??= t
    else this.bufferingSince = null
    const quietMs = t - this.lastFrameAt
    if (this.probeSentAt !== null) {
      if (t - this.probeSentAt >= this.timeoutMs) {
        this.stop()
        this.dead = {
          reason: 'probe_unanswered',
          message: `no frame from WhatsApp for ${(quietMs / 1000).toFixed(1)} s, a ping unanswered for ${((t - this.probeSentAt) / 1000).toFixed(1)} s`,
          last_frame_age_ms: quietMs
        }
        this.onDead(this.dead)
      }
      return
    }
    if (quietMs >= this.probeAfterMs) {
      this.probeSentAt = t
      this.probes += 1
      // A failed send is no answer either: the timeout decides.
      Promise.resolve().then(() => this.probeFn()).catch(() => {})
    }
  }

  /** The `link` object of GET /status. */
  snapshot () {
    const t = this.now()
    const bufferingMs = this.bufferingSince === null ? 0 : t - this.bufferingSince
    const link = {
      alive: this.dead === null,
      last_frame_age_ms: t - this.lastFrameAt,
      probe_pending_ms: this.probeSentAt === null ? null : t - this.probeSentAt,
      probes: this.probes,
      buffering_ms: bufferingMs,
      events_stuck: bufferingMs > this.timeoutMs
    }
    if (this.dead) {
      link.reason = this.dead.reason
      link.message = this.dead.message
    }
    return link
  }
}
