// Contracts that kill -9 cannot show (issue 7): a journal write is acknowledged only after its fsync,
// and a pushed event wakes a waiting long-poll reader at once rather than at its timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openJournaledMap } from '../src/journal.js'
import { EventJournal } from '../src/event-journal.js'

// The journal writes through a FileHandle; hold every datasync/sync until the test releases it, and
// record what had been acknowledged by then.
async function withHeldSyncs (fn) {
  const probe = await mkdtemp(join(tmpdir(), 'wa-probe-'))
  const { open } = await import('node:fs/promises')
  const fh = await open(join(probe, 'x'), 'w')
  const proto = Object.getPrototypeOf(fh)
  await fh.close()
  await rm(probe, { recursive: true, force: true })
  const real = { datasync: proto.datasync, sync: proto.sync }
  const held = []
  const hold = (name) => function (...args) {
    return new Promise((resolve, reject) => {
      held.push(() => real[name].apply(this, args).then(resolve, reject))
    })
  }
  proto.datasync = hold('datasync')
  proto.sync = hold('sync')
  try {
    return await fn({ held, release: () => { for (const go of held.splice(0)) go() } })
  } finally {
    proto.datasync = real.datasync
    proto.sync = real.sync
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50))

test('journal: commit() resolves only after its fsync has completed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wa-durable-'))
  const map = await openJournaledMap(join(dir, 'store'))
  try {
    await withHeldSyncs(async ({ held, release }) => {
      let acknowledged = false
      const commit = map.commit([['k', '"v"']]).then(() => { acknowledged = true })
      for (let i = 0; i < 40 && held.length === 0; i++) await settle()
      assert.ok(held.length >= 1, 'the commit never asked for an fsync')
      await settle()
      assert.equal(acknowledged, false, 'acknowledged before its fsync completed')
      assert.equal(map.get('k'), undefined, 'readable before it is durable')
      release()
      await commit
      assert.equal(acknowledged, true)
      assert.equal(map.get('k'), '"v"')
    })
  } finally {
    await map.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('event journal: a pushed event wakes a waiting reader at once, not at its timeout', async () => {
  const journal = new EventJournal({ capacity: 10 })
  const started = Date.now()
  const waiting = journal.read(0, 30000)
  setTimeout(() => journal.push('message', { id: 'A' }), 20)
  const got = await waiting
  const waited = Date.now() - started
  assert.deepEqual(got.map((e) => e.type), ['message'])
  assert.ok(waited < 5000, `the reader waited ${waited} ms for an event pushed after 20 ms`)
})
