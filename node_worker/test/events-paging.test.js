// The worker's event hand-over is paged (src/server.js GET /events): a backlog of thousands of events (the
// gateway away for long) goes out in pages of at most `limit`, never in one reply, and an answer that
// cannot be serialised is a 500 in the error shape, not a crashed worker.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs'
import { EventJournal } from '../src/event-journal.js'
import { makeLogger } from '../lib/logger.js'
import { makeHandler, makeRoutes, startServer } from '../src/server.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-paging-'))
const socketPath = path.join(dir, 'worker.sock')
const journal = new EventJournal({ capacity: 100000 })
const logged = []
let server
before(async () => {
  for (let n = 0; n < 2500; n++) await journal.push('message', { id: `M${n}`, text: 'x' }, `e${n}`)
  const host = { get: () => ({ journal, session: {} }), assigned: () => false }
  const routes = { ...makeRoutes(), 'GET /unserialisable': async () => ({ n: 1n }) }
  server = await startServer({ socketPath, handler: makeHandler({ host, routes }), logger: makeLogger({ level: 'error', write: (l) => logged.push(l) }) })
})
after(async () => {
  await new Promise((resolve) => server?.close(resolve))
  fs.rmSync(dir, { recursive: true, force: true })
})

const get = (p) => new Promise((resolve, reject) => {
  http.get({ socketPath, path: p }, (res) => {
    let text = ''
    res.on('data', (d) => { text += d })
    res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text), bytes: text.length }))
  }).on('error', reject)
})

test('a backlog is handed over in pages: at most `limit` (default 500, at most 1000), `more` until the end', async () => {
  const first = await get('/events?after=0')
  assert.equal(first.body.events.length, 500)
  assert.equal(first.body.more, true)
  assert.equal((await get('/events?after=0&limit=5000')).body.events.length, 1000, 'clamped')
  assert.equal((await get('/events?after=0&limit=0')).body.events.length, 500, 'nonsense is the default')
  const seen = []
  let after = 0
  for (;;) {
    const page = (await get(`/events?after=${after}&limit=700`)).body
    seen.push(...page.events.map((e) => e.seq))
    if (!page.more) break
    after = page.events.at(-1).seq
  }
  assert.deepEqual(seen, Array.from({ length: 2500 }, (_, n) => n + 1), 'every event once, in order')
})

test('an answer that cannot be serialised is a 500 worker_error with no detail, and the worker goes on', async () => {
  const res = await get('/unserialisable')
  assert.equal(res.status, 500)
  assert.equal(res.body.error.code, 'worker_error')
  assert.doesNotMatch(res.body.error.message, /BigInt/, 'the detail is in the log, not in the answer')
  assert.ok(logged.some((l) => l.includes('api.serialise_failed')))
  assert.equal((await get('/events?after=2499')).body.events.length, 1)
})
