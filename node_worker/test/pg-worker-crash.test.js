// The real worker process (src/main.js) with its sessions in PostgreSQL, killed with SIGKILL in the middle
// of traffic both ways; a new worker process on another "machine" (an empty data directory, another
// instance id, the next lease generation) logs in from what PostgreSQL holds: no QR, and messages still
// decrypt both ways (the Signal state in PostgreSQL is consistent). Real Baileys against the emulator.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { BufferJSON } from 'baileys'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { pgMissing, startPostgres } from './pg-helpers.js'

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url))
const PHONE = '+15550008001'
const CONTACT = '+15550008009'
const skip = pgMissing() ?? false
if (skip) console.log(`# pg-worker-crash tests skipped: ${skip}`)

let emu
let pg
let current // the owner the first test leaves running
const workers = new Set()
before(async () => {
  if (skip) return
  ;[emu, pg] = await Promise.all([startEmulator(), startPostgres()])
})
after(async () => {
  if (process.env.WA_TEST_LOG_DUMP) fs.writeFileSync(process.env.WA_TEST_LOG_DUMP, [...workers].map((w) => w.lines.join('\n')).join('\n'))
  for (const w of workers) await w.stop()
  await emu?.stop()
  await pg?.stop()
})

function startWorker (instanceId) {
  const dataDir = tmpDir('wa-pgcrash-')
  fs.mkdirSync(path.join(dataDir, 'run'), { mode: 0o700 }) // the launcher makes it
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      WA_DATA_DIR: dataDir,
      WA_SERVER_URL: emu.wsUrl,
      WA_SANDBOX: 'true', // what `wa-gateway sandbox` sets: the root key is refused without it
      WA_SANDBOX_ROOT_KEY: emu.rootPublicKey,
      WA_DATABASE_URL: pg.url,
      WA_INSTANCE_ID: instanceId,
      WA_LOG_FORMAT: 'json',
      WA_LOG_LEVEL: process.env.DBG_LEVEL || 'info',
      WA_BAILEYS_LOG_LEVEL: process.env.DBG_BAILEYS || 'error'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines = []
  readline.createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l))
  proc.stderr.on('data', (d) => lines.push(String(d)))
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
  const socketPath = path.join(dataDir, 'run', 'worker-0.sock')
  const call = (method, p, body) => new Promise((resolve, reject) => {
    const payload = body === undefined ? '' : JSON.stringify(body)
    const req = http.request({ socketPath, method, path: p, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end(payload)
  })
  const w = {
    proc,
    lines,
    call,
    dataDir,
    exited,
    ready: () => until(() => {
      if (proc.exitCode !== null) throw new Error(`the worker exited: ${lines.join('\n').slice(-2000)}`)
      return lines.some((l) => l.includes('"worker.started"'))
    }, 15000, 'worker.started'),
    status: async () => (await call('GET', '/status')).body,
    async stop () {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000)
      await exited
      clearTimeout(t)
      workers.delete(w)
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
  workers.add(w)
  return w
}

// Traffic in one direction while the worker is killed: sends (the Signal sessions ratchet with every
// message out) or a contact's messages (decryption: the key change and the decryption result, both in
// PostgreSQL, see decrypt-cache.js). Resolves once `count` went through, then keeps going until stopped.
function traffic (worker, direction) {
  let stop = false
  let done = 0
  const ids = [] // the contact's messages
  const loop = (async () => {
    for (let n = 0; !stop; n++) {
      if (direction === 'out') {
        const r = await worker.call('POST', '/send', { phone_number: CONTACT, text: `out ${n}`, id: `CRASHOUT${worker.tag}${String(n).padStart(5, '0')}` }).catch(() => null)
        if (r?.status !== 200) return
      } else {
        const r = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: PHONE, text: `in ${n}` })
        if (r.status !== 200) return
        ids.push(r.body.id)
      }
      done++
    }
  })()
  return { count: () => done, ids, stop: () => { stop = true; return loop } }
}

// Logs in from PostgreSQL as `instanceId` with the next generation: no QR, and messages both ways.
async function takeOver (instanceId, tag) {
  const { rows: [lease] } = await pg.query('UPDATE leases SET owner = $2, generation = generation + 1 WHERE account = $1 RETURNING generation::int AS generation',
    ['default', instanceId])
  const w = startWorker(instanceId)
  w.tag = tag
  await w.ready()
  const attached = await w.call('POST', '/accounts/default/attach', { lease_generation: lease.generation })
  assert.equal(attached.status, 200, JSON.stringify(attached.body))
  await until(async () => (await w.status()).state === 'connected', 20000, `${instanceId} connected`)
  assert.ok(!w.lines.some((l) => l.includes('"state":"qr"')), 'no QR')
  for (let n = 0; n < 2; n++) {
    const id = `AFTER${tag}${n}0000`
    assert.equal((await w.call('POST', '/send', { phone_number: CONTACT, text: `after ${tag} ${n}`, id })).status, 200)
    const seen = await until(async () => (await emu.api('GET', `/contacts/${encodeURIComponent(CONTACT)}/messages`)).body.find((m) => m.id === id),
      10000, `${tag}: message ${n} at the contact`)
    assert.equal(seen.text, `after ${tag} ${n}`, 'decrypted by the contact')
    const msg = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: PHONE, text: `back ${tag} ${n}` })
    const got = await until(async () => (await w.call('GET', '/events?after=0')).body.events.find((e) => e.type === 'message' && e.id === msg.body.id),
      10000, `${tag}: reply ${n} in the journal`)
    assert.equal(got.text, `back ${tag} ${n}`)
  }
  return { worker: w, generation: lease.generation }
}

