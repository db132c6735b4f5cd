// The logger of the Node programs (the worker's; the emulator wraps it in emulator/log.js): contract
// records (see log-record.js) on stdout, one write(2) each.
//
// It has pino's calling convention, because Baileys takes a pino-style logger and checks
// `logger.level`: `log.info({ fields }, 'event.name')`, `log.info('event.name')`,
// `log.error({ err }, 'event.name')`, `child(bindings, { level })`.
//
// Baileys' own lines are free text ('connected to WA', `Uploading PreKeys due to: ...`), often
// with values inside. They all become the one event `baileys.log`, with the text in `msg` (scrubbed
// like any other string) and Baileys' module in `module`: one stable event name that a log
// shipper can filter on, instead of an unbounded set of names made from sentences. A text from
// our own code that is not a dotted name is handled the same way (`worker.log`).
//
// Everything that bypasses the logger is routed into it: `console.*` (libsignal prints whole
// session objects, private keys included, with console.info) and process warnings.
import { isEventName, makeSink, scrubString, THRESHOLDS } from './log-record.js'

// Method -> level; log-record.js turns levels into the contract's names (warn -> warning, fatal -> critical).
const METHODS = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error', fatal: 'fatal', critical: 'fatal' }
const PINO_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']
const pinoName = (level) => (level === 'warning' ? 'warn' : level === 'critical' ? 'fatal' : level)

// Baileys logs some expected conditions as errors; the log contract wants them at info.
const baileysLevel = (level, text, fields) => {
  if (text === 'stream errored out' && String(fields.fullErrorNode?.attrs?.code) === '515') return 'info' // restart after pairing
  if (text === 'no name present, ignoring presence update request...') return 'info' // an account without a push name
  return level
}

const DOTTED_PREFIX = /^([a-z0-9_]+(?:\.[a-z0-9_]+)+): (.+)$/s

// The first line of Baileys' XML dumps at trace: the tag and its attributes, not the payload.
const xmlHead = (xml) => typeof xml === 'string' ? xml.split('\n', 1)[0].slice(0, 300) : xml

export class Logger {
  /**
   * @param {object} o
   * @param {{ emit: Function, program: string }} o.sink
   * @param {string} o.level  pino-style: trace|debug|info|warn|error|fatal|silent
   * @param {number} [o.floor]  a threshold no child goes below (WA_LOG_LEVEL for Baileys' child)
   * @param {string|null} [o.textEvent]  when set, messages are free text and this is the event
   */
  constructor ({ sink, level = 'info', bindings = {}, floor = 0, textEvent = null }) {
    this.sink = sink
    this.bindings = bindings
    this.floor = floor
    this.textEvent = textEvent
    this.level = level
    for (const [method, level] of Object.entries(METHODS)) {
      this[method] = (...args) => this.write(method, level, args)
    }
  }

  get level () { return this._level }
  set level (name) {
    const value = pinoName(String(name).toLowerCase())
    if (!PINO_NAMES.includes(value)) throw new Error(`unknown log level ${name}`)
    // Baileys reads this to decide whether to build its trace dumps: report what is printed.
    const threshold = Math.max(THRESHOLDS[value], this.floor)
    this._threshold = threshold
    this._level = PINO_NAMES.find((n) => THRESHOLDS[n] === threshold) ?? value
  }

  isLevelEnabled (name) {
    return (THRESHOLDS[name] ?? 0) >= this._threshold
  }

  child (bindings = {}, { level, textEvent } = {}) {
    return new Logger({
      sink: this.sink,
      level: level ?? this._level,
      bindings: { ...this.bindings, ...bindings },
      floor: this.floor,
      textEvent: textEvent ?? this.textEvent
    })
  }

