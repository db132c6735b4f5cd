// Optional persistence of the emulator's state (users, linked devices with their keys and
// registration data, contacts' Signal keys and sessions, prekeys, messages, offline queues).
import fs from 'node:fs'
import { writeFileAtomic } from './certs.js'

export const STATE_VERSION = 1

export const loadState = (file) => {
  if (!file || !fs.existsSync(file)) return null
  const j = JSON.parse(fs.readFileSync(file, 'utf8'))
  if (j.version !== STATE_VERSION) throw new Error(`unsupported state file version ${j.version}`)
  return j
}

export const saveState = (file, data) => {
  writeFileAtomic(file, JSON.stringify({ version: STATE_VERSION, savedAt: new Date().toISOString(), ...data }))
}

/**
 * Coalesces many changes into one write (and can be flushed synchronously on shutdown). Every write is the
 * whole state: 40 MB and about a second with 1,000 linked devices, against milliseconds in a test. So the
 * next write waits `costFactor` times as long as the last one took (at least `delayMs`): writing takes at
 * most 1/(costFactor + 1) of the emulator's time at any size, and a test's small state is still on disk
 * within `delayMs` of a change. A crash (SIGKILL) loses at most that wait; SIGTERM flushes.
 */
export class StateSaver {
  constructor ({ file, snapshot, log, delayMs = 50, costFactor = 9, now = Date.now }) {
    this.file = file
    this.snapshot = snapshot
    this.log = log
    this.delayMs = delayMs
    this.costFactor = costFactor
    this.now = now
    this.timer = null
    this.nextAt = 0 // no write before this time (the last write's cost times costFactor after it)
    this.lastWriteMs = 0
    this.writes = 0
  }

  schedule () {
    if (!this.file || this.timer) return
    const wait = Math.max(this.delayMs, this.nextAt - this.now())
    this.timer = setTimeout(() => { this.timer = null; this.flush() }, wait)
  }

  flush () {
    if (!this.file) return
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    const started = this.now()
    try {
      saveState(this.file, this.snapshot())
    } catch (err) {
      this.log.error('state.save_failed', { error: err.message })
    }
    const ended = this.now()
    this.writes += 1
    this.lastWriteMs = ended - started
    this.nextAt = ended + this.costFactor * this.lastWriteMs
  }
}