// What PostgreSQL holds is whole: every row parses, the identity is the paired one.
async function assertWhole (generations) {
  const { rows } = await pg.query('SELECT key, value, generation::int AS generation FROM wa_auth WHERE account = $1', ['default'])
  for (const r of rows) assert.doesNotThrow(() => JSON.parse(r.value, r.key.startsWith('decrypted/') ? undefined : BufferJSON.reviver), r.key)
  assert.ok(JSON.parse(rows.find((r) => r.key === 'creds').value).me?.id, 'the paired identity')
  assert.ok(rows.every((r) => generations.includes(r.generation)), 'only the owners wrote')
}

async function killMidTraffic (worker, direction, t) {
  const load = traffic(worker, direction)
  await until(() => load.count() >= 5, 15000, `${direction} traffic under way`)
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 300))
  worker.proc.kill('SIGKILL')
  assert.equal((await worker.exited).signal, 'SIGKILL')
  await load.stop()
  t.diagnostic(`killed mid-${direction} traffic after ${load.count()} messages`)
  return load
}

test('kill -9 mid-traffic: another worker logs in from PostgreSQL without QR and messages decrypt both ways', { skip }, async (t) => {
  await pg.grant('default', 'inst-a', 1)
  const a = startWorker('inst-a')
  a.tag = 'A'
  await a.ready()
  assert.equal((await a.call('POST', '/accounts/default/attach', {})).status, 400, 'lease_generation is required')
  assert.equal((await a.call('POST', '/accounts/default/attach', { lease_generation: 1 })).status, 200)
  const started = (await a.call('POST', '/connect', { wait_ms: 10000 })).body
  assert.equal(started.state, 'qr')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: PHONE, qr: started.qr })).status, 200)
  await until(async () => (await a.status()).state === 'connected', 20000, 'connected')

  // A contact's messages arriving when the worker dies: decrypted, key change committed, receipt maybe not sent.
  const inbound = await killMidTraffic(a, 'in', t)
  await assertWhole([1])
  assert.ok(!a.lines.some((l) => l.includes(pg.password)), 'the database password is never logged')
  assert.ok(a.lines.some((l) => l.includes('"session_store":"postgresql://wa_test@127.0.0.1')), 'the store is named, without its password')
  // The dead machine's disk is gone with it: nothing may have been left there.
  fs.rmSync(a.dataDir, { recursive: true, force: true })
  const { worker: b, generation } = await takeOver('inst-b', 'B')
  // None of the contact's messages is lost in the handover: what the dead worker had journaled (and so maybe
  // acknowledged to WhatsApp) is in PostgreSQL and taken over by the new one; what it had not is delivered
  // again to the new one, which decrypts it (from the decryption results in PostgreSQL when the dead one had
  // already committed the key change). No gateway acknowledged anything here: the new journal has them all.
  await until(async () => {
    const inB = new Set((await b.call('GET', '/events?after=0')).body.events.filter((e) => e.type === 'message').map((e) => e.id))
    return inbound.ids.every((id) => inB.has(id))
  }, 10000, 'every message of the contact in the new owner\'s journal')

  // Our messages going out when the worker dies.
  await killMidTraffic(b, 'out', t)
  await assertWhole([1, generation])
  current = (await takeOver('inst-c', 'C')).worker
})

test('a retry receipt for a message the dead instance sent is answered by the next owner (sent messages in PostgreSQL)', { skip }, async () => {
  assert.ok(current, 'the first test left an owner')
  // The contact's phone cannot decrypt our next message once, and its retry receipt waits at the server for
  // the device's next login: the instance that sent the message is dead by then, its disk gone.
  const contact = '+15550008019'
  const res = await emu.api('POST', '/contacts', { phone_number: contact, fail_decrypt_once: true, retry_receipt: 'next_login' })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal((await current.call('POST', '/send', { phone_number: contact, text: 'asked again later', id: 'PGRETRY000001' })).status, 200)
  const retried = () => emu.api('GET', '/').then((r) => r.body.contacts.find((c) => c.phone_number === contact)?.retry_receipts_sent)
  await until(async () => (await retried()) === 1, 10000, 'the contact\'s retry receipt')
  current.proc.kill('SIGKILL')
  await current.exited
  fs.rmSync(current.dataDir, { recursive: true, force: true })
  await takeOver('inst-d', 'D')
  const seen = await until(async () => (await emu.api('GET', `/contacts/${encodeURIComponent(contact)}/messages`)).body.find((m) => m.id === 'PGRETRY000001' && m.text),
    15000, 'the message resent by the new owner and decrypted')
  assert.equal(seen.text, 'asked again later')
  assert.equal(seen.duplicate_count, 0)
})
