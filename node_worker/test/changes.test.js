// The shard's change feed (src/changes.js, GET /changes): the gateway follows every account of a shard with one
// long-poll. Real sessions and journals of an AccountHost, real Baileys against the emulator for a state change.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { startEmulator, trustEmulator, tmpDir } from './emulator-helpers.js'
import { AccountHost } from '../src/accounts.js'
import { makeLogger } from '../lib/logger.js'
import { makeHandler } from '../src/server.js'
import { readSettings } from '../src/settings.js'

let emu
const dirs = []
const hosts = []
before(async () => {
  emu = await startEmulator()
  trustEmulator(emu)
})
after(async () => {
  for (const host of hosts) await host.shutdown()
  await emu?.stop()
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

const newDataDir = () => {
  const dir = tmpDir('wa-changes-')
  dirs.push(dir)
  const accounts = { default: { shard: 0 }, sales: { shard: 0 }, support: { shard: 0 }, gone: { shard: 0 } }
  fs.writeFileSync(path.join(dir, 'accounts.json'), JSON.stringify({ accounts }))
  return dir
}

// A worker (an AccountHost and its handler) on `dataDir`, a new one by default.
const worker = (dataDir = newDataDir()) => {
  const settings = readSettings({ WA_DATA_DIR: dataDir, WA_SERVER_URL: emu.wsUrl, WA_LOG_FORMAT: 'json', WA_BAILEYS_LOG_LEVEL: 'silent' })
  const host = new AccountHost({ settings, logger: makeLogger({ level: 'error', write: () => {} }) })
  hosts.push(host)
  const handle = makeHandler({ host })
  return { host, call: caller(handle), dataDir }
}
const caller = (handle) => {
  const call = (method, pathname, body) => {
    const req = Object.assign(Readable.from(body === undefined ? [] : [Buffer.from(JSON.stringify(body))]), { method, headers: {} })
    return handle(req, new URL(pathname, 'http://worker'))
  }
  return call
}

const changes = (call, after, waitMs = 0, bootId = null) =>
  call('GET', `/changes?after=${after}&wait_ms=${waitMs}${bootId ? `&boot_id=${bootId}` : ''}`)
const names = (answer) => answer.accounts.map((a) => a.name).sort()
const byName = (answer, name) => answer.accounts.find((a) => a.name === name)

test('after=0 lists every open account; then only what changed, and a long-poll is woken by a journal event', async () => {
  const { host, call } = worker()
  await host.open('default')
  await host.open('sales')
  const all = await changes(call, 0)
  assert.deepEqual(names(all), ['default', 'sales'])
  assert.deepEqual(byName(all, 'sales'), {
    name: 'sales', state: 'stopped', registered: null, last_seq: 0, events_boot_id: host.get('sales').journal.bootId
  })
  // nothing changed: answered empty after the wait, at the same seq
  const idle = await changes(call, all.seq, 50, all.boot_id)
  assert.deepEqual(idle.accounts, [])
  assert.equal(idle.seq, all.seq)
  // a waiting reader is answered by an event in one account's journal, with that account only
  const started = Date.now()
  const waiting = changes(call, all.seq, 20000, all.boot_id)
  setTimeout(() => host.get('sales').journal.push('message', { id: 'M1', text: 'x' }, 'ev-1'), 30)
  const woken = await waiting
  assert.ok(Date.now() - started < 5000, 'woken by the event, not by the wait bound')
  assert.deepEqual(names(woken), ['sales'])
  assert.equal(byName(woken, 'sales').last_seq, 1)
  assert.ok(woken.seq > all.seq)
  // an account opened later is a change too
  await host.open('support')
  assert.deepEqual(names(await changes(call, woken.seq, 0, all.boot_id)), ['support'])
})

test('a state change (real Baileys: connecting, then a QR) wakes a waiting reader', async () => {
  const { host, call } = worker()
  await host.open('default')
  await host.open('sales')
  const all = await changes(call, 0)
  const started = Date.now()
  const waiting = changes(call, all.seq, 20000, all.boot_id)
  const connect = call('POST', '/accounts/default/connect', { wait_ms: 10000 }) // real Baileys: connecting, then qr
  const woken = await waiting
  assert.ok(Date.now() - started < 5000, 'woken by the state change, not by the wait bound')
  assert.deepEqual(names(woken), ['default'])
  assert.ok(['connecting', 'qr'].includes(byName(woken, 'default').state), JSON.stringify(woken))
  assert.equal((await connect).state, 'qr')
  const now = await changes(call, woken.seq, 0, all.boot_id)
  assert.equal(byName(now, 'default')?.state ?? 'qr', 'qr') // listed again only if it changed after the first answer
  assert.equal(byName(now, 'default')?.registered ?? false, false)
  assert.ok(!names(now).includes('sales'))

  await connect
})

test('a removed account is listed as removed, with nulls, and no more in the whole list', async () => {
  const { host, call } = worker()
  await host.open('sales')
  await host.open('gone')
  const before = await changes(call, 0)
  const gone = changes(call, before.seq, 20000, before.boot_id)
  await host.remove('gone')
  assert.deepEqual(names(await gone), ['gone']) // woken (its logout, or its removal)
  const removed = await changes(call, before.seq, 0, before.boot_id)
  assert.deepEqual(byName(removed, 'gone'), { name: 'gone', state: null, registered: null, last_seq: null, events_boot_id: null, removed: true })
  assert.ok(!names(await changes(call, 0)).includes('gone')) // the full list names open accounts only
})

test('a reader of another boot, or ahead of this boot, gets the whole list at once', async () => {
  const first = worker()
  await first.host.open('sales')
  const old = await changes(first.call, 0)
  await first.host.shutdown()
  const restarted = worker(first.dataDir) // the worker restarted on the same data dir: a new boot
  await restarted.host.open('sales')
  await restarted.host.open('support')
  const started = Date.now()
  const answer = await changes(restarted.call, old.seq, 20000, old.boot_id)
  assert.ok(Date.now() - started < 5000, 'answered at once')
  assert.notEqual(answer.boot_id, old.boot_id)
  assert.deepEqual(names(answer), ['sales', 'support'])
  const ahead = await changes(restarted.call, answer.seq + 100, 20000, answer.boot_id)
  assert.deepEqual(names(ahead), ['sales', 'support'])
  await assert.rejects(restarted.call('GET', '/changes?after=0&nope=1'), { code: 'unknown_field' })
})
