// The worker's internal API, on a unix socket inside the private (0700) run directory: only the
// gateway's user can reach it, and nothing listens on a network port.
import fs from 'node:fs/promises'
import http from 'node:http'
import { WorkerError } from './errors.js'
import { readJsonObject } from '../lib/json-body.js'
import { isE164 } from './phone.js'
import { CONTENT_FIELDS, assertGroupContent, parseContent } from './session/outbound-content.js'
import { checkGroupId, groupIdOf, groupRoutes } from './group-routes.js'
import { contactRoutes, phoneOf } from './contact-routes.js'
import { DOWNLOAD_FIELDS, parseDownload } from './session/media-download.js'
import { ACCOUNT_NAME } from './accounts.js'
import { changeFeed } from './changes.js'
import { DEFAULT_ACCOUNT, SEND_FAILURE, STATE } from './states.js'

const MAX_BODY = 1024 * 1024
const MAX_WAIT_MS = 60000
const MAX_BATCH = 64

const BODY_ERRORS = {
  too_large: () => new WorkerError(413, SEND_FAILURE.PAYLOAD_TOO_LARGE, 'Request body too large.'),
  incomplete: () => new WorkerError(400, 'incomplete_body', 'The request body ended early.')
}
// A field or query parameter a route does not take is refused, never ignored (the gateway's rule too).
const onlyKnown = (names, known, where) => {
  for (const name of names) {
    if (!known.includes(name)) {
      const shown = JSON.stringify(name).slice(1, -1).slice(0, 64)
      const takes = known.length ? `it takes: ${[...known].sort().join(', ')}.` : 'it takes none.'
      throw new WorkerError(400, SEND_FAILURE.UNKNOWN_FIELD, `Unknown ${where} '${shown}'; ${takes}`)
    }
  }
}
const readJson = async (req, fields = []) => {
  const body = await readJsonObject(req, {
    maxBytes: MAX_BODY,
    fail: (why) => BODY_ERRORS[why]?.() ??
      new WorkerError(400, SEND_FAILURE.INVALID_JSON, 'The request body must be a JSON object (UTF-8).')
  })
  onlyKnown(Object.keys(body), fields, 'field')
  return body
}
// The query parameters each route takes; every other route takes none.
const QUERY = { 'GET /events': ['after', 'limit', 'wait_ms', 'boot_id'], 'GET /contacts/{phone}': ['picture'] }
const HOST_QUERY = { 'GET /changes': ['after', 'wait_ms', 'boot_id'] }
const SEND_FIELDS = ['phone_number', 'group_id', 'id', ...CONTENT_FIELDS]
const BATCH_ITEM = SEND_FIELDS

// A send's content: exactly one of text, media, reaction, edit, revoke, location, contacts, poll, read, presence,
// and a reply's `quoted` (session/outbound-content.js): { <kind>: value, quoted?, mentions? }.
const sendContent = (body) => parseContent(body, onlyKnown)

// A send's recipient: exactly one of `phone_number` (+E.164) and `group_id` (a group's jid, issue 26), whose
// content a group can take (no read receipt or presence; a reaction or reply to another names its sender).
const recipientOf = (body, content) => {
  if ((body.phone_number == null) === (body.group_id == null)) {
    throw new WorkerError(400, SEND_FAILURE.INVALID_PHONE_NUMBER, 'Give exactly one of phone_number (+E.164) and group_id.')
  }
  if (body.group_id != null) {
    assertGroupContent(content)
    return { group_id: checkGroupId(body.group_id, 'group_id') }
  }
  if (!isE164(body.phone_number)) throw new WorkerError(400, SEND_FAILURE.INVALID_PHONE_NUMBER, 'phone_number must be +E.164.')
  return { phone_number: body.phone_number }
}

const clampWait = (value) => Math.max(0, Math.min(MAX_WAIT_MS, Number.isFinite(Number(value)) ? Number(value) : 0))

