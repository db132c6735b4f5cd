// The log record of wa-gateway's Node programs (the worker and the emulator): the contract that the
// gateway follows too.
//
//   {"timestamp": ISO-8601 UTC, "level": debug|info|warning|error|critical, "event": "dotted.name",
//    "program": "worker"|"emulator", ...context}
//
// One record is one line, written with ONE write(2) of at most PIPE_BUF (4096) bytes, newline
// included. supervisord reads each program's stdout pipe in chunks and forwards what it got to its
// own stdout; a pipe write of <= PIPE_BUF bytes is atomic on Linux, so no reader ever sees half a
// record and records of different programs never merge. A longer record has its longest strings
// cut (ending in "…") and says `"truncated": true`.
//
// Nothing secret reaches a record: every value goes through `sanitize`, which prints bytes
// (Buffer, Uint8Array, ArrayBuffer) as their length only, replaces fields whose names say "key
// material" (privKey, rootKey, advSecretKey, noiseKey, token, ...) and message bodies
// (conversation, text, caption) by a placeholder, and cuts long hex and base64 runs out of strings.
import fs from 'node:fs'
import tty from 'node:tty'

export const MAX_RECORD_BYTES = 4096
const MAX_STRING = 8192 // longer strings are cut before anything else (then fitted to the record)
const MAX_DEPTH = 6
const MAX_KEYS = 40
const MAX_ITEMS = 20
const ELLIPSIS = '…'

// Thresholds; `trace` exists for Baileys and the emulator and is printed as `debug`.
export const THRESHOLDS = { trace: 10, debug: 20, info: 30, warning: 40, warn: 40, error: 50, critical: 60, fatal: 60, silent: Infinity }
const OUTPUT_LEVEL = { trace: 'debug', debug: 'debug', info: 'info', warning: 'warning', warn: 'warning', error: 'error', critical: 'critical', fatal: 'critical' }
export const OUTPUT_LEVELS = Object.freeze(['debug', 'info', 'warning', 'error', 'critical'])
export const outputLevel = (name) => OUTPUT_LEVEL[name] ?? 'info'

const EVENT = /^[a-z0-9_]+(\.[a-z0-9_]+)+$/
export const isEventName = (value) => typeof value === 'string' && value.length <= 100 && EVENT.test(value)

// Field names whose values are key material or secrets, whatever their type. A media file's direct path
// (Baileys logs it at debug after a media retry) is part of its descriptor: signed by the media host, it
// fetches the encrypted file.
const SECRET_NAME = /priv|secret|rootkey|chainkey|mackey|enckey|cipherkey|mediakey|keydata|noisekey|identitykey|signedprekey|prekeypair|keypair|password|passwd|api_?key|authorization|cookie|token|seed|^qr$|qr_?code|pairing_?code|ciphertext|^(enc|sig|signature)$|direct_?path/i
// Field names that hold a message body (Baileys' proto Message and our own payloads).
const BODY_NAME = /^(conversation|text|caption|body|contenttext|selecteddisplaytext|message_?text)$/i

const HEX_RUN = /[0-9a-f]{32,}|[0-9A-F]{64,}/g // 16+ bytes as Buffer.toString('hex'), 32+ upper-case
const B64_RUN = /[A-Za-z0-9+/]{20,}={0,2}/g // 15+ bytes of base64
// Random base64 mixes cases throughout and has digits; a path (node_modules/baileys/lib/Socket) or a
// camelCase name has few capitals, or no digits and is short. (A long path with capitals may be cut:
// harmless, and better than a key that is not.)
const count = (run, re) => (run.match(re) || []).length
const looksRandom = (run) => count(run, /[A-Z]/g) >= 3 && count(run, /[a-z]/g) >= 3 && (run.length >= 40 || /[0-9+]/.test(run))

/** Removes hex and base64 blobs (key material, QR secrets) from free text. */
export function scrubString (text) {
  let s = text.length > MAX_STRING ? text.slice(0, MAX_STRING) + ELLIPSIS : text
  s = s.replace(HEX_RUN, (run) => `[hex ${run.length / 2 | 0} bytes]`)
  s = s.replace(B64_RUN, (run) => looksRandom(run) ? `[base64 ${run.length} chars]` : run)
  return s
}

/** A string that is public by design (a public key an operator needs) and is printed unscrubbed. */
export class Verbatim {
  constructor (text) { this.text = String(text) }
}
export const verbatim = (text) => new Verbatim(text)

const isBytes = (v) => v instanceof Uint8Array || v instanceof ArrayBuffer || ArrayBuffer.isView(v)
const byteLength = (v) => v.byteLength ?? v.length

/** The Error as a plain object: type, message, code and a stack (of our code) without data. */
function errorFields (err, seen, depth) {
  const out = { type: err.name || err.constructor?.name || 'Error', message: scrubString(String(err.message ?? '')) }
  if (err.code != null) out.code = sanitize(err.code, seen, depth + 1)
  const status = err.output?.statusCode ?? err.statusCode
  if (status != null) out.status_code = status
  if (typeof err.stack === 'string') {
    out.stack = scrubString(err.stack.split('\n').slice(1, 9).map((l) => l.trim()).join(' | '))
  }
  if (err.cause) out.cause = err.cause instanceof Error ? scrubString(String(err.cause.message)) : '[cause]'
  return out
}

/**
 * A JSON-safe copy of `value` with no bytes, no key material, no message bodies and no blobs;
 * bounded in depth, keys and items so that fitting it into one record stays cheap.
 */
