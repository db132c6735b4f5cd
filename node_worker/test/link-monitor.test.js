// The link liveness tracker (src/link-monitor.js), driven tick by tick with an injected clock.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LinkMonitor } from '../src/link-monitor.js'

function harness ({ probeAfterMs = 1000, timeoutMs = 1500, buffering = false } = {}) {
  const h = { t: 0, probes: 0, dead: [], buffering }
  h.monitor = new LinkMonitor({
    probeAfterMs,
    timeoutMs,
    now: () => h.t,
    probe: async () => { h.probes += 1 },
    onDead: (info) => h.dead.push(info),
    isBuffering: () => h.buffering
  })
  h.at = async (t) => { h.t = t; h.monitor.tick(); await new Promise((resolve) => setImmediate(resolve)) }
  return h
}

test('frames keep the link alive without any probe', async () => {
  const h = harness()
  for (let t = 0; t <= 10000; t += 250) {
    h.t = t
    h.monitor.frame()
    await h.at(t + 200)
  }
  assert.equal(h.probes, 0)
  assert.deepEqual(h.dead, [])
  const link = h.monitor.snapshot()
  assert.equal(link.alive, true)
  assert.equal(link.last_frame_age_ms, 200)
})

test('silence sends one probe; an answer (any frame) keeps the link alive', async () => {
  const h = harness()
  await h.at(999)
  assert.equal(h.probes, 0)
  await h.at(1000)
  assert.equal(h.probes, 1)
  await h.at(1250)
  assert.equal(h.probes, 1, 'one probe at a time')
  assert.equal(h.monitor.snapshot().probe_pending_ms, 250)
  h.t = 1300
  h.monitor.frame() // the pong
  await h.at(2299)
  assert.deepEqual(h.dead, [])
  assert.equal(h.monitor.snapshot().alive, true)
  assert.equal(h.monitor.snapshot().probe_pending_ms, null)
  assert.equal(h.probes, 1)
  await h.at(2300) // quiet again for probeAfterMs: the next probe
  assert.equal(h.probes, 2)
  await h.at(3799)
  assert.deepEqual(h.dead, [], 'the second probe has its own full timeout')
})

test('an unanswered probe makes the link dead once, with the reason and the silence', async () => {
  const h = harness()
  await h.at(1000)
  assert.equal(h.probes, 1)
  await h.at(2499)
  assert.deepEqual(h.dead, [])
  assert.equal(h.monitor.snapshot().alive, true)
  await h.at(2500)
  assert.equal(h.dead.length, 1)
  assert.equal(h.dead[0].reason, 'probe_unanswered')
  assert.equal(h.dead[0].last_frame_age_ms, 2500)
  await h.at(5000)
  await h.at(9000)
  assert.equal(h.dead.length, 1, 'reported once')
  assert.equal(h.probes, 1)
  const link = h.monitor.snapshot()
  assert.equal(link.alive, false)
  assert.equal(link.reason, 'probe_unanswered')
  assert.match(link.message, /no frame from WhatsApp for 2\.5 s/)
  assert.equal(link.last_frame_age_ms, 9000)
})

test('a probe that fails to send is no answer either', async () => {
  const h = harness()
  h.monitor.probeFn = () => { throw new Error('socket closed') }
  await h.at(1000)
  await h.at(2500)
  assert.equal(h.dead.length, 1)
})

test('an event buffer held past the timeout is reported as stuck; the link stays alive', async () => {
  const h = harness({ buffering: true })
  for (let t = 0; t <= 1500; t += 250) { h.monitor.frame(); await h.at(t) }
  assert.equal(h.monitor.snapshot().events_stuck, false)
  h.monitor.frame()
  await h.at(1750)
  let link = h.monitor.snapshot()
  assert.equal(link.buffering_ms, 1750)
  assert.equal(link.events_stuck, true)
  assert.equal(link.alive, true)
  assert.deepEqual(h.dead, [])
  h.buffering = false // flushed
  await h.at(2000)
  link = h.monitor.snapshot()
  assert.equal(link.events_stuck, false)
  assert.equal(link.buffering_ms, 0)
})

test('start() ticks by itself on a timer and stop() ends it', async () => {
  let dead = null
  const monitor = new LinkMonitor({ probeAfterMs: 100, timeoutMs: 100, probe: async () => {}, onDead: (info) => { dead = info } })
  assert.equal(monitor.tickMs, 50)
  monitor.start()
  const started = Date.now()
  while (!dead && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20))
  monitor.stop()
  assert.ok(dead, 'declared dead by its own timer')
  assert.equal(monitor.timer, null)
})