// Wait (bounded) until the session leaves `connecting` or its attempt fails, so that /connect can
// answer with the QR, or with the error that keeps it from connecting.
const settled = (session, waitMs) => new Promise((resolve) => {
  if (session.state !== STATE.CONNECTING || waitMs <= 0) return resolve()
  const onState = (state) => { if (state !== STATE.CONNECTING) done() }
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
      const body = await readJson(req, ['wait_ms', 'phone_number'])
      if (body.phone_number != null && !isE164(body.phone_number)) {
        throw new WorkerError(400, SEND_FAILURE.INVALID_PHONE_NUMBER, 'phone_number (linking by pairing code) must be +E.164.')
      }
      await session.start(body.phone_number ?? null)
      await settled(session, clampWait(body.wait_ms))
      // WhatsApp refused the code asked for (429 pairing_rate_limited, 422 pairing_code_refused): the session stopped
      if (body.phone_number != null && session.pairingRefusal) throw session.pairingRefusal
      return session.status()
    },
    'POST /disconnect': async (req, url, { session }) => {
      await readJson(req, [])
      const unlinked = await session.logout()
      return { ...session.status(), unlinked }
    },
    'POST /send': async (req, url, { session }) => {
      const body = await readJson(req, SEND_FIELDS)
      const content = sendContent(body)
      const to = recipientOf(body, content)
      if (body.id != null && (typeof body.id !== 'string' || !/^[A-Za-z0-9]{8,64}$/.test(body.id))) {
        throw new WorkerError(400, SEND_FAILURE.INVALID_ID, 'id must be 8 to 64 letters and digits.')
      }
      return session.send(to.group_id ?? to.phone_number, content, body.id ?? undefined)
    },
    // The outbox's messages to one recipient, in order, in one request: the dispatcher keeps a recipient's
    // order by sending its next messages together instead of one round trip each (session.sendBatch).
    'POST /send/batch': async (req, url, { session }) => {
      const body = await readJson(req, ['messages'])
      const items = body.messages
      if (!Array.isArray(items) || items.length < 1 || items.length > MAX_BATCH) {
        throw new WorkerError(400, SEND_FAILURE.INVALID_BATCH, `messages must be an array of 1 to ${MAX_BATCH} messages.`)
      }
      const checked = []
      for (const item of items) {
        if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new WorkerError(400, SEND_FAILURE.INVALID_BATCH, 'Each message must be an object.')
        onlyKnown(Object.keys(item), BATCH_ITEM, 'field of a message')
        const content = sendContent(item)
        const to = recipientOf(item, content)
        if (typeof item.id !== 'string' || !/^[A-Za-z0-9]{8,64}$/.test(item.id)) {
          throw new WorkerError(400, SEND_FAILURE.INVALID_ID, 'id must be 8 to 64 letters and digits.')
        }
        checked.push({ ...to, id: item.id, ...content })
      }
      return session.sendBatch(checked)
    },
    // The file of a contact's media message (its `message` event's media.descriptor), stored in WA_MEDIA_DIR.
    'POST /media/download': async (req, url, { session }) => {
      const body = await readJson(req, DOWNLOAD_FIELDS)
      return session.downloadMedia(parseDownload(body, onlyKnown))
    },
    // One page: a backlog of many thousands (the gateway was away) is handed over in pages, never in one reply.
    'GET /events': async (req, url, { journal }) => {
      const after = Math.max(0, Number.parseInt(url.searchParams.get('after') ?? '0', 10) || 0)
      const limit = Math.min(EVENTS_PAGE_MAX, Math.max(1, Number.parseInt(url.searchParams.get('limit') ?? '', 10) || EVENTS_PAGE))
      const events = await journal.read(after, clampWait(url.searchParams.get('wait_ms')), url.searchParams.get('boot_id'))
      return { boot_id: journal.bootId, last_seq: journal.seq, acked: journal.acked, events: events.slice(0, limit), more: events.length > limit }
    },
    // The gateway stored every event up to `upto`: the worker may forget them.
    'POST /events/ack': async (req, url, { journal }) => {
      const body = await readJson(req, ['upto', 'boot_id'])
      if (!Number.isSafeInteger(body.upto) || body.upto < 0) throw new WorkerError(400, 'invalid_upto', 'upto must be a whole number >= 0.')
      if (body.boot_id != null && body.boot_id !== journal.bootId) {
        // numbers are kept across boots, but an ack for another boot's reading is refused to be safe
        throw new WorkerError(409, 'stale_boot', 'The events were read from an earlier worker boot; read again.')
      }
      return { boot_id: journal.bootId, ...(await journal.ack(body.upto)) }
    },
    ...groupRoutes(readJson),
    ...contactRoutes()
  }
}

