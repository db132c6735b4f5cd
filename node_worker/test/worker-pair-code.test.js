// Linking the worker by pairing code (POST /connect with phone_number), the real worker process and Baileys
// against the emulator's phone: the status shows the code while it waits, a wrong code links nothing, the
// right one links, and the worker logs straight back in after a restart without any code.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, until } from './emulator-helpers.js'
import { startWorker } from './worker-process.js'

const ACCOUNT = '+15550008101'
const CODE = /^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$/

describe('worker linking by pairing code', () => {
  let emu
  const workers = []
  const start = async (opts) => { const w = startWorker(emu, {}, opts); workers.push(w); await w.ready(); return w }
  before(async () => { emu = await startEmulator() })
  after(async () => {
    for (const w of workers) await w.stop()
    await emu?.stop()
  })

  test('connect with phone_number shows the code; a wrong one fails, the right one links; a restart logs in', async () => {
    const worker = await start()
    const bad = await worker.call('POST', '/connect', { phone_number: '15550008101' })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'invalid_phone_number')
    const res = await worker.call('POST', '/connect', { phone_number: ACCOUNT, wait_ms: 15000 })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.state, 'pairing_code')
    assert.match(res.body.pairing_code, CODE)
    assert.equal(res.body.qr, null)
    assert.equal(res.body.registered, false)
    const code = res.body.pairing_code
    const wrong = `${code[0] === 'A' ? 'B' : 'A'}${code.slice(1)}`
    const refused = await emu.api('POST', '/phone/pair-code', { phone_number: ACCOUNT, code: wrong })
    assert.equal(refused.status, 400)
    assert.equal(refused.body.error.code, 'wrong_code')
    const waiting = (await worker.call('GET', '/status')).body
    assert.equal(waiting.state, 'pairing_code')
    assert.equal(waiting.pairing_code, code)
    const linked = await emu.api('POST', '/phone/pair-code', { phone_number: ACCOUNT, code })
    assert.equal(linked.status, 200, JSON.stringify(linked.body))
    const connected = await until(async () => {
      const s = (await worker.call('GET', '/status')).body
      return s.state === 'connected' && s
    }, 20000, 'connected')
    assert.equal(connected.phone_number, ACCOUNT)
    assert.equal(connected.pairing_code, null)
    for (const secret of [code, code.replace('-', '')]) {
      assert.ok(!worker.lines.some((l) => l.includes(secret)), 'the code is in no log line')
    }
    await worker.stop()
    const again = await start({ dataDir: worker.dataDir })
    const back = await until(async () => {
      const s = (await again.call('GET', '/status')).body
      return s.state === 'connected' && s
    }, 20000, 'connected again after a restart')
    assert.equal(back.phone_number, ACCOUNT)
    assert.ok(!again.lines.some((l) => l.includes('session.pairing_code')), 'no code asked again')
  })
  test('a worker restarted while waiting for its code starts unlinked and asks for a new code that links', async () => {
    const phone = '+15550008102'
    const first = await start()
    const res = await first.call('POST', '/connect', { phone_number: phone, wait_ms: 15000 })
    assert.equal(res.body.state, 'pairing_code')
    await first.stop()
    const second = await start({ dataDir: first.dataDir })
    assert.equal((await second.call('GET', '/status')).body.state, 'stopped', 'an unfinished code is no link to resume')
    const again = await second.call('POST', '/connect', { phone_number: phone, wait_ms: 15000 })
    assert.equal(again.body.state, 'pairing_code', JSON.stringify(again.body))
    const linked = await emu.api('POST', '/phone/pair-code', { phone_number: phone, code: again.body.pairing_code })
    assert.equal(linked.status, 200, JSON.stringify(linked.body))
    await until(async () => (await second.call('GET', '/status')).body.state === 'connected', 20000, 'connected')
  })
  test('WhatsApp refusing a code (too many for the number, a number not on it) stops the session, saying why', async () => {
    const phone = '+15550008104'
    const worker = await start()
    const codes = new Set()
    let res
    for (let n = 0; n < 10; n++) { // the emulator takes 5 codes per number and hour (WA_EMULATOR_PAIR_CODE_LIMIT)
      res = await worker.call('POST', '/connect', { phone_number: phone, wait_ms: 15000 })
      if (res.status !== 200) break
      assert.equal(res.body.state, 'pairing_code', JSON.stringify(res.body))
      codes.add(res.body.pairing_code)
    }
    assert.equal(codes.size, 5)
    assert.equal(res.status, 429, JSON.stringify(res.body))
    assert.equal(res.body.error.code, 'pairing_rate_limited')
    const stopped = await until(async () => {
      const s = (await worker.call('GET', '/status')).body
      return s.state === 'stopped' && s
    }, 20000, 'stopped')
    assert.match(stopped.last_error, /^pairing_rate_limited: .*429 rate-overlimit/)
    assert.equal(stopped.pairing_code, null)

    const absent = '+15550008105'
    assert.equal((await emu.api('POST', '/contacts', { phone_number: absent, on_whatsapp: false })).status, 200)
    const other = await start()
    const refused = await other.call('POST', '/connect', { phone_number: absent, wait_ms: 15000 })
    assert.equal(refused.status, 422, JSON.stringify(refused.body))
    assert.equal(refused.body.error.code, 'pairing_code_refused')
    const after = (await other.call('GET', '/status')).body
    assert.equal(after.state, 'stopped')
    assert.match(after.last_error, /^pairing_code_refused: .*400 bad-request/)
  })
  test('a code nobody enters ends like an unscanned QR: stopped, pairing_code_expired', async () => {
    const worker = startWorker(emu, { WA_QR_TIMEOUT_MS: '1000' }) // the emulator's 3 refs: ~3 s
    workers.push(worker)
    await worker.ready()
    const res = await worker.call('POST', '/connect', { phone_number: '+15550008103', wait_ms: 15000 })
    assert.equal(res.body.state, 'pairing_code')
    const stopped = await until(async () => {
      const s = (await worker.call('GET', '/status')).body
      return s.state === 'stopped' && s
    }, 20000, 'stopped')
    assert.match(stopped.last_error, /^pairing_code_expired: /)
    assert.equal(stopped.pairing_code, null)
  })
})
