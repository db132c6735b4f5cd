// Test helpers: a throwaway PostgreSQL 15 (Debian's server binaries) in a temporary directory, always
// stopped and removed afterwards, and the issue-14 tables (leases, wa_auth) with the types the gateway's
// migration 007_cluster.sql gets on PostgreSQL (INTEGER -> BIGINT, REAL -> DOUBLE PRECISION).
//
// PostgreSQL refuses to run as root: when the tests run as root, the temp dir is handed to the
// `postgres` system user and initdb / pg_ctl run through `runuser -u postgres --`. The server listens on
// 127.0.0.1 (a free port) and on a unix socket inside the temp dir, with password (scram) authentication.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'

// Debian's server binaries: PostgreSQL 15 (bookworm's, what `make postgres` installs), else the newest there
const pgBin = () => {
  if (process.env.WA_TEST_PG_BIN) return process.env.WA_TEST_PG_BIN
  const root = '/usr/lib/postgresql'
  let versions = []
  try {
    versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a)
  } catch { /* no PostgreSQL there */ }
  const found = versions.includes('15') ? '15' : versions.find((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
  return path.join(root, found ?? '15', 'bin')
}
const BIN = pgBin()
const USER = 'wa_test'

/** null when a PostgreSQL server can be started here, else why not (for `test(..., { skip })`). */
export const pgMissing = () => {
  for (const name of ['initdb', 'pg_ctl', 'postgres']) {
    if (!fs.existsSync(path.join(BIN, name))) {
      return `PostgreSQL server binaries not found in ${BIN}: install Debian's postgresql package (make postgres)`
    }
  }
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' })
    } catch {
      return 'running as root and there is no `postgres` user to run PostgreSQL as'
    }
  }
  return null
}

export const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer()
  srv.once('error', reject)
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address()
    srv.close(() => resolve(port))
  })
})

// Servers still running when the test process exits (a test that timed out before its `after`).
const live = new Set()
process.on('exit', () => {
  for (const server of live) server.stopSync()
})

/** The DDL of the tables the worker uses, as the gateway creates them on PostgreSQL. */
export const CLUSTER_TABLES = `
CREATE TABLE IF NOT EXISTS leases (
    account TEXT PRIMARY KEY,
    owner TEXT,
    generation BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS wa_auth (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    generation BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, key)
);`

/**
 * Starts a server; resolves to { url, port, password, pool(), query(sql, params), grant(account, owner, generation),
 * stop() }. `stop()` is safe to call twice and always removes the temp dir.
 */
export async function startPostgres () {
  const asRoot = process.getuid?.() === 0
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-pg-node-'))
  const data = path.join(tmp, 'data')
  const sockets = path.join(tmp, 'sock')
  const logFile = path.join(tmp, 'postgres.log')
  const password = randomBytes(18).toString('base64url')
  const port = await freePort()
  const run = (argv, opts = {}) => asRoot ? ['runuser', ['-u', 'postgres', '--', ...argv], opts] : [argv[0], argv.slice(1), opts]
  const ctl = (...args) => run([path.join(BIN, 'pg_ctl'), '-D', data, ...args])

  const pools = new Set()
  const server = {
    port,
    password,
    url: `postgresql://${USER}:${password}@127.0.0.1:${port}/postgres`,
    log: () => { try { return fs.readFileSync(logFile, 'utf8') } catch { return '' } },
    /** a pool of its own (closed by stop()) */
    pool (options = {}) {
      const p = new pg.Pool({ connectionString: server.url, max: 4, ...options })
      p.on('error', () => {}) // a backend ended by stop(): nothing to do
      pools.add(p)
      return p
    },
    async query (sql, params) {
      server.admin ??= server.pool({ max: 2 })
      return server.admin.query(sql, params)
    },
    /** Sets the lease of `account` (insert or update) to owner/generation, as a takeover would. */
    async grant (account, owner, generation, ttlSeconds = 3600) {
      const now = Date.now() / 1000
      await server.query(`INSERT INTO leases (account, owner, generation, expires_at, updated_at) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (account) DO UPDATE SET owner = EXCLUDED.owner, generation = EXCLUDED.generation,
        expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at`, [account, owner, generation, now + ttlSeconds, now])
    },
    stopSync () {
      live.delete(server)
      if (fs.existsSync(path.join(data, 'postmaster.pid'))) {
        const [cmd, args] = ctl('stop', '-m', 'immediate', '-w', '-t', '30')
        spawnSync(cmd, args, { stdio: 'ignore', timeout: 40000 })
      }
      fs.rmSync(tmp, { recursive: true, force: true })
    },
    async stop () {
      for (const p of pools) await p.end().catch(() => {})
      pools.clear()
      server.stopSync()
    }
  }

  try {
    fs.mkdirSync(sockets)
    const pwfile = path.join(tmp, 'pwfile')
    fs.writeFileSync(pwfile, password + '\n', { mode: 0o600 })
    fs.writeFileSync(logFile, '')
    if (asRoot) {
      const { uid, gid } = idsOf('postgres')
      for (const p of [tmp, sockets, pwfile, logFile]) fs.chownSync(p, uid, gid)
    }
    fs.chmodSync(tmp, 0o700)
    const [initCmd, initArgs] = run([path.join(BIN, 'initdb'), '-D', data, '-U', USER, '--pwfile', pwfile,
      '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions'])
    const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', timeout: 120000 })
    fs.rmSync(pwfile, { force: true })
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}): ${(init.stderr || '').slice(-2000)}`)
    fs.appendFileSync(path.join(data, 'postgresql.conf'), [
      '', '# node_worker/test/pg-helpers.js',
      "listen_addresses = '127.0.0.1'", `port = ${port}`, `unix_socket_directories = '${sockets}'`,
      'fsync = on', 'synchronous_commit = on', 'max_connections = 50', 'shared_buffers = 16MB', ''
    ].join('\n'))
    live.add(server)
    const [cmd, args] = ctl('start', '-w', '-t', '60', '-l', logFile)
    const started = spawnSync(cmd, args, { encoding: 'utf8', timeout: 90000 })
    if (started.status !== 0) throw new Error(`pg_ctl start failed (${started.status}): ${server.log().slice(-2000)}`)
    await server.query(CLUSTER_TABLES)
  } catch (err) {
    await server.stop()
    throw err
  }
  return server
}

function idsOf (user) {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())
  return { uid, gid }
}
