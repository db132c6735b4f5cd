// The worker's own session (src/session.js) paired against the emulator, for tests that drive it in-process.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { tmpDir, trustEmulator, until } from './emulator-helpers.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'

/**
 * A WhatsAppSession on a fresh data dir, paired as `phone` through the emulator's phone and connected, with
 * an in-memory journal; `env` adds settings. `stop()` shuts it down and removes its data dir.
 */
export async function pairedSession (emu, phone, { env = {}, prefix = 'wa-session-' } = {}) {
  trustEmulator(emu)
  const dataDir = tmpDir(prefix)
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent', ...env })
  const journal = new EventJournal({ capacity: 10000 })
  const session = new WhatsAppSession({ settings, logger: makeLogger({ level: 'error', write: () => {} }), journal })
  await session.start()
  const qr = await until(() => session.state === 'qr' && session.qr, 15000, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: phone, qr })).status, 200)
  await until(() => session.state === 'connected', 20000, 'connected')
  return {
    session,
    journal,
    async stop () {
      await session.shutdown().catch(() => {})
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
