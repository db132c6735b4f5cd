// Several accounts in one worker (src/accounts.js, src/server.js): each account its own session,
// journal and data directory, addressed as /accounts/<name>/...; the registry file decides which
// accounts this worker (shard) holds. Real Baileys against the emulator.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { startEmulator, trustEmulator, tmpDir, until } from './emulator-helpers.js'
import { AccountHost, accountSettings, readRegistry } from '../src/accounts.js'
import { makeLogger } from '../lib/logger.js'
import { makeHandler } from '../src/server.js'
import { readSettings } from '../src/settings.js'

let emu
let dataDir
let host
let handle
before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
  dataDir = tmpDir('wa-accounts-')
  fs.writeFileSync(path.join(dataDir, 'accounts.json'), JSON.stringify({ accounts: { default: { shard: 0 }, sales: { shard: 0 }, elsewhere: { shard: 1 } } }))
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  host = new AccountHost({ settings, logger: makeLogger({ level: 'error', write: () => {} }) })
  handle = makeHandler({ host })
})
after(async () => {
  await host?.shutdown()
  await emu?.stop()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

const call = (method, pathname, body) => {
  const req = Object.assign(Readable.from(body === undefined ? [] : [Buffer.from(JSON.stringify(body))]), { method, headers: {} })
  return handle(req, new URL(pathname, 'http://worker'))
}

const link = async (name, phone) => {
  const started = await call('POST', `/accounts/${name}/connect`, { wait_ms: 10000 })
  assert.equal(started.state, 'qr', JSON.stringify(started))
  const scan = await emu.api('POST', '/phone/scan', { phone_number: phone, qr: started.qr })
  assert.equal(scan.status, 200, JSON.stringify(scan.body))
  await until(async () => (await call('GET', `/accounts/${name}/status`)).state === 'connected', 20000, `${name} connected`)
}

test('registry: accounts of this shard; default always there', () => {
  const shards = readRegistry(dataDir)
  assert.deepEqual([...shards], [['default', 0], ['sales', 0], ['elsewhere', 1]])
  const other = tmpDir('wa-noreg-')
  assert.deepEqual([...readRegistry(other)], [['default', 0]])
  fs.rmSync(other, { recursive: true })
  assert.equal(accountSettings(host.settings, 'default'), host.settings) // the original data layout
  assert.equal(accountSettings(host.settings, 'sales').sessionDir, path.join(dataDir, 'accounts', 'sales', 'session'))
})

test('two accounts, two phones: each sends as itself, each journal holds only its own events', async () => {
  await host.resumeAll()
  assert.deepEqual(host.names().sort(), ['default', 'sales'])
  await link('default', '+15550005001')
  await link('sales', '+15550005002')
  assert.equal((await call('GET', '/status')).phone_number, '+15550005001') // the original paths: default
  const contact = '+15550005009'
  await call('POST', '/accounts/sales/send', { phone_number: contact, text: 'from sales', id: 'SALES0000001' })
  await call('POST', '/send', { phone_number: contact, text: 'from default', id: 'DFLT00000001' })
  const inbox = await until(async () => {
    const got = (await emu.api('GET', `/contacts/${encodeURIComponent(contact)}/messages`)).body
    return got.length === 2 ? got : null
  }, 10000, 'both messages at the contact')
  const from = Object.fromEntries(inbox.map((m) => [m.id, m.from]))
  assert.deepEqual(from, { SALES0000001: '+15550005002', DFLT00000001: '+15550005001' })
  const reply = await emu.api('POST', `/contacts/${encodeURIComponent(contact)}/messages`, { to: '+15550005002', text: 'hi sales' })
  const salesEvents = await until(async () => {
    const r = await call('GET', '/accounts/sales/events?after=0')
    return r.events.some((e) => e.type === 'message' && e.id === reply.body.id) ? r.events : null
  }, 10000, 'the reply in the sales journal')
  assert.ok(salesEvents.some((e) => e.type === 'message.status' && e.id === 'SALES0000001'))
  const defaultEvents = (await call('GET', '/accounts/default/events?after=0')).events
  assert.ok(!defaultEvents.some((e) => e.id === reply.body.id || e.id === 'SALES0000001'))
  assert.ok(fs.existsSync(path.join(dataDir, 'accounts', 'sales', 'events')))
})

test('POST /send/batch: a run to one recipient arrives in order; a number not on WhatsApp fails each alone', async () => {
  // runs after the two-accounts test: `sales` is linked
  const contact = '+15550005019'
  const ids = ['BATCH0000001', 'BATCH0000002', 'BATCH0000003', 'BATCH0000004', 'BATCH0000005']
  const sent = await call('POST', '/accounts/sales/send/batch', { messages: ids.map((id, i) => ({ phone_number: contact, text: `run ${i}`, id })) })
  assert.deepEqual(sent.results, ids.map((id) => ({ id, status: 'sent' })))
  const inbox = await until(async () => {
    const got = (await emu.api('GET', `/contacts/${encodeURIComponent(contact)}/messages`)).body
    return got.length === ids.length ? got : null
  }, 10000, 'the run at the contact')
  assert.deepEqual(inbox.map((m) => m.id), ids) // in the order given
  assert.deepEqual(inbox.map((m) => m.text), ids.map((_, i) => `run ${i}`))

  const nobody = '+15550005098'
  assert.equal((await emu.api('POST', '/contacts', { phone_number: nobody, on_whatsapp: false })).status, 200)
  const refused = await call('POST', '/accounts/sales/send/batch', { messages: [
    { phone_number: nobody, text: 'a', id: 'NOBODY000001' }, { phone_number: nobody, text: 'b', id: 'NOBODY000002' }] })
  assert.deepEqual(refused.results.map((r) => r.error?.code), ['not_on_whatsapp', 'not_on_whatsapp'])

  await assert.rejects(call('POST', '/accounts/sales/send/batch', { messages: [] }), (err) => err.code === 'invalid_batch')
  await assert.rejects(call('POST', '/accounts/sales/send/batch', { messages: Array.from({ length: 65 }, (_, i) => ({ phone_number: contact, text: 'x', id: `TOOMANY${String(i).padStart(5, '0')}` })) }),
    (err) => err.code === 'invalid_batch')
  await assert.rejects(call('POST', '/accounts/sales/send/batch', { messages: [{ phone_number: contact, text: 'x' }] }), (err) => err.code === 'invalid_id')
})

test('unknown, foreign and invalid accounts are refused; detach logs out and removes the data', async () => {
  await assert.rejects(call('GET', '/accounts/nobody/status'), (e) => e.status === 404 && e.code === 'account_not_found')
  await assert.rejects(call('POST', '/accounts/elsewhere/attach', {}), (e) => e.status === 409 && e.code === 'not_assigned')
  await assert.rejects(call('GET', '/accounts/Bad..Name/status'), (e) => e.status === 400)
  const listed = await call('GET', '/accounts')
  assert.deepEqual(listed.accounts.map((a) => a.name).sort(), ['default', 'sales'])
  const gone = await call('POST', '/accounts/sales/detach', {})
  assert.equal(gone.unlinked, true)
  assert.ok(!fs.existsSync(path.join(dataDir, 'accounts', 'sales')))
  const phone = (await emu.api('GET', '/')).body.accounts.find((a) => a.phone_number === '+15550005002')
  assert.ok(!phone || phone.devices.length === 0, 'the linked device of sales is unlinked at WhatsApp')
  assert.equal((await call('GET', '/status')).state, 'connected') // default untouched
})
