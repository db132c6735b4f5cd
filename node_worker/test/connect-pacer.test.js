// The shard's connection pacer (src/connect-pacer.js) on an injected clock: the rate holds in every
// one-second window under a crowd, one attempt alone never waits, and the bucket refills while idle.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConnectPacer, shardRate } from '../src/connect-pacer.js'
import { readSettings, SettingsError, DEFAULT_CONNECT_RATE } from '../src/settings.js'

const clock = (start = 1_000_000) => {
  const c = { t: start, now: () => c.t }
  return c
}

// the dial times of `n` attempts that all ask at `c.t`
const crowd = (pacer, c, n) => Array.from({ length: n }, () => c.t + pacer.reserve())

// the most dials in any window [t, t + 1000) that starts at a dial
const peakPerSecond = (times) => {
  const sorted = [...times].sort((a, b) => a - b)
  let peak = 0
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[j] < sorted[i] - 999) j++
    peak = Math.max(peak, i - j + 1)
  }
  return peak
}

test('a crowd of 1,000 resumes dials at the rate: at most rate + burst in any second, all within n/rate', () => {
  const c = clock()
  const pacer = new ConnectPacer({ ratePerSec: 20, now: c.now })
  const times = crowd(pacer, c, 1000)
  assert.equal(times[0], c.t, 'the first dials at once')
  assert.ok(peakPerSecond(times) <= 21, `peak ${peakPerSecond(times)}`)
  const last = Math.max(...times) - c.t
  assert.ok(last >= 49_900 && last <= 50_000, `last dial after ${last} ms`)
  for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1], 'slots in the order asked')
})

test('one attempt alone never waits: the bucket starts full and refills while idle', () => {
  const c = clock()
  const pacer = new ConnectPacer({ ratePerSec: 2, now: c.now })
  assert.equal(pacer.reserve(), 0)
  assert.equal(pacer.reserve(), 500, 'the second right after waits one interval')
  c.t += 10_000
  assert.equal(pacer.reserve(), 0, 'after a quiet while the next dials at once again')
  assert.equal(pacer.backlogMs(), 500)
})

test('a burst of B dials at once, then the rate', () => {
  const c = clock()
  const pacer = new ConnectPacer({ ratePerSec: 10, burst: 3, now: c.now })
  assert.deepEqual(crowd(pacer, c, 5).map((t) => t - c.t), [0, 0, 0, 100, 200])
})

test('attempts that cannot wait dial now and push the waiting ones back; rate 0 never waits', () => {
  const c = clock()
  const pacer = new ConnectPacer({ ratePerSec: 10, now: c.now })
  assert.equal(pacer.reserve(), 0)
  assert.equal(pacer.reserve({ wait: false }), 0)
  assert.equal(pacer.reserve(), 200, 'the link took the slot at 100 ms')
  const free = new ConnectPacer({ ratePerSec: 0, now: c.now })
  assert.deepEqual(crowd(free, c, 100).map((t) => t - c.t), Array(100).fill(0))
})

test('WA_CONNECT_RATE: the default, a shard\'s share, and bad values', () => {
  const s = readSettings({ WA_DATA_DIR: '/tmp/x' })
  assert.equal(s.connectRate, DEFAULT_CONNECT_RATE)
  assert.equal(shardRate(s), DEFAULT_CONNECT_RATE)
  assert.equal(shardRate(readSettings({ WA_DATA_DIR: '/tmp/x', WA_CONNECT_RATE: '30', WA_WORKER_SHARDS: '3' })), 10)
  assert.equal(shardRate(readSettings({ WA_DATA_DIR: '/tmp/x', WA_CONNECT_RATE: '0' })), 0)
  assert.equal(readSettings({ WA_CONNECT_RATE: '2.5' }).connectRate, 2.5)
  assert.throws(() => readSettings({ WA_CONNECT_RATE: '-1' }), SettingsError)
  assert.throws(() => readSettings({ WA_CONNECT_RATE: 'fast' }), SettingsError)
})