// A route key with `{group_id}` (group-routes.js) or `{phone}` (contact-routes.js) as a matcher of the paths it
// names: its one segment is the id, checked by the parameter's parser.
const PARAMS = { group_id: groupIdOf, phone: phoneOf }
const PARAM = /\{(group_id|phone)\}/
const patterns = (routes) => Object.keys(routes).filter((key) => PARAM.test(key)).map((key) => {
  const [method, path] = key.split(' ')
  const name = PARAM.exec(path)[1]
  const [head, tail] = path.split(`{${name}}`)
  return { key, method, head, tail, name }
})
const matchPattern = (list, method, sub) => {
  for (const p of list) {
    if (p.method !== method || !sub.startsWith(p.head) || !sub.endsWith(p.tail)) continue
    const segment = sub.slice(p.head.length, sub.length - p.tail.length)
    if (segment.includes('/')) continue // an empty one is no id (400), not another route
    return { key: p.key, params: { [p.name]: PARAMS[p.name](segment) } }
  }
  return null
}

// Routes of the worker itself, and routes on an account as such (not on its session), called with
// (req, host, url) and (req, host, name): these run before the account is opened.
const HOST_ROUTES = {
  // The accounts whose state, registered flag or journal changed after `after` (src/changes.js): the gateway
  // follows the whole shard with this one long-poll instead of a poll and a long-poll per account.
  'GET /changes': async (req, host, url) => {
    const after = Math.max(0, Number.parseInt(url.searchParams.get('after') ?? '0', 10) || 0)
    return changeFeed(host).read(after, clampWait(url.searchParams.get('wait_ms')), url.searchParams.get('boot_id'))
  },
  'GET /accounts': async (req, host) => ({
    shard: host.shard,
    accounts: host.names().map((name) => {
      const { session } = host.get(name)
      return { name, state: session.state, queues: session.queueSizes() }
    })
  })
}
const ACCOUNT_ROUTES = {
  'POST /attach': async (req, host, name) => {
    const body = await readJson(req, ['lease_generation'])
    // With sessions in PostgreSQL the gateway names the lease generation it holds for the account (the fence).
    const leaseGeneration = body.lease_generation ?? null
    if (leaseGeneration !== null && (!Number.isSafeInteger(leaseGeneration) || leaseGeneration < 0)) {
      throw new WorkerError(400, 'invalid_lease_generation', 'lease_generation must be a whole number >= 0.')
    }
    if (host.pool && leaseGeneration === null) {
      throw new WorkerError(400, 'invalid_lease_generation', 'lease_generation is required: this worker keeps sessions in PostgreSQL, fenced by the account\'s lease.')
    }
    if (!host.assigned(name)) throw new WorkerError(409, 'not_assigned', `Account ${name} is not assigned to shard ${host.shard}.`)
    const { session } = await host.attach(name, { leaseGeneration })
    // `account`, not `name`: the session's status has a `name` of its own (the WhatsApp profile name)
    return { account: name, shard: host.shard, ...session.status() }
  },
  // The account's lease moved to another instance (sessions in PostgreSQL): close the session here
  // without logging out. Idempotent; an account not open here answers with `released: false`.
  'POST /release': async (req, host, name) => {
    await readJson(req, [])
    if (!host.pool) {
      throw new WorkerError(409, 'not_clustered', 'Release is for sessions in PostgreSQL (WA_DATABASE_URL); without it use detach or disconnect.')
    }
    const entry = await host.release(name)
    return entry ? { account: name, released: true, ...entry.session.status() } : { account: name, released: false }
  },
  'POST /detach': async (req, host, name) => {
    await readJson(req, [])
    // Not necessarily assigned any more: the gateway takes it out of accounts.json first.
    if (!host.get(name) && !host.hasData(name)) throw new WorkerError(404, 'account_not_found', `No account ${name} on this worker.`)
    return { name, ...(await host.remove(name)) }
  }
}

/**
 * Every route, spelled as the paths of node_worker/api/openapi.json (`{account}` for the name): the
 * document is the contract the gateway's worker_client.py relies on, and tests/test_worker_fuzz.py
 * fails when a route here is missing from it.
 */
export function routeList (routes = makeRoutes()) {
  const prefixed = (key) => key.replace(' ', ' /accounts/{account}')
  return [
    ...Object.keys(HOST_ROUTES),
    ...Object.keys(ACCOUNT_ROUTES).map(prefixed),
    ...Object.keys(routes).flatMap((key) => [key, prefixed(key)])
  ]
}

const ACCOUNT_PATH = /^\/accounts\/([^/]+)(\/.*)$/

// The account name of a path segment, or null when it is not one (not even valid percent-encoding).
const accountName = (segment) => {
  let name
  try {
    name = decodeURIComponent(segment)
  } catch {
    return null
  }
  return ACCOUNT_NAME.test(name) ? name : null
}

/**
 * The request handler: `/accounts/<name>/<route>` acts on that account, the original paths on
 * `default`. `POST /accounts/<name>/attach` opens an account the registry assigns to this worker,
 * `POST /accounts/<name>/detach` logs it out and removes its data; `GET /accounts` lists them.
 */
