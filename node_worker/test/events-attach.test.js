// EventJournal.attach (src/event-journal.js): the journal moving into an account's PostgreSQL rows, taking over
// what a former owner journaled there and never saw acknowledged; a closed or fenced store detaches it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventJournal } from '../src/event-journal.js'

/** a map like the PostgreSQL store's prefixed map: commit applies ops in order, or fails with `failWith` */
function rowsMap (initial = {}) {
  const data = new Map(Object.entries(initial))
  return {
    data,
    failWith: null,
    get: (key) => data.get(key),
    keys: () => [...data.keys()],
    async commit (ops) {
      if (this.failWith) throw this.failWith
      for (const [key, value] of ops) value == null ? data.delete(key) : data.set(key, value)
    }
  }
}

const event = (seq, id, type = 'message') => JSON.stringify({ seq, event_id: id, type, at: '2026-12-07T00:00:00Z' })

test('attach takes over stranded events before its own, renumbered, once each, with a new boot id', async () => {
  const journal = new EventJournal({ capacity: 100 })
  await journal.push('session.status', { state: 'connecting' }, 'mine-1')
  const boot = journal.bootId
  const map = rowsMap({ 'e:7': event(7, 'old-a'), 'e:9': event(9, 'old-b'), 'e:10': event(10, 'mine-1'), acked: '6' })
  await journal.attach(map)
  assert.deepEqual(journal.after(0).map((e) => [e.seq, e.event_id]), [[1, 'old-a'], [2, 'old-b'], [3, 'mine-1']])
  assert.notEqual(journal.bootId, boot, 'the gateway reader starts over')
  assert.deepEqual([...map.data.keys()].filter((k) => k.startsWith('e:')).sort(), ['e:1', 'e:2', 'e:3'])
  await journal.push('message', { id: 'X' }, 'new-1')
  assert.equal(JSON.parse(map.data.get('e:4')).event_id, 'new-1', 'later events are written there')
  await journal.ack(2)
  assert.deepEqual([...map.data.keys()].filter((k) => k.startsWith('e:')).sort(), ['e:3', 'e:4'])
})

test('a closed or fenced store detaches the journal to memory; any other failure is thrown', async () => {
  const journal = new EventJournal({ capacity: 100 })
  const map = rowsMap()
  await journal.attach(map)
  map.failWith = Object.assign(new Error('auth store: closed'), { code: 'store_closed' })
  const [a, b] = await Promise.all([journal.push('x', {}, 'e1'), journal.push('y', {}, 'e2')]) // fail together
  assert.ok(a && b)
  assert.deepEqual(journal.after(0).map((e) => e.event_id), ['e1', 'e2'], 'kept in memory for the gateway')
  const other = new EventJournal({ capacity: 100 })
  const broken = rowsMap()
  await other.attach(broken)
  broken.failWith = new Error('connection terminated')
  await assert.rejects(other.push('z', {}, 'e3'), /connection terminated/)
  const notAttached = new EventJournal({ capacity: 100, map: Object.assign(rowsMap(), { failWith: Object.assign(new Error('closed'), { code: 'store_closed' }) }) })
  await assert.rejects(notAttached.push('z', {}, 'e4'), /closed/, 'only an attached map detaches')
})
