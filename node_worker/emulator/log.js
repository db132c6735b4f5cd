// The emulator's logger: the same contract records as the worker's (../lib/log-record.js), with
// program "emulator", one write(2) per record. Call style: log.info('event.name', { fields }).
// Never pass message bodies, QR strings or keys: `sanitize` removes bytes, key-named fields and
// blobs, but the call sites are where bodies are kept out.
import { makeSink, THRESHOLDS } from '../lib/log-record.js'
import { routeConsole as routeWorkerConsole, Logger } from '../lib/logger.js'

export function makeLogger ({ level = 'info', format = 'json', write, base = {}, sink } = {}) {
  const name = String(level).toLowerCase()
  const threshold = THRESHOLDS[name] ?? THRESHOLDS.info
  sink = sink ?? makeSink({ program: 'emulator', format, write })
  const emit = (lvl) => (event, fields = {}) => {
    if (THRESHOLDS[lvl] >= threshold) sink.emit(lvl, event, { ...base, ...fields })
  }
  return {
    level: name,
    sink,
    trace: emit('trace'),
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (extra) => makeLogger({ level: name, sink, base: { ...base, ...extra } })
  }
}

/** console.* of this process (libsignal's session dumps) as `<package>.console` debug records. */
export function routeConsole (log) {
  routeWorkerConsole(new Logger({ sink: log.sink, level: log.level in THRESHOLDS ? log.level : 'info' }))
}

export const errorFields = (err) => ({ error: err?.message || String(err), ...(err?.code ? { code: err.code } : {}) })
