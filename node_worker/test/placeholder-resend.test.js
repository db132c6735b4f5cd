// Placeholder resends and peer protocol messages, durable before their acks (src/placeholders.js,
// src/peer-messages.js, patches/*004*), with the real Baileys against the emulator's account phone.
//
// A contact's message reaches the worker as an `<unavailable>` stub; the worker asks the account's phone,
// whose answer (a peer message) carries the content. The worker runs in a child process
// (fixtures/placeholder-session.js, its event journal on disk) killed with SIGKILL at a chosen instant:
// after the stub's ack and before the request left, after the request and before the answer was read,
// and before the answer's journal write. Each time the content ends as exactly one `message` event in
// the journal after the restart. An app-state key share and a LID mapping sync from the phone are in
// the session store when the worker dies right after their receipt.
// DEBUG_CHILD=1 (with FIXTURE_LOG_LEVEL=info) shows the workers' logs.
import { test, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { SessionChildren } from './child-session.js'
import { EventJournal } from '../src/event-journal.js'
import { openAuthStore } from '../src/auth-store.js'

const CHILD = fileURLToPath(new URL('./fixtures/placeholder-session.js', import.meta.url))
const ACCOUNT = '+15550007001'
const CONTACT = '+15550007011'

let emu
let children
after(async () => {
  await children?.killAll()
  await emu?.stop()
})
afterEach(async () => { await children?.killAll() }) // a failed test leaves no worker behind

// FREEZE (fixtures/placeholder-session.js): the instant the child stops writing and waits to be killed.
const startChild = (dataDir, freeze = '') => children.start(dataDir, { FREEZE: freeze })

const account = async () => (await emu.api('GET', '/')).body.accounts.find((a) => a.phone_number === ACCOUNT)
const sendUnavailable = async (text) => {
  const res = await emu.api('POST', `/contacts/${encodeURIComponent(CONTACT)}/messages`, { to: ACCOUNT, text, unavailable: true })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.unavailable, true)
  return res.body.id
}

/** the `message` events of the (dead) worker's journal on disk, by WhatsApp id */
const journaled = async (dataDir, id) => {
  const journal = await EventJournal.open({ dir: path.join(dataDir, 'events'), capacity: 10000 })
  try {
    return journal.after(0).filter((e) => e.id === id && (e.type === 'message' || e.type === 'message.undecryptable'))
  } finally {
    await journal.close()
  }
}

const exactlyOnce = async (dataDir, id, text) => {
  const events = await journaled(dataDir, id)
  assert.deepEqual(events.map((e) => [e.type, e.text, e.from, e.kind]), [['message', text, CONTACT, 'text']])
}

let dataDir
before(async () => {
  emu = await startEmulator()
  children = new SessionChildren(CHILD, emu)
  dataDir = tmpDir('wa-placeholder-')
  await children.pair(dataDir, ACCOUNT)
})

/**
 * One kill: a worker with `freeze` armed gets an unavailable message and is killed at that instant
 * (after `whenFrozen`, which waits for what the server must have seen by then); a new worker on the same
 * data dir must journal the content once. Returns the phone's placeholder requests during the test.
 */
async function killDuring (freeze, text, whenFrozen = async () => {}) {
  const requestsBefore = (await account()).placeholder_requests
  let child = startChild(dataDir, freeze)
  await child.waitFor((e) => e.event === 'connected', 'connected')
  const id = await sendUnavailable(text)
  await child.waitFor((e) => e.event === 'frozen', `the instant ${freeze}`)
  await whenFrozen(id)
  await child.kill()
  child = startChild(dataDir)
  await child.waitFor((e) => e.event === 'inbound' && e.id === id, `the content of ${id} after the restart`, 20000)
  await new Promise((resolve) => setTimeout(resolve, 4000)) // a second answer, if one was asked for, comes by now
  await child.kill()
  await exactlyOnce(dataDir, id, text)
  return (await account()).placeholder_requests - requestsBefore
}

test('an unavailable message: the phone resends it, one message event with its text', async () => {
  const before = await account()
  const child = startChild(dataDir)
  await child.waitFor((e) => e.event === 'connected', 'connected')
  const id = await sendUnavailable('only the phone has this')
  await child.waitFor((e) => e.event === 'inbound' && e.id === id, 'the resent content')
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await child.kill()
  await exactlyOnce(dataDir, id, 'only the phone has this')
  const after = await account()
  assert.equal(after.placeholder_requests - before.placeholder_requests, 1)
  assert.equal(after.placeholder_answers - before.placeholder_answers, 1)
})

test('killed after the stub\'s ack, before the request left: the restarted worker asks again', async () => {
  const requests = await killDuring('request', 'asked for again', async () => {
    // the server forgot the stub (acked) and never saw a request
    await until(async () => (await account()).devices.every((d) => d.unacked === 0 && d.queued === 0), 5000, 'the stub acked')
  })
  assert.equal(requests, 1, 'one request: the one the restarted worker sent')
})

test('killed after the request, before the answer was read: the server delivers the answer again', async () => {
  const answersBefore = (await account()).placeholder_answers
  const requests = await killDuring('answer', 'answered while dead', async () => {
    await until(async () => (await account()).placeholder_answers > answersBefore, 5000, 'the phone\'s answer')
  })
  assert.equal(requests, 1, 'no second request: the unread answer was kept by the server')
})

test('killed before the answer\'s journal write: the unreceipted answer comes again and is journaled once', async () => {
  const requests = await killDuring('journal', 'journaled after the restart')
  assert.equal(requests, 1, 'no second request: the answer was not receipted before it was journaled')
})

for (const kind of ['app_state_key_share', 'lid_mapping']) {
  test(`the phone's ${kind} is in the session store before its receipt`, async () => {
    const child = startChild(dataDir, 'peer_receipt')
    await child.waitFor((e) => e.event === 'connected', 'connected')
    const res = await emu.api('POST', '/phone/peer-messages', { phone_number: ACCOUNT, kind, pn: '+15550007021' })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    await child.waitFor((e) => e.event === 'frozen', 'the receipt')
    await until(async () => (await account()).devices.every((d) => d.unacked === 0), 5000, 'the receipt at the server')
    await child.kill()
    const store = await openAuthStore(path.join(dataDir, 'session'))
    try {
      if (kind === 'app_state_key_share') {
        const { [res.body.key_id]: key } = await store.state.keys.get('app-state-sync-key', [res.body.key_id])
        assert.ok(key?.keyData?.length, 'the shared app-state sync key')
        assert.equal(store.state.creds.myAppStateKeyId, res.body.key_id)
      } else {
        const lidUser = res.body.mappings[0].lid.replace('@lid', '')
        const stored = await store.state.keys.get('lid-mapping', ['15550007021', `${lidUser}_reverse`])
        assert.deepEqual(stored, { 15550007021: lidUser, [`${lidUser}_reverse`]: '15550007021' })
      }
    } finally {
      await store.close()
    }
  })
}
