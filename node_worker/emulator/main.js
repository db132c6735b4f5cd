#!/usr/bin/env node
// Entry point of the WhatsApp network emulator.
//   node node_worker/emulator/main.js            start (settings from the environment)
//   node node_worker/emulator/main.js root-key   print the base64 root public key (creates the key file)
import path from 'node:path'
import { makeLogger } from './log.js'
import { loadOrCreateRootKey } from './certs.js'

const env = process.env

export const readSettings = () => {
  const stateFile = env.WA_EMULATOR_STATE_FILE || null
  const rootKeyFile = env.WA_EMULATOR_ROOT_KEY_FILE ||
    (stateFile ? path.join(path.dirname(path.resolve(stateFile)), 'wa-emulator-root-key.json') : null)
  const int = (name, def) => {
    if (env[name] == null || env[name] === '') return def
    const n = Number(env[name])
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`)
    return n
  }
  return {
    host: env.WA_EMULATOR_HOST || '127.0.0.1',
    port: int('WA_EMULATOR_PORT', 3002),
    stateFile,
    rootKeyFile,
    qrRefs: Math.max(1, int('WA_EMULATOR_QR_REFS', 6)),
    receiptDelayMs: int('WA_EMULATOR_RECEIPT_DELAY_MS', 100),
    gatewayUrl: env.WA_EMULATOR_GATEWAY_URL || null,
    apiKey: env.WA_API_KEY || null,
    logLevel: env.WA_EMULATOR_LOG_LEVEL || 'info'
  }
}

const rootKeyCommand = (settings) => {
  if (!settings.rootKeyFile) {
    process.stderr.write('root-key: set WA_EMULATOR_ROOT_KEY_FILE or WA_EMULATOR_STATE_FILE so the key outlives this command\n')
    process.exit(2)
  }
  const kp = loadOrCreateRootKey(settings.rootKeyFile)
  process.stdout.write(Buffer.from(kp.public).toString('base64') + '\n')
}

const start = async (settings) => {
  const log = makeLogger({ level: settings.logLevel })
  // libsignal prints session internals with console.*: keep stdout JSON-only and key material out of logs
  for (const m of ['log', 'info', 'warn', 'error', 'debug']) {
    console[m] = (...args) => log.debug('libsignal.console', { text: String(args[0]).slice(0, 120) })
  }
  const { Emulator } = await import('./emulator.js')
  const { startServer } = await import('./server.js')
  const rootKey = loadOrCreateRootKey(settings.rootKeyFile)
  const emu = new Emulator({ log, rootKey, settings })
  const srv = await startServer({ emu, host: settings.host, port: settings.port })
  log.always('emulator.listening', {
    host: settings.host,
    port: srv.port,
    ws_url: `ws://${settings.host}:${srv.port}/ws/chat`,
    root_public_key: Buffer.from(rootKey.public).toString('base64'),
    state_file: settings.stateFile
  })
  let stopping = false
  const stop = async (signal) => {
    if (stopping) return
    stopping = true
    log.info('emulator.stopping', { signal })
    const timer = setTimeout(() => process.exit(1), 5000)
    timer.unref()
    await srv.stop()
    log.info('emulator.stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('uncaughtException', (err) => {
    log.error('emulator.uncaught', { error: err.message, stack: err.stack?.split('\n').slice(0, 5).join(' | ') })
  })
  process.on('unhandledRejection', (err) => {
    log.error('emulator.unhandled_rejection', { error: err?.message || String(err) })
  })
}

const main = async () => {
  let settings
  try {
    settings = readSettings()
  } catch (err) {
    process.stderr.write(`configuration error: ${err.message}\n`)
    process.exit(2)
  }
  if (process.argv[2] === 'root-key') return rootKeyCommand(settings)
  if (process.argv[2] && process.argv[2] !== 'start') {
    process.stderr.write(`unknown command ${process.argv[2]} (use: start | root-key)\n`)
    process.exit(2)
  }
  await start(settings)
}

main().catch((err) => {
  process.stderr.write(`emulator failed to start: ${err.stack || err}\n`)
  process.exit(1)
})
