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

/** coalesces many changes into one write (and can be flushed synchronously on shutdown) */
export class StateSaver {
  constructor ({ file, snapshot, log, delayMs = 50 }) {
    this.file = file
    this.snapshot = snapshot
    this.log = log
    this.delayMs = delayMs
    this.timer = null
  }

  schedule () {
    if (!this.file || this.timer) return
    this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.delayMs)
  }

  flush () {
    if (!this.file) return
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    try {
      saveState(this.file, this.snapshot())
    } catch (err) {
      this.log.error('state.save_failed', { error: err.message })
    }
  }
}