export function makeHandler ({ host, routes = makeRoutes() }) {
  const routePatterns = patterns(routes)
  if (host.accounts instanceof Map) changeFeed(host) // observing from the start (a stand-in host has no map)
  return async (req, url) => {
    const key = `${req.method} ${url.pathname}`
    const own = HOST_ROUTES[key]
    if (own) onlyKnown([...url.searchParams.keys()], HOST_QUERY[key] ?? [], 'query parameter')
    if (own) return own(req, host, url)
    const m = ACCOUNT_PATH.exec(url.pathname)
    let name = DEFAULT_ACCOUNT
    let sub = url.pathname
    if (m) {
      name = accountName(m[1])
      sub = m[2]
      if (name === null) throw new WorkerError(400, 'invalid_account_name', 'Not an account name.')
    }
    const onAccount = m && ACCOUNT_ROUTES[`${req.method} ${sub}`] // only as /accounts/<name>/attach|detach
    if (onAccount) {
      onlyKnown([...url.searchParams.keys()], [], 'query parameter')
      return onAccount(req, host, name)
    }
    let route = routes[`${req.method} ${sub}`]
    let params = {}
    let matchedKey = null
    if (!route) {
      const matched = matchPattern(routePatterns, req.method, sub)
      if (matched) ({ params, key: matchedKey } = matched)
      route = matched && routes[matched.key]
    }
    if (!route) throw new WorkerError(404, 'not_found', 'No such route on the worker.')
    onlyKnown([...url.searchParams.keys()], QUERY[`${req.method} ${sub}`] ?? QUERY[matchedKey] ?? [], 'query parameter')
    let account = host.get(name)
    if (!account && host.assigned(name)) account = await host.open(name)
    if (!account) throw new WorkerError(404, 'account_not_found', `No account ${name} on this worker.`)
    return route(req, url, account, params)
  }
}

// The request target's path and query, as sent: no dot segments resolved, no backslash turned into a
// slash (a WHATWG URL would do both), so the route is the one the gateway named. Only a path is a
// target here (an absolute or an asterisk target is refused).
const requestUrl = (req) => {
  if (!req.url.startsWith('/')) throw new WorkerError(400, 'invalid_path', 'The request target must be a path.')
  const q = req.url.indexOf('?')
  return {
    pathname: q < 0 ? req.url : req.url.slice(0, q),
    searchParams: new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1))
  }
}

// What Node's HTTP parser refuses before a request exists (bad framing, a body cut short, headers too
// large, too slow): the same JSON error shape, then the connection closes.
// Events per GET /events reply: the gateway reads the next page at once (its `after` is the last seq it got).
const EVENTS_PAGE = 500
const EVENTS_PAGE_MAX = 1000

const CLIENT_ERRORS = {
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'The request headers are too large.'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'The request took too long to arrive.']
}
const onClientError = (err, socket) => {
  if (!socket.writable || socket.bytesWritten > 0) return socket.destroy()
  const [status, code, message] = CLIENT_ERRORS[err.code] ?? [400, 'bad_request', 'The request is not valid HTTP.']
  const payload = JSON.stringify({ error: { code, message } })
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`)
}

export async function startServer ({ socketPath, handler, logger }) {
  await fs.rm(socketPath, { force: true })
  const server = http.createServer(async (req, res) => {
    let url = null
    let status = 200
    let body
    try {
      url = requestUrl(req)
      body = await handler(req, url)
    } catch (err) {
      if (err instanceof WorkerError) {
        status = err.status
        body = { error: { ...err.details, code: err.code, message: err.message } }
      } else {
        status = 500
        logger.error({ err, method: req.method, path: url?.pathname ?? null }, 'api.failed')
        body = { error: { code: 'worker_error', message: 'The worker failed; the detail is in its log (api.failed).' } }
      }
    }
    if (res.destroyed) return // the client went away (a body cut short): nobody to answer
    let payload
    try {
      payload = JSON.stringify(body)
    } catch (err) { // an answer that cannot be serialised is a failure of ours, answered like any other
      logger.error({ err, method: req.method, path: url?.pathname ?? null }, 'api.serialise_failed')
      status = 500
      payload = JSON.stringify({ error: { code: 'worker_error', message: 'The worker failed; the detail is in its log (api.serialise_failed).' } })
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
    res.end(payload)
  })
  server.on('clientError', onClientError)
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, resolve)
  })
  await fs.chmod(socketPath, 0o600)
  return server
}
