// The worker's internal API, on a unix socket inside the private (0700) run directory: only the
// gateway's user can reach it, and nothing listens on a network port.
import fs from 'node:fs/promises'
import http from 'node:http'
import { WorkerError } from './errors.js'
import { readJsonObject } from './json-body.js'
import { isE164 } from './phone.js'
import { ACCOUNT_NAME, DEFAULT_ACCOUNT } from './accounts.js'

const MAX_BODY = 1024 * 1024
const MAX_WAIT_MS = 60000

const readJson = (req) => readJsonObject(req, {
  maxBytes: MAX_BODY,
  fail: (why) => why === 'too_large'
    ? new WorkerError(413, 'payload_too_large', 'Request body too large.')
    : new WorkerError(400, 'invalid_json', 'The request body must be a JSON object.')
})

const clampWait = (value) => Math.max(0, Math.min(MAX_WAIT_MS, Number.isFinite(Number(value)) ? Number(value) : 0))

// Wait (bounded) until the session leaves `connecting` or its attempt fails, so that /connect can
// answer with the QR, or with the error that keeps it from connecting.
const settled = (session, waitMs) => new Promise((resolve) => {
  if (session.state !== 'connecting' || waitMs <= 0) return resolve()
  const onState = (state) => { if (state !== 'connecting') done() }
  const timer = setTimeout(() => done(), waitMs)
  const done = () => {
    clearTimeout(timer)
    session.off('state', onState)
    session.off('closed', done)
    resolve()
  }
  session.on('state', onState)
  session.on('closed', done)
})

// Per-account routes. Each is called with (req, url, account) where account is {name, session, journal}.
export function makeRoutes () {
  return {
    'GET /status': async (req, url, { session }) => session.status(),
    'POST /connect': async (req, url, { session }) => {
      const body = await readJson(req)
      await session.start()
      await settled(session, clampWait(body.wait_ms))
      return session.status()
    },
    'POST /disconnect': async (req, url, { session }) => {
      await readJson(req)
      const unlinked = await session.logout()
      return { ...session.status(), unlinked }
    },
    'POST /send': async (req, url, { session }) => {
      const body = await readJson(req)
      if (!isE164(body.phone_number)) throw new WorkerError(400, 'invalid_phone_number', 'phone_number must be +E.164.')
      if (typeof body.text !== 'string' || !body.text.trim()) throw new WorkerError(400, 'invalid_message', 'text must be a non-empty string.')
      if (body.id != null && (typeof body.id !== 'string' || !/^[A-Za-z0-9]{8,64}$/.test(body.id))) {
        throw new WorkerError(400, 'invalid_id', 'id must be 8 to 64 letters and digits.')
      }
      return session.sendText(body.phone_number, body.text, body.id ?? undefined)
    },
    'GET /events': async (req, url, { journal }) => {
      const after = Math.max(0, Number.parseInt(url.searchParams.get('after') ?? '0', 10) || 0)
      const events = await journal.read(after, clampWait(url.searchParams.get('wait_ms')), url.searchParams.get('boot_id'))
      return { boot_id: journal.bootId, last_seq: journal.seq, acked: journal.acked, events }
    },
    // The gateway stored every event up to `upto`: the worker may forget them.
    'POST /events/ack': async (req, url, { journal }) => {
      const body = await readJson(req)
      if (!Number.isSafeInteger(body.upto) || body.upto < 0) throw new WorkerError(400, 'invalid_upto', 'upto must be a whole number >= 0.')
      if (body.boot_id != null && body.boot_id !== journal.bootId) {
        // numbers are kept across boots, but an ack for another boot's reading is refused to be safe
        throw new WorkerError(409, 'stale_boot', 'The events were read from an earlier worker boot; read again.')
      }
      return { boot_id: journal.bootId, ...(await journal.ack(body.upto)) }
    }
  }
}

const ACCOUNT_PATH = /^\/accounts\/([^/]+)(\/.*)$/

/**
 * The request handler: `/accounts/<name>/<route>` acts on that account, the original paths on
 * `default`. `POST /accounts/<name>/attach` opens an account the registry assigns to this worker,
 * `POST /accounts/<name>/detach` logs it out and removes its data; `GET /accounts` lists them.
 */
export function makeHandler ({ host, routes = makeRoutes() }) {
  return async (req, url) => {
    if (req.method === 'GET' && url.pathname === '/accounts') {
      return { shard: host.shard, accounts: host.names().map((name) => ({ name, state: host.get(name).session.state })) }
    }
    const m = ACCOUNT_PATH.exec(url.pathname)
    let name = DEFAULT_ACCOUNT
    let sub = url.pathname
    if (m) {
      name = decodeURIComponent(m[1])
      sub = m[2]
      if (!ACCOUNT_NAME.test(name)) throw new WorkerError(400, 'invalid_account_name', 'Not an account name.')
    }
    if (req.method === 'POST' && sub === '/attach') {
      await readJson(req)
      if (!host.assigned(name)) throw new WorkerError(409, 'not_assigned', `Account ${name} is not assigned to shard ${host.shard}.`)
      const { session } = await host.attach(name)
      return { name, shard: host.shard, ...session.status() }
    }
    if (req.method === 'POST' && sub === '/detach') {
      await readJson(req)
      // Not necessarily assigned any more: the gateway takes it out of accounts.json first.
      if (!host.get(name) && !host.hasData(name)) throw new WorkerError(404, 'account_not_found', `No account ${name} on this worker.`)
      return { name, ...(await host.remove(name)) }
    }
    const route = routes[`${req.method} ${sub}`]
    if (!route) throw new WorkerError(404, 'not_found', `No route ${req.method} ${url.pathname}.`)
    let account = host.get(name)
    if (!account && host.assigned(name)) account = await host.open(name)
    if (!account) throw new WorkerError(404, 'account_not_found', `No account ${name} on this worker.`)
    return route(req, url, account)
  }
}

export async function startServer ({ socketPath, handler, logger }) {
  await fs.rm(socketPath, { force: true })
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://worker')
    let status = 200
    let body
    try {
      body = await handler(req, url)
    } catch (err) {
      if (err instanceof WorkerError) {
        status = err.status
        body = { error: { ...err.details, code: err.code, message: err.message } }
      } else {
        status = 500
        logger.error({ err, method: req.method, path: url.pathname }, 'api.failed')
        body = { error: { code: 'worker_error', message: `The worker failed: ${err.message}` } }
      }
    }
    const payload = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
    res.end(payload)
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, resolve)
  })
  await fs.chmod(socketPath, 0o600)
  return server
}
