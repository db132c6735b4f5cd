// The ids of the messages this worker sent, so that only they produce `message.status` events: the
// account's own phone also sends messages (and history syncs full of them), whose receipts must not
// look like ours. Bounded (the most recent `capacity` ids) and kept in a small append-only file in
// the data dir, so that receipts arriving after a worker restart are still reported.
import fs from 'node:fs'
import { writeFailed } from './storage.js'

export class SentIds {
  constructor ({ file, capacity = 10000, logger }) {
    this.file = file
    this.capacity = capacity
    this.log = logger
    this.ids = new Set()
    this.lines = 0
    this.load()
  }

  load () {
    let text
    try {
      text = fs.readFileSync(this.file, 'utf8')
    } catch {
      return
    }
    const lines = text.split('\n').filter((id) => /^[A-Za-z0-9]{1,64}$/.test(id))
    for (const id of lines.slice(-this.capacity)) this.ids.add(id)
    this.lines = lines.length
    if (this.lines > this.ids.size * 2 + 100) this.compact()
  }

  has (id) {
    return typeof id === 'string' && this.ids.has(id)
  }

  add (id) {
    if (this.ids.has(id)) return
    this.ids.add(id)
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value)
    try {
      fs.appendFileSync(this.file, `${id}\n`, { mode: 0o600 })
      this.lines += 1
      if (this.lines > this.capacity * 2) this.compact()
    } catch (err) {
      // Added before the message leaves: an id missing after a restart would hide its receipts, so in the
      // worker the failure stops it (storage.js) before the message is handed to Baileys.
      writeFailed(err, this.file)
      this.log?.warn({ err, file: this.file }, 'session.sent_ids_write_failed')
    }
  }

  compact () {
    const tmp = `${this.file}.tmp`
    try {
      fs.writeFileSync(tmp, [...this.ids].map((id) => `${id}\n`).join(''), { mode: 0o600 })
      fs.renameSync(tmp, this.file)
      this.lines = this.ids.size
    } catch (err) {
      this.log?.warn({ err, file: this.file }, 'session.sent_ids_write_failed')
    }
  }

  clear () {
    this.ids.clear()
    this.lines = 0
    fs.rmSync(this.file, { force: true })
  }
}
