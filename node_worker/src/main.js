// Worker entry point: settings -> logger -> sandbox trust -> session + internal API; SIGTERM/SIGINT
// save credentials and close the WhatsApp socket without logging out.
import { EventJournal } from './events.js'
import { makeLogger } from './logger.js'
import { applySandboxTrust } from './sandbox-trust.js'
import { makeRoutes, startServer } from './server.js'
import { WhatsAppSession } from './session.js'
import { readSettings, SettingsError } from './settings.js'

const EX_CONFIG = 78

async function main () {
  let settings
  try {
    settings = readSettings()
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err
    process.stderr.write(JSON.stringify({ level: 'error', service: 'worker', event: 'worker.bad_setting', error: err.message }) + '\n')
    process.exit(EX_CONFIG)
  }
  const log = makeLogger(settings.logLevel)
  try {
    applySandboxTrust(settings.sandboxRootKey, log)
  } catch (err) {
    log.error({ error: err.message }, 'worker.bad_setting')
    process.exit(EX_CONFIG)
  }
  const journal = new EventJournal({ capacity: settings.eventBufferSize })
  const session = new WhatsAppSession({ settings, logger: log, journal })
  const server = await startServer({ socketPath: settings.socketPath, routes: makeRoutes({ session, journal }), logger: log })
  log.info({ pid: process.pid, server_url: settings.serverUrl, socket: settings.socketPath }, 'worker.started')

  let stopping = false
  const stop = async (signal) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'worker.stopping')
    const deadline = setTimeout(() => {
      log.error('worker.shutdown_timeout')
      process.exit(1)
    }, settings.shutdownTimeoutMs)
    deadline.unref()
    journal.wakeAll()
    server.close()
    server.closeAllConnections?.()
    await session.shutdown()
    log.info('worker.stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => { stop('SIGTERM') })
  process.on('SIGINT', () => { stop('SIGINT') })

  // A linked device logs straight back in after any restart; a new one waits for POST /connect.
  if (await session.hasSession()) {
    log.info('worker.resuming_session')
    await session.start()
  }
}

main().catch((err) => {
  process.stderr.write(JSON.stringify({ level: 'fatal', service: 'worker', event: 'worker.crashed', error: err.stack }) + '\n')
  process.exit(1)
})