  write (method, level, args) {
    if (THRESHOLDS[method] < this._threshold) return
    const [first, second] = args
    let fields
    let text
    if (first instanceof Error) {
      fields = { err: first }
      text = typeof second === 'string' ? second : undefined
    } else if (first !== null && typeof first === 'object') {
      fields = first
      text = typeof second === 'string' ? second : undefined
    } else {
      fields = {}
      text = first === undefined ? undefined : String(first)
    }
    if (text === undefined && typeof fields.msg === 'string') {
      const { msg, ...rest } = fields
      fields = rest
      text = msg
    }
    const context = { ...this.bindings, ...fields }
    let event
    if (this.textEvent) {
      event = this.textEvent
      level = baileysLevel(level, text, context)
      if (THRESHOLDS[level] < this._threshold) return
      if ('class' in context) { context.module = context.class; delete context.class }
      if ('xml' in context) context.xml = xmlHead(context.xml)
      if (text !== undefined) context.msg = scrubString(text).slice(0, 300)
    } else if (isEventName(text)) {
      event = text
    } else if (DOTTED_PREFIX.test(text ?? '')) {
      // 'event.name: a sentence for humans'
      const [, name, rest] = DOTTED_PREFIX.exec(text)
      event = name
      context.msg = scrubString(rest).slice(0, 300)
    } else {
      event = `${this.sink.program}.log`
      if (text !== undefined) context.msg = scrubString(String(text)).slice(0, 300)
    }
    this.sink.emit(level, event, context)
  }
}

/**
 * The process's root logger.
 * @param {{ level?: string, format?: 'json'|'console', program?: string, write?: (line: string) => void }} [o]
 */
export function makeLogger ({ level = 'info', format = 'json', program = 'worker', write } = {}) {
  return new Logger({ sink: makeSink({ program, format, write }), level })
}

/**
 * The logger handed to Baileys: its own level (WA_BAILEYS_LOG_LEVEL), never below the worker's
 * (WA_LOG_LEVEL; Baileys' trace prints as debug), and its free text in `msg` of `baileys.log`.
 */
export function makeBaileysLogger (parent, level) {
  const floor = parent.level === 'debug' ? 0 : THRESHOLDS[parent.level]
  return new Logger({ sink: parent.sink, level, bindings: {}, floor, textEvent: 'baileys.log' })
}

const CONSOLE_LEVELS = {
  log: 'debug', info: 'debug', debug: 'debug', trace: 'debug', dir: 'debug', dirxml: 'debug', table: 'debug',
  warn: 'warn', error: 'error', assert: 'error'
}

// Which package called console.*: the first node_modules frame of the stack, else our own code.
function consoleSource (program) {
  const stack = new Error().stack?.split('\n').slice(3) ?? []
  for (const frame of stack) {
    const m = /node_modules[\\/](@[^\\/]+[\\/])?([^\\/]+)[\\/]/.exec(frame)
    if (m) return m[2].toLowerCase().replace(/[^a-z0-9_]/g, '_')
  }
  return program
}

// What of a console call is safe to print: the first words of its text and the kinds of the rest.
export function consoleFields (args) {
  const [first, ...rest] = args
  const words = typeof first === 'string' ? first : first?.constructor?.name ?? typeof first
  const kinds = rest.map((a) => (a === null ? 'null' : typeof a === 'object' ? a.constructor?.name ?? 'Object' : typeof a))
  return { words: scrubString(words.split('\n', 1)[0].slice(0, 80)), ...(kinds.length ? { args: kinds.slice(0, 5) } : {}) }
}

/**
 * Sends every console.* call of this process through `log` as `<package>.console` (for instance
 * `libsignal.console`): only the first words of the text, never the objects (libsignal's
 * `Closing session: SessionEntry { ... privKey: <Buffer ...> }` keeps "Closing session:").
 */
export function routeConsole (log, target = console) {
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
    target[method] = (...args) => {
      if (method === 'assert') {
        if (args[0]) return
        args = args.slice(1)
      }
      log[level]({ ...consoleFields(args), method }, `${consoleSource(log.sink.program)}.console`)
    }
  }
}

/** Process warnings (deprecations, MaxListeners) as `process.warning` records instead of stderr text. */
export function routeWarnings (log, proc = process) {
  proc.removeAllListeners('warning')
  proc.on('warning', (w) => log.warn({ name: w.name, code: w.code, warning: w.message }, 'process.warning'))
}
