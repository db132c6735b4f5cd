// The JSON body reader shared by the worker's internal API and the emulator's control API
// (lib/json-body.js): UTF-8 only, one object, bounded; an oversized body is answered (413) rather than
// cut off mid-upload, and a client that goes away mid-body settles the read instead of leaving it open.
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { readJsonObject } from '../lib/json-body.js'

const fail = (why) => Object.assign(new Error(why), { why })
const read = (chunks, maxBytes = 1024) => readJsonObject(Readable.from(chunks.map((c) => Buffer.from(c))), { maxBytes, fail })
const why = (promise) => promise.then(() => 'resolved', (err) => err.why)

test('one JSON object in UTF-8; an empty body is {}', async () => {
  assert.deepEqual(await read([]), {})
  assert.deepEqual(await read(['  \n']), {})
  assert.deepEqual(await read(['{"text": "caf', 'é 👋"}']), { text: 'café 👋' })
  assert.equal(await why(read(['[1]'])), 'not_object')
  assert.equal(await why(read(['"x"'])), 'not_object')
  assert.equal(await why(read(['null'])), 'not_object')
  assert.equal(await why(read(['{"a":'])), 'not_json')
  // "é" in latin-1 is no UTF-8: refused, not turned into U+FFFD and accepted
  assert.equal(await why(read([Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d])])), 'not_json')
  // a character split across chunks is still one character
  const wave = Buffer.from('{"t": "👋"}')
  assert.deepEqual(await read([wave.subarray(0, 8), wave.subarray(8)]), { t: '👋' })
  assert.equal(await why(read(['{"a": "' + 'x'.repeat(2000) + '"}'])), 'too_large')
})

// A server that answers what readJsonObject says, as the worker's does.
const serve = async (maxBytes, seen) => {
  const server = http.createServer(async (req, res) => {
    let status = 200
    let body
    try {
      body = await readJsonObject(req, { maxBytes, fail })
    } catch (err) {
      status = err.why === 'too_large' ? 413 : 400
      body = { error: err.why }
    }
    seen.push(status === 200 ? 'ok' : body.error)
    const payload = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
    res.end(payload)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

const post = (port, body) => new Promise((resolve, reject) => {
  const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { 'content-length': body.length } }, (res) => {
    const chunks = []
    res.on('data', (c) => chunks.push(c))
    res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks)) }))
  })
  req.on('error', reject)
  req.end(body)
})

test('a body over the limit gets its 413 after it was sent whole, not a reset connection', async () => {
  const seen = []
  const server = await serve(64 * 1024, seen)
  try {
    const { port } = server.address()
    const answer = await post(port, Buffer.alloc(256 * 1024, 0x20))
    assert.deepEqual(answer, { status: 413, body: { error: 'too_large' } })
    assert.equal((await post(port, Buffer.from('{"ok": true}'))).status, 200)
    // past 16 times the limit the connection is cut instead of read on
    await assert.rejects(post(port, Buffer.alloc(64 * 1024 * 16 + 1, 0x20)))
    assert.equal(seen.at(-1), 'too_large')
  } finally {
    server.close()
  }
})

test('a client that goes away mid-body settles the read (incomplete)', async () => {
  const seen = []
  const server = await serve(1024, seen)
  try {
    const sock = net.connect(server.address().port, '127.0.0.1')
    await new Promise((resolve) => sock.on('connect', resolve))
    sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":')
    await new Promise((resolve) => setTimeout(resolve, 50))
    sock.destroy()
    const deadline = Date.now() + 2000
    while (!seen.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.deepEqual(seen, ['incomplete'])
  } finally {
    server.close()
  }
})
