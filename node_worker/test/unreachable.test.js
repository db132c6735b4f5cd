// A server that cannot be reached is a named state with its cause (src/network-cause.js), not an endless
// `connecting` with a "(408)" that reads like an HTTP timeout. Each case points a real session (the real
// Baileys) at a real failure made here: a name that does not resolve, a closed port, a peer that speaks no
// TLS, an HTTP server that refuses the websocket, a peer that never answers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { tmpDir, until } from './emulator-helpers.js'
import { classifyConnectFailure } from '../src/network-cause.js'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { WhatsAppSession } from '../src/session.js'
import { readSettings } from '../src/settings.js'

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
const closedPort = async () => {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function unreachableSession (serverUrl, env = {}) {
  const settings = readSettings({
    WA_DATA_DIR: tmpDir('wa-unreachable-'), WA_SERVER_URL: serverUrl, WA_BAILEYS_LOG_LEVEL: 'silent',
    WA_RECONNECT_BASE_MS: '150', WA_RECONNECT_MAX_MS: '300', WA_CONNECT_TIMEOUT_MS: '1500', ...env
  })
  const lines = []
  const journal = new EventJournal({ capacity: 1000 })
  const session = new WhatsAppSession({ settings, logger: makeLogger({ level: 'debug', write: (l) => lines.push(l) }), journal })
  await session.start()
  return { session, journal, lines }
}

async function expectCause (serverUrl, cause, detail) {
  const { session, journal } = await unreachableSession(serverUrl)
  try {
    await until(() => session.state === 'whatsapp_unreachable', 15000, `whatsapp_unreachable (${cause})`)
    const status = session.status()
    assert.equal(status.unreachable.cause, cause, JSON.stringify(status.unreachable))
    assert.match(status.unreachable.detail, detail)
    assert.ok(status.unreachable.hint.length > 10)
    assert.match(status.last_error, new RegExp(`^WhatsApp is unreachable \\(${cause}\\)`))
    assert.equal(status.registered, false) // never linked
    // It keeps trying, in the same state, with the first failure's time kept.
    const since = status.unreachable.since
    await until(() => session.unreachable?.attempts >= 3, 15000, 'three attempts')
    assert.equal(session.state, 'whatsapp_unreachable')
    assert.equal(session.unreachable.since, since)
    const events = journal.after(0).filter((e) => e.type === 'session.status')
    const first = events.find((e) => e.state === 'whatsapp_unreachable')
    assert.equal(first.unreachable.cause, cause)
    // A state event on entering, not one per failed attempt.
    assert.equal(events.filter((e) => e.state === 'whatsapp_unreachable').length, 1)
    // A send says why it cannot go now.
    const refusal = session.lifecycle.notConnected()
    assert.equal(refusal.code, 'not_connected')
    assert.equal(refusal.details.unreachable.cause, cause)
  } finally {
    await session.shutdown()
  }
}

test('a name that does not resolve is dns', () => expectCause('ws://wa-gateway-test.invalid:443/ws', 'dns', /ENOTFOUND|EAI_AGAIN/))

test('a closed port is refused', async () => expectCause(`ws://127.0.0.1:${await closedPort()}/ws`, 'refused', /ECONNREFUSED/))

test('a peer that speaks no TLS to wss:// is tls', async () => {
  const server = net.createServer((sock) => sock.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
  const port = await listen(server)
  try {
    await expectCause(`wss://127.0.0.1:${port}/ws`, 'tls', /SSL|TLS|EPROTO|wrong version/i)
  } finally {
    server.close()
  }
})

test('an HTTP server that refuses the websocket is network, with its status', async () => {
  const server = http.createServer((req, res) => { res.writeHead(403); res.end('no') })
  const port = await listen(server)
  try {
    await expectCause(`ws://127.0.0.1:${port}/ws`, 'network', /Unexpected server response: 403/)
  } finally {
    server.close()
  }
})

test('a peer that accepts and never answers is timeout', async () => {
  const held = []
  const server = net.createServer((sock) => held.push(sock))
  const port = await listen(server)
  try {
    await expectCause(`ws://127.0.0.1:${port}/ws`, 'timeout', /timed out/i)
  } finally {
    for (const sock of held) sock.destroy()
    server.close()
  }
})

test('once the server answers, the state leaves whatsapp_unreachable and the cause is gone', async () => {
  // A port that refuses, then an HTTP server on it that answers (the websocket is refused with 426, but
  // the websocket then *reached* a server: any later failure is no longer "refused").
  const port = await closedPort()
  const { session, journal } = await unreachableSession(`ws://127.0.0.1:${port}/ws`)
  const server = http.createServer((req, res) => { res.writeHead(426); res.end() })
  try {
    await until(() => session.unreachable?.cause === 'refused', 15000, 'refused')
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
    await until(() => session.unreachable?.cause === 'network', 15000, 'the server answering 426')
    assert.equal(session.state, 'whatsapp_unreachable')
    await session.lifecycle.logout()
    assert.equal(session.status().unreachable, null)
    const last = journal.after(0).filter((e) => e.type === 'session.status').at(-1)
    assert.equal(last.state, 'logged_out')
    assert.equal(last.unreachable, null)
  } finally {
    server.close()
    await session.shutdown()
  }
})

test('the classifier: errors as Baileys wraps them, and through a proxy', () => {
  const boom = (data) => Object.assign(new Error(`WebSocket Error (${data.message})`), { output: { statusCode: 408 }, data })
  const sys = (code, message) => Object.assign(new Error(message), { code })
  assert.equal(classifyConnectFailure(boom(sys('ENOTFOUND', 'getaddrinfo ENOTFOUND x'))).cause, 'dns')
  assert.equal(classifyConnectFailure(boom(sys('EAI_AGAIN', 'getaddrinfo EAI_AGAIN x'))).cause, 'dns')
  assert.equal(classifyConnectFailure(boom(sys('ECONNREFUSED', 'connect ECONNREFUSED'))).cause, 'refused')
  assert.equal(classifyConnectFailure(boom(sys('CERT_HAS_EXPIRED', 'certificate has expired'))).cause, 'tls')
  assert.equal(classifyConnectFailure(boom(sys('ETIMEDOUT', 'connect ETIMEDOUT'))).cause, 'timeout')
  assert.equal(classifyConnectFailure(boom(sys('EHOSTUNREACH', 'connect EHOSTUNREACH'))).cause, 'network')
  // Through a proxy every failure to reach is the proxy's to explain, but TLS runs end to end.
  assert.equal(classifyConnectFailure(boom(sys('ECONNREFUSED', 'connect ECONNREFUSED')), { proxied: true }).cause, 'proxy')
  assert.equal(classifyConnectFailure(boom(sys('CERT_HAS_EXPIRED', 'certificate has expired')), { proxied: true }).cause, 'tls')
  assert.equal(classifyConnectFailure(boom(new Error('Socks5 proxy rejected connection - Failure'))).cause, 'proxy')
  assert.equal(classifyConnectFailure(boom(new Error('Unexpected server response: 407'))).cause, 'proxy')
  // What is no failure to reach: a server that answered and closed, a stream error, a logout.
  assert.equal(classifyConnectFailure(Object.assign(new Error('Connection Closed'), { output: { statusCode: 428 } })), null)
  assert.equal(classifyConnectFailure(Object.assign(new Error('Stream Errored (conflict)'), { output: { statusCode: 440 } })), null)
  assert.equal(classifyConnectFailure(undefined), null)
})
