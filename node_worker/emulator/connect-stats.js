// What the server saw of its companions' connections, for GET /stats (the scale bench checks a restart's
// reconnect storm against the worker's WA_CONNECT_RATE with it): connections dialled (WebSocket upgrades)
// and logged in, in total and at their busiest one-second window, and how long a login took from the dial.
// Constant work per connection: the busiest window is a sliding one over the dials of the last second.
const LOGIN_SAMPLES = 10000 // the newest logins' durations kept for the percentiles

class SlidingPeak {
  constructor (now) {
    this.now = now
    this.times = [] // dial times within the last second, oldest first
    this.head = 0
    this.peak = 0
    this.total = 0
  }

  add () {
    const t = this.now()
    this.times.push(t)
    this.total += 1
    while (this.times[this.head] <= t - 1000) this.head += 1
    if (this.head > 1024) { this.times = this.times.slice(this.head); this.head = 0 }
    this.peak = Math.max(this.peak, this.times.length - this.head)
  }

  lastSecond () {
    const t = this.now()
    while (this.head < this.times.length && this.times[this.head] <= t - 1000) this.head += 1
    return this.times.length - this.head
  }
}

const percentile = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null

export class ConnectStats {
  constructor ({ now = Date.now } = {}) {
    this.now = now
    this.reset()
  }

  /** POST /stats/reset: counting starts again (a bench's storm, after its set-up) */
  reset () {
    this.since = this.now()
    this.connects = new SlidingPeak(this.now)
    this.logins = new SlidingPeak(this.now)
    this.loginMs = []
  }

  connected () { this.connects.add() }

  /** a companion logged in `ms` after its WebSocket was accepted */
  loggedIn (ms) {
    this.logins.add()
    this.loginMs.push(ms)
    if (this.loginMs.length > LOGIN_SAMPLES) this.loginMs.splice(0, this.loginMs.length - LOGIN_SAMPLES)
  }

  view ({ open, loggedIn }) {
    const sorted = [...this.loginMs].sort((a, b) => a - b)
    const cpu = process.cpuUsage()
    return {
      since: new Date(this.since).toISOString(),
      connections_open: open, // WebSockets not closed, logged in or not
      connections_logged_in: loggedIn,
      connects_total: this.connects.total,
      peak_connects_per_s: this.connects.peak, // the most dials within any one second since `since`
      connects_last_s: this.connects.lastSecond(),
      logins_total: this.logins.total,
      peak_logins_per_s: this.logins.peak,
      login_ms: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? null },
      process: { rss_bytes: process.memoryUsage.rss(), cpu_ms: Math.round((cpu.user + cpu.system) / 1000) }
    }
  }
}

/** GET /stats, and POST /stats/reset (counting starts again, e.g. before a bench's storm) */
export const statsRoutes = (emu) => [
  ['GET', /^\/stats$/, () => emu.statsView()],
  ['POST', /^\/stats\/reset$/, () => { emu.stats.reset(); return emu.statsView() }]
]
