// Worker settings, read once from WA_* variables. A bad value ends the process with EX_CONFIG (78)
// before anything starts, so supervisord's retries end in FATAL with the reason in the log.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseProxyUrl, ProxyUrlError } from './proxy.js'

export class SettingsError extends Error {}

const int = (env, name, fallback, min = 0) => {
  const raw = (env[name] ?? '').trim()
  if (raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) {
    throw new SettingsError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  }
  return value
}

// a rate: a number >= 0 (0: no limit)
const rate = (env, name, fallback) => {
  const raw = (env[name] ?? '').trim()
  if (raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new SettingsError(`${name} must be a number >= 0, got ${JSON.stringify(raw)}`)
  return value
}

const serverUrl = (raw) => {
  let url
  try {
    url = new URL(raw)
  } catch {
    throw new SettingsError(`WA_SERVER_URL must be a ws:// or wss:// URL, got ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new SettingsError(`WA_SERVER_URL must be a ws:// or wss:// URL, got ${JSON.stringify(raw)}`)
  }
  return url.toString()
}

const choice = (env, name, fallback, allowed) => {
  const value = (env[name] || fallback).trim().toLowerCase()
  if (!allowed.includes(value)) {
    throw new SettingsError(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`)
  }
  return value
}

// WA_DATABASE_URL: empty keeps each account's session in its local directory (auth-store.js); a
// postgresql:// URL keeps it in PostgreSQL, fenced by the account's lease (auth-store-pg.js).
const databaseUrl = (raw) => {
  raw = (raw || '').trim()
  if (!raw) return null
  let url
  try {
    url = new URL(raw)
  } catch {
    url = null
  }
  if (!url || (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:')) {
    // never echo the value: it may carry a password
    throw new SettingsError('WA_DATABASE_URL must be a postgresql:// URL (or empty)')
  }
  return raw
}

/** The database URL without its password (and query), for logs. */
export const redactDatabaseUrl = (raw) => {
  if (!raw) return null
  const url = new URL(raw)
  return `${url.protocol}//${url.username ? `${decodeURIComponent(url.username)}@` : ''}${url.host}${url.pathname}`
}

// WA_PROXY_URL: the proxy of every WhatsApp connection (src/proxy.js) unless an account has its own; empty:
// direct. The message names the problem and never the value (it may carry a password).
const proxySetting = (raw) => {
  if (!(raw || '').trim()) return null
  try {
    return Object.freeze(parseProxyUrl(raw))
  } catch (err) {
    if (!(err instanceof ProxyUrlError)) throw err
    throw new SettingsError(`WA_PROXY_URL is ${err.message}`)
  }
}

// WA_SANDBOX_ROOT_KEY makes the worker trust the emulator's test root instead of WhatsApp's
// (src/sandbox-trust.js). A leaked sandbox setting must not do that to a production worker: it is refused
// (exit 78) unless this stack runs as the sandbox (WA_SANDBOX=true, set by `wa-gateway sandbox` for
// conf/modes/sandbox-true.conf) and the server is on this machine (a loopback WA_SERVER_URL host).
const LOOPBACK_HOST = /^(localhost|\[::1\]|127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/
export const isLoopbackServerUrl = (url) => LOOPBACK_HOST.test(new URL(url).hostname)
const sandboxRootKey = (env, server) => {
  const key = (env.WA_SANDBOX_ROOT_KEY || '').trim()
  if (!key) return null
  if ((env.WA_SANDBOX || '').trim() !== 'true') {
    throw new SettingsError('WA_SANDBOX_ROOT_KEY is set but this stack is not the sandbox (WA_SANDBOX is not true): ' +
      'refusing to trust a test server root instead of WhatsApp; unset WA_SANDBOX_ROOT_KEY')
  }
  if (!isLoopbackServerUrl(server)) {
    throw new SettingsError('WA_SANDBOX_ROOT_KEY needs a loopback WA_SERVER_URL (ws://127.0.0.1, ws://[::1] or ' +
      `ws://localhost), got host ${JSON.stringify(new URL(server).hostname)}: refusing to trust a test root for it`)
  }
  return key
}

// WA_SANDBOX_MEDIA_CA: the PEM file of the emulator's media test CA (`main.js media-ca`, set by the launcher
// for the sandbox): the worker's media uploads and downloads trust it (session/connection.js). Like the root
// key it is refused outside the sandbox, so a production worker never trusts a test CA. Read once, here.
const sandboxMediaCa = (env) => {
  const file = (env.WA_SANDBOX_MEDIA_CA || '').trim()
  if (!file) return null
  if ((env.WA_SANDBOX || '').trim() !== 'true') {
    throw new SettingsError('WA_SANDBOX_MEDIA_CA is set but this stack is not the sandbox (WA_SANDBOX is not true): ' +
      'refusing to trust a test CA for media; unset WA_SANDBOX_MEDIA_CA')
  }
  let pem
  try {
    pem = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new SettingsError(`WA_SANDBOX_MEDIA_CA ${JSON.stringify(file)} cannot be read: ${err.code ?? err.message}`)
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new SettingsError(`WA_SANDBOX_MEDIA_CA ${JSON.stringify(file)} is not a PEM certificate`)
  return Object.freeze({ file, pem })
}

// 1,000 accounts dial in 33 s at this rate. A resume costs the worker 39-44 ms of CPU (AccountHost, 20 and 40
// accounts at once) and the emulator 7 ms (bench/emulator-scale.mjs, 300 devices): with the gateway's share a
// 2-core machine completes about 35 a second at most, so a higher rate only queues handshakes in the loops.
export const DEFAULT_CONNECT_RATE = 30

// as the gateway's (service/settings.py): both name this instance in the leases table
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

// pino-style names, which Baileys reads from its logger
const pinoLevel = (level) => (level === 'warning' ? 'warn' : level)

export function readSettings (env = process.env) {
  const dataDir = path.resolve(env.WA_DATA_DIR || 'data')
  const runDir = path.resolve(env.WA_RUN_DIR || path.join(dataDir, 'run'))
  const logLevel = choice(env, 'WA_LOG_LEVEL', 'info', ['debug', 'info', 'warning', 'warn', 'error'])
  const dbUrl = databaseUrl(env.WA_DATABASE_URL)
  const instanceId = (env.WA_INSTANCE_ID || '').trim() || os.hostname()
  if (!INSTANCE_ID.test(instanceId)) {
    throw new SettingsError(`WA_INSTANCE_ID must be 1-63 letters, digits, '.', '_' or '-', got ${JSON.stringify(instanceId)}`)
  }
  const server = serverUrl(env.WA_SERVER_URL || 'wss://web.whatsapp.com/ws/chat')
  return Object.freeze({
    // sessions in PostgreSQL, owned through leases (issue 14), or null: local session directories
    databaseUrl: dbUrl,
    // this gateway instance (one supervisord stack), the owner name in the leases table; the gateway's default too
    instanceId,
    dataDir,
    runDir,
    sessionDir: path.join(dataDir, 'session'),
    // this worker's shard (supervisord's process_num): it holds the accounts accounts.json assigns to it
    shard: int(env, 'WA_SHARD', 0, 0),
    socketPath: path.join(runDir, `worker-${int(env, 'WA_SHARD', 0, 0)}.sock`),
    serverUrl: server,
    // WA_PROXY_URL parsed ({ url, scheme, host, port, redacted }) or null; accounts may override it (proxy.js)
    proxy: proxySetting(env.WA_PROXY_URL),
    sandboxRootKey: sandboxRootKey(env, server),
    // { file, pem } of the emulator's media CA, sandbox only, or null
    sandboxMediaCa: sandboxMediaCa(env),
    // the gateway's media store (service/media/store.py): files named by their sha256, <2 hex>/<62 hex>; the
    // worker only reads it, by the sha256 the gateway names
    mediaDir: path.resolve(env.WA_MEDIA_DIR || path.join(dataDir, 'media')),
    sentIdsFile: path.join(dataDir, 'sent-ids.txt'),
    // contents of sent messages, for Baileys' getMessage (retry receipts); see sent-messages.js
    sentMessagesDir: path.join(dataDir, 'sent-messages'),
    // decryption results, on disk before the key change (src/decrypt-cache.js)
    decryptedDir: path.join(dataDir, 'decrypted'),
    sentMessagesMaxAgeMs: int(env, 'WA_SENT_MESSAGES_DAYS', 7, 1) * 24 * 3600 * 1000,
    sentMessagesMax: int(env, 'WA_SENT_MESSAGES_MAX', 10000, 1),
    logLevel: pinoLevel(logLevel),
    // json or console; `auto` (the launcher normally resolves it) means console on a terminal
    logFormat: choice(env, 'WA_LOG_FORMAT', 'auto', ['auto', 'json', 'console']),
    baileysLogLevel: pinoLevel(choice(env, 'WA_BAILEYS_LOG_LEVEL', 'warn',
      ['trace', 'debug', 'info', 'warning', 'warn', 'error', 'fatal', 'silent'])),
    reconnectBaseMs: int(env, 'WA_RECONNECT_BASE_MS', 1000, 1),
    reconnectMaxMs: int(env, 'WA_RECONNECT_MAX_MS', 60000, 1),
    reconnectStableMs: int(env, 'WA_RECONNECT_STABLE_MS', 60000, 0),
    // WhatsApp connection attempts per second of the whole instance (resumes, attaches, reconnects, links),
    // each of its WA_WORKER_SHARDS shards dialing its share (src/connect-pacer.js); 0: no limit
    connectRate: rate(env, 'WA_CONNECT_RATE', DEFAULT_CONNECT_RATE),
    workerShards: int(env, 'WA_WORKER_SHARDS', 1, 1),
    qrTimeoutMs: int(env, 'WA_QR_TIMEOUT_MS', 0, 0) || undefined,
    keepAliveMs: int(env, 'WA_KEEPALIVE_MS', 30000, 100),
    connectTimeoutMs: int(env, 'WA_CONNECT_TIMEOUT_MS', 20000, 100),
    // How long a send waits for the server's ack before it is retried (same WhatsApp id) by the gateway.
    sendAckTimeoutMs: int(env, 'WA_SEND_ACK_TIMEOUT_MS', 15000, 100),
    // A contact's message Baileys could not decrypt is reported undecryptable once no readable copy (the
    // contact's resend after a retry receipt) followed its last failure for this long.
    undecryptableAfterMs: int(env, 'WA_UNDECRYPTABLE_AFTER_MS', 30000, 100),
    // link liveness (src/link-monitor.js): a ping after this much silence from the server, and the
    // link is dead (reconnect) when nothing at all arrives within the timeout after it
    linkProbeMs: int(env, 'WA_LINK_PROBE_MS', 10000, 100),
    linkTimeoutMs: int(env, 'WA_LINK_TIMEOUT_MS', 10000, 100),
    shutdownTimeoutMs: int(env, 'WA_WORKER_SHUTDOWN_MS', 5000, 100),
    // how often the worker checks that the data dir takes a write (src/storage.js); 0: only at start
    storageProbeMs: int(env, 'WA_STORAGE_PROBE_MS', 5000, 0),
    // events the gateway has not acknowledged yet, on disk (src/event-journal.js); past the bound the oldest go
    eventsDir: path.join(dataDir, 'events'),
    eventBufferSize: int(env, 'WA_EVENT_BUFFER', 100000, 10),
    // "not on WhatsApp" is cached briefly (the number may register any minute); "on WhatsApp" longer
    notOnWhatsAppTtlMs: int(env, 'WA_NOT_ON_WHATSAPP_TTL_MS', 60000, 0),
    onWhatsAppTtlMs: 10 * 60 * 1000
  })
}
