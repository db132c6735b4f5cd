// JSON lines on stdout, one event per line, the same shape the gateway writes.
import pino from 'pino'

export function makeLogger (level) {
  return pino({
    level,
    base: { service: 'worker' },
    messageKey: 'event',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) }
  })
}
