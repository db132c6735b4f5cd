#!/usr/bin/env node
// Entry point of the WhatsApp network emulator.
//   node node_worker/emulator/main.js            start (settings from the environment)
//   node node_worker/emulator/main.js root-key   print the base64 root public key (creates the key file)
//   node node_worker/emulator/main.js media-ca   print the media host's test CA file (creates it)
import { watchParent } from '../lib/orphan.js' // first: notes the parent at start (exit with supervisord)
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { makeLogger, routeConsole } from './log.js'
import { exitOnConfigError } from '../lib/config-error.js'
import { makeSink, resolveFormat, THRESHOLDS, verbatim } from '../lib/log-record.js'
import { CERT_MODES, loadOrCreateRootKey } from './certs.js'

const env = process.env

const certMode = () => {
  const mode = env.WA_EMULATOR_CERT_MODE || 'valid'
  if (!Object.hasOwn(CERT_MODES, mode)) throw new Error(`WA_EMULATOR_CERT_MODE must be one of ${Object.keys(CERT_MODES).join(', ')}`)
  return mode
}

// WhatsApp makes new groups LID-addressed; PN-addressed ones (older groups) are the default here
const groupAddressing = () => {
  const mode = env.WA_EMULATOR_GROUP_ADDRESSING || 'pn'
  if (!['pn', 'lid'].includes(mode)) throw new Error('WA_EMULATOR_GROUP_ADDRESSING must be pn or lid')
  return mode
}

// WA_LOG_LEVEL applies to every program; WA_EMULATOR_LOG_LEVEL (also `trace`) overrides it here.
const logLevel = () => {
  const level = (env.WA_EMULATOR_LOG_LEVEL || env.WA_LOG_LEVEL || 'info').toLowerCase()
  if (!Object.hasOwn(THRESHOLDS, level)) throw new Error(`WA_EMULATOR_LOG_LEVEL / WA_LOG_LEVEL must be trace, debug, info, warning or error, got ${JSON.stringify(level)}`)
  return level
}

// Before the settings are read (and for a bad one), records still follow the log contract.
const earlyLog = (level, event, fields) => makeSink({ program: 'emulator', format: resolveFormat(env.WA_LOG_FORMAT) }).emit(level, event, fields)

// The gateway's API key, to read its QR as a phone camera would: the first of WA_API_KEY, else the
// first line of the key file the gateway keeps in its data dir (made 0600 on first start).
const firstKey = (text) => String(text || '').split(/[,\n]/).map((k) => k.trim()).find(Boolean) || null
export const gatewayApiKey = () => {
  const fromEnv = firstKey(env.WA_API_KEY)
  if (fromEnv || !env.WA_DATA_DIR) return fromEnv
  try {
    return firstKey(readFileSync(path.join(env.WA_DATA_DIR, 'api-key'), 'utf8'))
  } catch {
    return null
  }
}

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
    // how long a pairing code a companion asked for can be typed on the phone
    pairCodeTtlMs: int('WA_EMULATOR_PAIR_CODE_TTL_MS', 180000),
    // how many codes one number may ask for within the window; more are refused (429 rate-overlimit)
    pairCodeLimit: int('WA_EMULATOR_PAIR_CODE_LIMIT', 5),
    pairCodeWindowMs: int('WA_EMULATOR_PAIR_CODE_WINDOW_MS', 3600000),
    receiptDelayMs: int('WA_EMULATOR_RECEIPT_DELAY_MS', 100),
    groupAddressing: groupAddressing(), // how groups created from now on name their participants (groups.js)
    editWindowSeconds: int('WA_EMULATOR_EDIT_WINDOW_SECONDS', 15 * 60), // how long a sender may edit (conversation.js)
    gatewayUrl: env.WA_EMULATOR_GATEWAY_URL || null,
    apiKey: gatewayApiKey, // a function: read at use, so a key the gateway creates later is found
    logLevel: logLevel(),
    logFormat: resolveFormat(env.WA_LOG_FORMAT),
    certMode: certMode(),
    // the media host (media-server.js): its blobs, index and test CA live in mediaDir (memory without one)
    mediaDir: env.WA_EMULATOR_MEDIA_DIR || (stateFile ? path.join(path.dirname(path.resolve(stateFile)), 'wa-emulator-media') : null),
    mediaPort: int('WA_EMULATOR_MEDIA_PORT', 0),
    mediaHost: env.WA_EMULATOR_MEDIA_HOST || null,
    mediaExpirySeconds: int('WA_EMULATOR_MEDIA_EXPIRY_SECONDS', 30 * 24 * 3600),
    mediaMaxBytes: int('WA_EMULATOR_MEDIA_MAX_BYTES', 256 * 1024 * 1024),
    // one upload's bound (media_conn's maxContentLengthBytes), hence the largest document a contact sends
    mediaMaxUploadBytes: int('WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES', 64 * 1024 * 1024)
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

