// Worker entry point: settings -> logger -> sandbox trust -> session + internal API; SIGTERM/SIGINT
// save credentials and close the WhatsApp socket without logging out, and so does the death of the
// supervisord that started it (../lib/orphan.js).
import { watchParent } from '../lib/orphan.js' // first: it notes the parent before the heavy imports load
import { mkdir } from 'node:fs/promises'
import baileysDefaultLogger from 'baileys/lib/Utils/logger.js'
import { exitOnConfigError } from '../lib/config-error.js'
import { AccountHost } from './accounts.js'
import { resolveFormat } from '../lib/log-record.js'
import { makeLogger, routeConsole, routeWarnings } from '../lib/logger.js'
import { assertDurableReceiptHooks } from './baileys-patches.js'
import { applySandboxTrust } from './sandbox-trust.js'
import { makeHandler, startServer } from './server.js'
import { readSettings, redactDatabaseUrl, SettingsError } from './settings.js'
import { onWriteFailure, probeWritable, watchStorage } from './storage.js'

// Until the settings are read, a crash is still one contract record.
let log = makeLogger({ format: resolveFormat(process.env.WA_LOG_FORMAT) })

// One critical record (the error and a stack of our code, scrubbed like every record), then exit.
const crash = (err) => {
  log.fatal({ err }, 'worker.crashed')
  process.exit(1)
}

// How the worker stops; until it can stop gracefully (the server is up), an orphan just exits.
let shutdown = null

async function main () {
  watchParent(({ parentAtStart, parentNow }) => {
    log.warn({ parent_at_start: parentAtStart, parent_now: parentNow }, 'worker.orphaned')
    if (shutdown) shutdown('orphaned')
    else process.exit(1)
  })
  let settings
  try {
    settings = readSettings()
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err
    exitOnConfigError('worker', err.message)
  }
  log = makeLogger({ level: settings.logLevel, format: resolveFormat(settings.logFormat) })
  // libsignal prints session objects (private keys included) with console.*; nothing may bypass log.
  routeConsole(log)
  routeWarnings(log)
  // Baileys' own pino logger, which a few of its modules (communities) use instead of ours: it would
  // print non-contract lines on stdout.
  baileysDefaultLogger.level = 'silent'
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
  try {
    applySandboxTrust(settings.sandboxRootKey, log)
  } catch (err) {
    exitOnConfigError('worker', err.message)
  }
  try {
    assertDurableReceiptHooks()
  } catch (err) {
    exitOnConfigError('worker', err.message)
  }
  await guardStorage(settings)
  // The accounts of this shard, each with its session and its journal of events the gateway has
  // not stored yet (from before a crash included).
  const host = new AccountHost({ settings, logger: log })
  const server = await startServer({ socketPath: settings.socketPath, handler: makeHandler({ host }), logger: log })
  log.info({ pid: process.pid, server_url: settings.serverUrl, socket: settings.socketPath, shard: settings.shard,
    // sessions in PostgreSQL (the URL without its password) or null: local session directories
    session_store: redactDatabaseUrl(settings.databaseUrl), instance_id: settings.instanceId,
    // WA_PROXY_URL without its credentials (accounts may have their own), or null: direct
    proxy: settings.proxy?.redacted ?? null }, 'worker.started')

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
    host.wakeAll()
    server.close()
    server.closeAllConnections?.()
    await host.shutdown()
    log.info('worker.stopped')
    process.exit(0)
  }
  shutdown = stop
  process.on('SIGTERM', () => { stop('SIGTERM') })
  process.on('SIGINT', () => { stop('SIGINT') })

  // A linked device logs straight back in after any restart; a new one waits for POST /connect.
  await host.resumeAll()
}

// A write the data dir refuses stops the worker (src/storage.js): from every store, at start (before any
// store opens or WhatsApp is dialled) and every WA_STORAGE_PROBE_MS while it runs. Exit 1, not 78: the disk
// is no setting, so supervisord and the watchdog keep starting the worker until it has space again.
async function guardStorage (settings) {
  const stop = (event) => (err, path) => {
    log.fatal({ err, path }, event)
    process.exit(1)
  }
  onWriteFailure(stop('worker.storage_write_failed'))
  const unwritable = stop('worker.storage_unwritable')
  const name = `.storage-probe-${settings.shard}`
  try {
    await mkdir(settings.dataDir, { recursive: true, mode: 0o700 })
    await probeWritable(settings.dataDir, { name })
  } catch (err) {
    unwritable(err, settings.dataDir)
  }
  watchStorage({ dir: settings.dataDir, everyMs: settings.storageProbeMs, name, onFailure: (err) => unwritable(err, settings.dataDir) })
}

main().catch(crash)
