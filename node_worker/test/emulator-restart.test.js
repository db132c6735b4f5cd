// The emulator's phone reading the QR from the gateway, and a linked device logging straight back in after
// an emulator restart (its state file).
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { startEmulator, trustEmulator, openClient, pairDevice, tmpDir, until, statusOf, inbox, inboxEntry } from './emulator-helpers.js'

const ACCOUNT = '+15550001111'
const CONTACT = '+15550002222'
const CONTACT_JID = '15550002222@s.whatsapp.net'


describe('scan without a qr', () => {
  test('with WA_EMULATOR_GATEWAY_URL the phone reads the QR from the gateway /status (X-API-Key sent)', async () => {
    let currentQr = null
    const seenKeys = []
    const gw = http.createServer((req, res) => {
      seenKeys.push(req.headers['x-api-key'])
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: currentQr ? 'qr' : 'connecting', qr: currentQr }))
    })
    const dir = tmpDir()
    const clients = []
    let emu
    try {
      await new Promise((resolve) => gw.listen(0, '127.0.0.1', resolve))
      emu = await startEmulator({ env: { WA_EMULATOR_GATEWAY_URL: `http://127.0.0.1:${gw.address().port}`, WA_API_KEY: 'k-123' } })
      trustEmulator(emu)
      const noQrYet = await emu.api('POST', '/phone/scan', { phone_number: '+15550008888' })
      assert.equal(noQrYet.status, 409)
      assert.equal(noQrYet.body.error.code, 'gateway_has_no_qr')
      const first = await openClient(emu, dir)
      clients.push(first)
      currentQr = await first.waitFor((r) => r.qrs[0], 10000, 'qr')
      const scan = await emu.api('POST', '/phone/scan', { phone_number: '+15550008888' })
      assert.equal(scan.status, 200)
      assert.equal(scan.body.phone_number, '+15550008888')
      assert.ok(seenKeys.length >= 2 && seenKeys.every((k) => k === 'k-123'))
      await first.waitClose(5000)
      assert.equal(first.closeCode(), 515)
      await first.flushCreds()
      const c = await openClient(emu, dir)
      clients.push(c)
      await c.waitOpen(10000)
      assert.equal(c.sock.user.id.split(':')[0], '15550008888')
    } finally {
      for (const c of clients) await c.end().catch(() => {})
      await emu?.stop()
      gw.close()
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
    }
  })
})

describe('scan without a qr for an account other than default', () => {
  test('`account` in the body reads /accounts/{account}/status; 409 only when that account shows no QR', async () => {
    const qrs = {}
    const paths = []
    const gw = http.createServer((req, res) => {
      paths.push(req.url)
      const account = req.url === '/status' ? 'default' : (req.url.match(/^\/accounts\/([^/]+)\/status$/) || [])[1]
      if (!account || (account !== 'default' && account !== 'sales')) {
        res.writeHead(404, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ error: { code: 'account_not_found', message: 'no such account' } }))
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ state: qrs[account] ? 'qr' : 'connected', qr: qrs[account] ?? null }))
    })
    const dir = tmpDir()
    const clients = []
    let emu
    try {
      await new Promise((resolve) => gw.listen(0, '127.0.0.1', resolve))
      emu = await startEmulator({ env: { WA_EMULATOR_GATEWAY_URL: `http://127.0.0.1:${gw.address().port}`, WA_API_KEY: 'k-123' } })
      trustEmulator(emu)
      const first = await openClient(emu, dir)
      clients.push(first)
      qrs.sales = await first.waitFor((r) => r.qrs[0], 10000, 'qr')
      // `default` (linked, no QR) really shows none: a true 409 that says which account and its state.
      const noQr = await emu.api('POST', '/phone/scan', { phone_number: '+15550008888' })
      assert.equal(noQr.status, 409)
      assert.equal(noQr.body.error.code, 'gateway_has_no_qr')
      assert.match(noQr.body.error.message, /account default shows no QR code \(state connected\)/)
      const unknown = await emu.api('POST', '/phone/scan', { phone_number: '+15550008888', account: 'nobody' })
      assert.equal(unknown.status, 404)
      assert.equal(unknown.body.error.code, 'account_not_found')
      const bad = await emu.api('POST', '/phone/scan', { phone_number: '+15550008888', account: '../status' })
      assert.equal(bad.status, 400)
      const scan = await emu.api('POST', '/phone/scan', { phone_number: '+15550008888', account: 'sales' })
      assert.equal(scan.status, 200, JSON.stringify(scan.body))
      assert.equal(scan.body.phone_number, '+15550008888')
      assert.ok(paths.includes('/accounts/sales/status'), paths.join(' '))
    } finally {
      for (const c of clients) await c.end().catch(() => {})
      await emu?.stop()
      gw.close()
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
    }
  })
})

describe('state file', () => {
  test('a linked device logs straight back in after an emulator restart, with working sessions', async () => {
    const dir = tmpDir()
    const env = { WA_EMULATOR_STATE_FILE: path.join(dir, 'state.json'), WA_EMULATOR_RECEIPT_DELAY_MS: '50' }
    const clients = []
    let emu
    try {
      emu = await startEmulator({ env })
      trustEmulator(emu)
      const rootBefore = emu.rootPublicKey
      assert.ok(fs.existsSync(path.join(dir, 'wa-emulator-root-key.json')))
      const { client, authDir } = await pairDevice(emu, ACCOUNT)
      clients.push(client)
      await client.sock.sendMessage(CONTACT_JID, { text: 'before restart' }, { messageId: 'EMUSTATE0001' })
      await client.waitFor(() => statusOf(client, 'EMUSTATE0001') >= 3, 5000, 'delivery')
      await client.end()
      await until(async () => (await emu.api('GET', '/')).body.connections.length === 0, 2000, 'the connection to close')
      assert.equal((await emu.stop()).code, 0)
      assert.ok(fs.existsSync(path.join(dir, 'state.json')))

      emu = await startEmulator({ env })
      assert.equal(emu.rootPublicKey, rootBefore)
      trustEmulator(emu)
      const c = await openClient(emu, authDir)
      clients.push(c)
      await c.waitOpen(10000)
      assert.equal(c.rec.qrs.length, 0)
      const before = await inbox(emu, CONTACT)
      assert.equal(before.find((m) => m.id === 'EMUSTATE0001')?.text, 'before restart')
      await c.sock.sendMessage(CONTACT_JID, { text: 'after restart ✓' }, { messageId: 'EMUSTATE0002' })
      assert.equal((await inboxEntry(emu, CONTACT, 'EMUSTATE0002')).text, 'after restart ✓')
      const res = await emu.api('POST', `/contacts/${CONTACT}/messages`, { to: ACCOUNT, text: 'inbound after restart' })
      const m = await c.waitFor((rec) => rec.upserts.flatMap((u) => u.messages).find((x) => x.key.id === res.body.id), 5000, 'inbound')
      assert.equal(m.message?.conversation, 'inbound after restart')
      await c.end()
    } finally {
      for (const c of clients) await c.end().catch(() => {})
      await emu?.stop()
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
    }
  })
})
