// Linking by pairing code against the emulator, with the real Baileys client: the companion asks for a
// code (requestPairingCode), the phone's user types it (POST /phone/pair-code), and the device logs in
// like one linked by QR; a wrong, expired or misdirected code links nothing.
import { test, before, after, afterEach, describe } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, trustEmulator, openClient, tmpDir, sleep, until } from './emulator-helpers.js'

const TTL_MS = 4000
const LIMIT = 2 // codes per number and window (WA_EMULATOR_PAIR_CODE_LIMIT)
const format = (code) => `${code.slice(0, 4)}-${code.slice(4)}`

describe('pairing code with the real Baileys client', () => {
  let emu
  const clients = []
  const open = async (authDir) => { const c = await openClient(emu, authDir); clients.push(c); return c }
  // a companion waiting to be linked that asked for a code for `phone`: its client and the code it shows
  const ask = async (phone, authDir = tmpDir()) => {
    const client = await open(authDir)
    await client.waitFor((r) => r.qrs[0], 10000, 'the pairing connection')
    const frames = []
    client.sock.ws.on('frame', (f) => frames.push(f))
    const code = await client.sock.requestPairingCode(phone.slice(1))
    return { client, code, authDir, frames }
  }
  // the server's answer to the hello: 'result', or the error iq's 'code text' (Baileys does not wait for it)
  const answer = async (frames) => {
    const iq = await until(() => frames.find((f) => f.tag === 'iq' && (f.attrs.type === 'error' ||
      f.content?.[0]?.tag === 'link_code_companion_reg')), 5000, 'the answer to the hello')
    if (iq.attrs.type !== 'error') return 'result'
    return `${iq.content[0].attrs.code} ${iq.content[0].attrs.text}`
  }
  const enter = (phone, code) => emu.api('POST', '/phone/pair-code', { phone_number: phone, code })

  before(async () => {
    emu = await startEmulator({ env: { WA_EMULATOR_PAIR_CODE_TTL_MS: String(TTL_MS), WA_EMULATOR_PAIR_CODE_LIMIT: String(LIMIT) } })
    trustEmulator(emu)
  })
  afterEach(async () => { for (const c of clients.splice(0)) await c.end().catch(() => {}) })
  after(async () => { if (emu) await emu.stop() })

  test('links by code, then logs in again after a restart without one', async () => {
    const phone = '+15550007001'
    const { client, code, authDir } = await ask(phone)
    assert.match(code, /^[1-9A-HJ-NP-TV-Z]{8}$/)
    const res = await enter(phone, format(code.toLowerCase()))
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.match(res.body.jid, /^15550007001:1@s\.whatsapp\.net$/)
    await client.waitClose(5000)
    assert.equal(client.closeCode(), 515)
    await client.flushCreds()
    const second = await open(authDir)
    await second.waitOpen(10000)
    assert.equal(second.sock.user.id, res.body.jid)
    await second.end()
    const third = await open(authDir) // a restart: the stored creds log in, no code asked
    await third.waitOpen(10000)
    assert.equal(third.rec.qrs.length, 0)
  })

  test('a wrong code links nothing and the right one still does', async () => {
    const phone = '+15550007002'
    const { client, code } = await ask(phone)
    const wrong = code.startsWith('A') ? `B${code.slice(1)}` : `A${code.slice(1)}`
    const res = await enter(phone, wrong)
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'wrong_code')
    await sleep(500)
    assert.equal(client.rec.closed, null, 'no pair-success, no 515')
    assert.equal((await emu.api('GET', '/')).body.connections.some((c) => c.jid?.startsWith('15550007002:')), false)
    const ok = await enter(phone, code)
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    await client.waitClose(5000)
    assert.equal(client.closeCode(), 515)
  })

  test('a code for another number, an expired code and a malformed one are refused', async () => {
    const phone = '+15550007003'
    const { client, code } = await ask(phone)
    const other = await enter('+15550007099', code)
    assert.equal(other.status, 409)
    assert.equal(other.body.error.code, 'wrong_phone_number')
    const malformed = await enter(phone, 'ABC-0OIU')
    assert.equal(malformed.status, 400)
    assert.equal(malformed.body.error.code, 'invalid_code')
    await sleep(TTL_MS + 200)
    const late = await enter(phone, code)
    assert.equal(late.status, 410)
    assert.equal(late.body.error.code, 'expired_code')
    assert.equal(client.rec.closed?.error?.output?.statusCode === 515, false)
  })

  test('more codes for one number than the limit allows are refused (429), as is a number not on WhatsApp (400)', async () => {
    const phone = '+15550007005'
    const answers = []
    let last
    for (let n = 0; n <= LIMIT; n++) {
      last = await ask(phone)
      answers.push(await answer(last.frames))
      if (n < LIMIT) await last.client.end()
    }
    assert.deepEqual(answers, [...Array(LIMIT).fill('result'), '429 rate-overlimit'])
    const refused = await enter(phone, last.code) // the code Baileys returned anyway links nothing
    assert.equal(refused.status, 404, JSON.stringify(refused.body))
    assert.equal(refused.body.error.code, 'no_pairing_request')
    const absent = '+15550007006'
    assert.equal((await emu.api('POST', '/contacts', { phone_number: absent, on_whatsapp: false })).status, 200)
    assert.equal(await answer((await ask(absent)).frames), '400 bad-request')
  })

  test('no companion waiting: 404', async () => {
    const res = await enter('+15550007004', 'ABCDEFGH')
    assert.equal(res.status, 404)
    assert.equal(res.body.error.code, 'no_pairing_request')
  })
})