export function sanitize (value, seen = new WeakSet(), depth = 0) {
  if (value === null || value === undefined) return value ?? null
  switch (typeof value) {
    case 'string': return scrubString(value)
    case 'number': return Number.isFinite(value) ? value : String(value)
    case 'boolean': return value
    case 'bigint': return value.toString()
    case 'function': case 'symbol': return `[${typeof value}]`
  }
  if (isBytes(value)) return `[${byteLength(value)} bytes]`
  if (value instanceof Verbatim) return value.text
  if (seen.has(value)) return '[circular]'
  if (depth >= MAX_DEPTH) return '[object]'
  seen.add(value)
  try {
    if (value instanceof Error) return errorFields(value, seen, depth)
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()
    if (value instanceof Map || value instanceof Set) return `[${value.constructor.name} of ${value.size}]`
    if (typeof value.low === 'number' && typeof value.high === 'number' && typeof value.toNumber === 'function') {
      return String(value) // a protobuf Long
    }
    if (Array.isArray(value)) {
      const out = value.slice(0, MAX_ITEMS).map((item) => sanitize(item, seen, depth + 1))
      if (value.length > MAX_ITEMS) out.push(`${ELLIPSIS}${value.length - MAX_ITEMS} more`)
      return out
    }
    const out = {}
    const keys = Object.keys(value)
    for (const key of keys.slice(0, MAX_KEYS)) {
      const item = value[key]
      if (item === undefined || typeof item === 'function') continue
      if (SECRET_NAME.test(key)) out[key] = '[redacted]'
      else if (BODY_NAME.test(key) && typeof item === 'string') out[key] = `[${item.length} chars]`
      else out[key] = sanitize(item, seen, depth + 1)
    }
    if (keys.length > MAX_KEYS) out[ELLIPSIS] = `${keys.length - MAX_KEYS} more keys`
    return out
  } finally {
    seen.delete(value) // only cycles are circular; the same object twice is not
  }
}

/** The record for one log call; `fields` must not override the four contract keys. */
export function makeRecord ({ level, event, program, fields = {}, now = new Date() }) {
  const record = { timestamp: now.toISOString(), level: outputLevel(level), event, program }
  const clean = sanitize(fields)
  for (const [key, value] of Object.entries(clean)) {
    record[key in record ? `field_${key}` : key] = value
  }
  return record
}

export const renderJson = (record) => JSON.stringify(record)

const consoleValue = (value) => typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)

/** `<timestamp> <level padded> [<program>] <event> key=value ...`, one line. */
export function renderConsole (record) {
  const { timestamp, level, event, program, ...rest } = record
  let line = `${timestamp} ${level.padEnd(8)} [${program}] ${event}`
  for (const [key, value] of Object.entries(rest)) line += ` ${key}=${consoleValue(value)}`
  return line
}

const bytesOf = (line) => Buffer.byteLength(line) + 1 // + newline

function longestString (value, parent = null, key = null, best = null) {
  if (typeof value === 'string') {
    return parent && (!best || value.length > best.length) ? { parent, key, length: value.length } : best
  }
  if (value && typeof value === 'object') {
    for (const [k, item] of Object.entries(value)) {
      if (parent === null && ['timestamp', 'level', 'event', 'program'].includes(k)) continue
      best = longestString(item, value, k, best)
    }
  }
  return best
}

const cut = (text, keep) => {
  let n = Math.max(0, keep)
  if (n > 0 && /[\uD800-\uDBFF]/.test(text[n - 1])) n -= 1 // never split a surrogate pair
  return text.slice(0, n) + ELLIPSIS
}

/** Renders `record` into one line of at most `limit` bytes with the newline; mutates `record`. */
export function fitRecord (record, render = renderJson, limit = MAX_RECORD_BYTES) {
  let line = render(record)
  for (let round = 0; round < 200 && bytesOf(line) > limit; round++) {
    const found = longestString(record)
    if (!found || found.length <= 16) break
    const excess = bytesOf(line) - limit
    // Cut at least the excess (a character is 1 to 6 bytes once escaped), at most half the string.
    const keep = Math.min(Math.floor(found.length / 2), found.length - Math.ceil(excess / 2) - 2)
    found.parent[found.key] = cut(found.parent[found.key], keep)
    record.truncated = true
    line = render(record)
  }
  if (bytesOf(line) > limit) {
    // Thousands of small fields: keep the contract keys only.
    const { timestamp, level, event, program } = record
    line = render({ timestamp, level, event, program, truncated: true })
  }
  return line
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))

/**
 * Writes `line` and a newline to `fd` with one write(2). A pipe that is full and non-blocking
 * (EAGAIN) is retried after 1 ms; a closed output (EPIPE, EBADF) drops the line: logging must
 * never take the program down.
 */
export function writeLine (fd, line) {
  const buf = Buffer.from(line + '\n')
  let offset = 0
  for (let tries = 0; offset < buf.length && tries < 5000; tries++) {
    try {
      offset += fs.writeSync(fd, buf, offset, buf.length - offset)
    } catch (err) {
      if (err.code !== 'EAGAIN') return
      Atomics.wait(sleeper, 0, 0, 1)
    }
  }
}

/** `json` or `console`; `auto` (or nothing) is console only when `fd` is a terminal. */
export function resolveFormat (format, fd = 1) {
  const value = String(format || 'auto').toLowerCase()
  if (value === 'json' || value === 'console') return value
  return tty.isatty(fd) ? 'console' : 'json'
}

/**
 * The sink that every logger of a process writes through: it builds, fits, renders and writes
 * one record per call. `write` is replaceable for tests.
 */
export function makeSink ({ program, format = 'json', fd = 1, write = (line) => writeLine(fd, line) }) {
  const render = format === 'console' ? renderConsole : renderJson
  return {
    program,
    format,
    emit (level, event, fields, now) {
      try {
        write(fitRecord(makeRecord({ level, event, program, fields, now }), render))
      } catch {
        // A log call must never throw into the code that made it.
      }
    }
  }
}