// The file of the media host's test CA (created if needed), for a sandbox that starts its worker with
// NODE_EXTRA_CA_CERTS pointing at it before the emulator runs (as the root-key command is used).
const mediaCaCommand = async (settings) => {
  if (!settings.mediaDir) {
    process.stderr.write('media-ca: set WA_EMULATOR_MEDIA_DIR or WA_EMULATOR_STATE_FILE so the CA outlives this command\n')
    process.exit(2)
  }
  const { ensureMediaCa } = await import('./media-tls.js')
  process.stdout.write(ensureMediaCa(settings.mediaDir) + '\n')
}

const start = async (settings) => {
  const log = makeLogger({ level: settings.logLevel, format: settings.logFormat })
  // libsignal prints whole session objects (private keys included) with console.*: keep the first
  // words only, as debug records (see ../lib/logger.js routeConsole).
  routeConsole(log)
  const { Emulator } = await import('./emulator.js')
  const { startServer } = await import('./server.js')
  const rootKey = loadOrCreateRootKey(settings.rootKeyFile)
  const emu = new Emulator({ log, rootKey, settings })
  const srv = await startServer({ emu, host: settings.host, port: settings.port })
  log.info('emulator.listening', { // tests read the port from this line (at info, like any record)
    host: settings.host,
    port: srv.port,
    ws_url: `ws://${settings.host}:${srv.port}/ws/chat`,
    root_public_key: verbatim(Buffer.from(rootKey.public).toString('base64')), // public by design
    state_file: settings.stateFile,
    cert_mode: emu.certMode,
    media_url: emu.mediaServer.origin, // the HTTPS media host media_conn hands out
    media_ca_file: emu.mediaServer.caFile // the test CA its certificate chains to (GET /media/ca.pem too)
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
  watchParent(() => stop('orphaned')) // its supervisord died: stop as on SIGTERM
  process.on('uncaughtException', (err) => { log.error('emulator.uncaught', { err }) })
  process.on('unhandledRejection', (err) => { log.error('emulator.unhandled_rejection', { err }) })
}

const main = async () => {
  let settings
  try {
    settings = readSettings()
  } catch (err) {
    // Under supervisord, the configuration-error protocol (exit 78, not restarted, the stack stops
    // with the reason); the root-key command only says why.
    if (!['root-key', 'media-ca'].includes(process.argv[2])) exitOnConfigError('emulator', err.message)
    earlyLog('critical', 'emulator.bad_setting', { error: err.message })
    process.exit(2)
  }
  if (process.argv[2] === 'root-key') return rootKeyCommand(settings)
  if (process.argv[2] === 'media-ca') return mediaCaCommand(settings)
  if (process.argv[2] && process.argv[2] !== 'start') {
    process.stderr.write(`unknown command ${process.argv[2]} (use: start | root-key | media-ca)\n`)
    process.exit(2)
  }
  await start(settings)
}

main().catch((err) => {
  earlyLog('critical', 'emulator.crashed', { err })
  process.exit(1)
})
