// The emulator's parts that must stay cheap at 1,000 linked devices: the connection statistics of GET /stats
// (connect-stats.js), the state file's write pacing (state-file.js) and its packed prekeys (accounts.js).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { mock, test } from 'node:test'
import { ConnectStats } from '../emulator/connect-stats.js'
import { Device, Directory } from '../emulator/accounts.js'
import { StateSaver, loadState } from '../emulator/state-file.js'
import { tmpDir } from './emulator-helpers.js'

test('stats: the busiest one-second window of dials, totals, and a reset', () => {
  const c = { t: 0 }
  const stats = new ConnectStats({ now: () => c.t })
  for (let i = 0; i < 10; i++) { stats.connected(); c.t += 250 } // 4 a second for 2.5 s
  for (let i = 0; i < 7; i++) { stats.connected(); c.t += 10 } // then 7 within 70 ms
  stats.loggedIn(120)
  stats.loggedIn(80)
  let v = stats.view({ open: 3, loggedIn: 2 })
  assert.equal(v.connects_total, 17)
  assert.equal(v.peak_connects_per_s, 10, 'the 7 and the 3 of the 750 ms before them')
  assert.deepEqual([v.connections_open, v.connections_logged_in, v.logins_total], [3, 2, 2])
  assert.deepEqual(v.login_ms, { p50: 120, p99: 120, max: 120 })
  c.t += 5000
  assert.equal(stats.view({ open: 0, loggedIn: 0 }).connects_last_s, 0)
  stats.reset()
  stats.connected()
  v = stats.view({ open: 1, loggedIn: 0 })
  assert.deepEqual([v.connects_total, v.peak_connects_per_s, v.login_ms.p50], [1, 1, null])
})

test('state saver: a write that took long puts the next one off by costFactor times its cost', () => {
  mock.timers.enable({ apis: ['setTimeout'] })
  try {
    const c = { t: 0 }
    const file = path.join(tmpDir(), 'state.json')
    let writes = 0
    // each snapshot "costs" 100 ms on the injected clock
    const saver = new StateSaver({ file, snapshot: () => { c.t += 100; writes++; return { users: [] } }, log: console, now: () => c.t })
    saver.schedule()
    mock.timers.tick(50)
    assert.equal(writes, 1, 'the first change is written after delayMs')
    assert.equal(saver.lastWriteMs, 100)
    saver.schedule()
    mock.timers.tick(800)
    assert.equal(writes, 1, 'not before 9 x 100 ms after the last write ended')
    mock.timers.tick(100)
    assert.equal(writes, 2)
    saver.schedule()
    saver.flush() // shutdown: at once
    assert.equal(writes, 3)
  } finally {
    mock.timers.reset()
  }
})

test('prekeys: packed into the state once, packed again after a change, read back in both formats', () => {
  const dir = new Directory()
  const user = dir.ensure('15550990001')
  const preKeys = new Map([[1, randomBytes(32)], [2, randomBytes(32)]])
  const dev = new Device({ phone: user.phone, lid: user.lid, id: 1, keyIndex: 1, noiseKey: randomBytes(32), identityKey: randomBytes(33), registrationId: 7, signedPreKey: { keyId: 1, publicKey: randomBytes(32), signature: randomBytes(64) }, preKeys, platform: 'x', advDetails: randomBytes(8), accountSignature: randomBytes(64), deviceSignature: randomBytes(64), pairedAt: 1 })
  user.devices.set(1, dev)
  const ids = (d) => [...d.preKeys.keys()]
  assert.deepEqual(ids(Device.fromJSON(user, dev.toJSON())), [1, 2])
  dev.addPreKey(3, randomBytes(32))
  assert.deepEqual(ids(Device.fromJSON(user, dev.toJSON())), [1, 2, 3], 'an upload is in the next write')
  const taken = dev.takeBundle().preKey.keyId
  const back = Device.fromJSON(user, JSON.parse(JSON.stringify(dev.toJSON())))
  assert.deepEqual(ids(back), [2, 3], `a key handed out (${taken}) is gone from the next write`)
  assert.ok(back.preKeys.get(3).equals(dev.preKeys.get(3)))
  // a state file of the earlier format ({id: base64})
  const old = { ...dev.toJSON(), preKeysPacked: undefined, preKeys: { 9: randomBytes(32).toString('base64') } }
  assert.deepEqual(ids(Device.fromJSON(user, old)), [9])
  // the whole directory through a file
  const file = path.join(tmpDir(), 'state.json')
  new StateSaver({ file, snapshot: () => ({ users: dir.toJSON() }), log: console }).flush()
  const loaded = new Directory()
  loaded.load(loadState(file).users)
  assert.deepEqual(ids(loaded.get('15550990001').devices.get(1)), [2, 3])
  assert.ok(fs.statSync(file).size > 0)
})
