// A worker killed during a history sync does not lose it (issue 27). rc14 sends the history-sync notification's
// receipt before it processes the notification, and WhatsApp never sends a receipted notification again: the worker
// journals the sync in the receipt hook (session/history.js). Here the session dies (its first history.sync write
// never completes, then SIGKILL) after the download and before the receipt; the notification is still unacknowledged
// at the server, which delivers it again at the next login, and the restarted worker journals the whole sync.
// Real Baileys, the emulator's history sync (the blob on its media host).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { SessionChildren } from './child-session.js'

const ACCOUNT = '+15550009001'
const ALICE = '+15550009002'
const BOB = '+15550009003'
const SCRIPT = fileURLToPath(new URL('./fixtures/history-session.js', import.meta.url))

let emu
let children
let env
before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-hcrash-emu-') } })
  children = new SessionChildren(SCRIPT, emu)
  env = { WA_SANDBOX_MEDIA_CA: (await emu.api('GET', '/media')).body.ca_file }
})
after(async () => {
  await children?.killAll()
  await emu?.stop()
})

const unacked = async () => (await emu.api('GET', '/')).body.accounts.find((a) => a.phone_number === ACCOUNT)?.devices.reduce((n, d) => n + d.unacked, 0) ?? 0

test('killed after the download and before the receipt, the restarted worker journals the whole sync', async () => {
  const seeded = await emu.api('POST', `/accounts/${ACCOUNT}/history`, {
    conversations: [
      { phone_number: ALICE, messages: [{ id: 'HC1', text: 'one' }, { id: 'HC2', from_me: true, text: 'two', status: 'read' }] },
      { phone_number: BOB, addressing: 'lid', messages: [{ id: 'HC3', text: 'three' }] }
    ]
  })
  assert.equal(seeded.status, 200, JSON.stringify(seeded.body))
  const dataDir = tmpDir('wa-hcrash-')
  const first = children.start(dataDir, { ...env, W27_FREEZE_HISTORY: '1' })
  const { qr } = await first.waitFor((e) => e.event === 'qr', 'a QR')
  assert.equal((await emu.api('POST', '/phone/scan', { phone_number: ACCOUNT, qr })).status, 200)
  await first.waitFor((e) => e.event === 'frozen', 'the history journaled (frozen)', 30000)
  assert.ok(await unacked() >= 1, 'the notification is not receipted')
  await first.kill()
  assert.equal(first.events.filter((e) => e.event === 'history').length, 0)

  const second = children.start(dataDir, env)
  const got = await second.waitFor((e) => e.event === 'history' && e.sync_type === 'INITIAL_BOOTSTRAP', 'the sync journaled after the restart', 30000)
  assert.deepEqual([...got.ids].sort(), ['HC1', 'HC2', 'HC3'])
  assert.match(got.event_id, /^history:[0-9A-F]+:1$/)
  await until(async () => (await unacked()) === 0, 10000, 'the notification receipted once journaled')
})
