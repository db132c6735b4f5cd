// JSON-lines logger: one event per line on stdout. Never pass message bodies at info level.
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: 100 }

export function makeLogger ({ level = 'info', stream = process.stdout, base = {} } = {}) {
  const threshold = LEVELS[level] ?? LEVELS.info
  const write = (lvl, event, fields) => {
    if (LEVELS[lvl] < threshold) return
    const line = { t: new Date().toISOString(), level: lvl, event, ...base, ...fields }
    let text
    try {
      text = JSON.stringify(line, (k, v) => (typeof v === 'bigint' ? v.toString() : v))
    } catch {
      text = JSON.stringify({ t: line.t, level: lvl, event, note: 'unserialisable log fields' })
    }
    stream.write(text + '\n')
  }
  const logger = {
    level,
    trace: (event, fields = {}) => write('trace', event, fields),
    debug: (event, fields = {}) => write('debug', event, fields),
    info: (event, fields = {}) => write('info', event, fields),
    warn: (event, fields = {}) => write('warn', event, fields),
    error: (event, fields = {}) => write('error', event, fields),
    // an event that is always printed whatever the level (used for emulator.listening)
    always: (event, fields = {}) => {
      stream.write(JSON.stringify({ event, ...fields, t: new Date().toISOString() }) + '\n')
    },
    child: (extra) => makeLogger({ level, stream, base: { ...base, ...extra } })
  }
  return logger
}

export const errorFields = (err) => ({ error: err?.message || String(err), ...(err?.code ? { code: err.code } : {}) })
