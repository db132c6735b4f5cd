// The configuration-error protocol shared with the gateway and the watchdog (service/config_error.py):
// a program that cannot run with its settings logs the reason as one `<program>.bad_setting`
// record, leaves it in `<run dir>/config-error.<program>` (0600, written atomically) and exits with
// EX_CONFIG (78). The watchdog reads the file, does not restart the program and stops the stack;
// the launcher prints the reason and exits 78.
import fs from 'node:fs'
import path from 'node:path'
import { makeSink, resolveFormat } from './log-record.js'

export const EX_CONFIG = 78

const runDirFromEnv = (env) => env.WA_RUN_DIR || (env.WA_DATA_DIR ? path.join(env.WA_DATA_DIR, 'run') : null)

/** Logs and records `reason`, then exits the process with EX_CONFIG. */
export function exitOnConfigError (program, reason, env = process.env) {
  makeSink({ program, format: resolveFormat(env.WA_LOG_FORMAT) }).emit('critical', `${program}.bad_setting`, { error: reason })
  const runDir = runDirFromEnv(env)
  try {
    if (runDir && fs.statSync(runDir).isDirectory()) {
      const file = path.join(runDir, `config-error.${program}`)
      const tmp = path.join(runDir, `.config-error.${program}.${process.pid}.tmp`)
      const fd = fs.openSync(tmp, 'w', 0o600)
      try {
        fs.writeSync(fd, JSON.stringify({ program, reason }))
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      fs.renameSync(tmp, file)
    }
  } catch {
    // the record above still says why
  }
  process.exit(EX_CONFIG)
}
