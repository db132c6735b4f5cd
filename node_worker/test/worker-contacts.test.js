// Contacts through the worker (issue 27): the real worker process (src/main.js, the real Baileys) against the emulator.
// A contact's push name (the `notify` of its messages) becomes a `contact.updated` event naming it by phone number and
// LID, once per change; GET /contacts/{phone} asks WhatsApp live whether a number is on it, its LID and its picture.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEmulator, tmpDir, until } from './emulator-helpers.js'
import { linkWorker, startWorker } from './worker-process.js'

const ACCOUNT = '+15550008701'
const ANA = '+15550008702'
const NOBODY = '+15550008703' // not on WhatsApp

let emu
let worker

before(async () => {
  emu = await startEmulator({ env: { WA_EMULATOR_MEDIA_DIR: tmpDir('wa-contacts-emu-') } })
  worker = startWorker(emu, {})
  await linkWorker(worker, emu, ACCOUNT)
  assert.equal((await emu.api('POST', '/contacts', { phone_number: NOBODY, on_whatsapp: false })).status, 200)
})

after(async () => {
  await worker?.stop()
  await emu?.stop()
})

const events = async () => (await worker.call('GET', '/events?after=0&limit=1000')).body.events
const contactEvents = async () => (await events()).filter((e) => e.type === 'contact.updated')

async function anaSends (text) {
  const sent = await emu.api('POST', `/contacts/${ANA}/messages`, { to: ACCOUNT, text })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  return until(async () => (await events()).find((e) => e.type === 'message' && e.id === sent.body.id), 10000, 'the message event')
}

test('a contact\'s push name is a contact.updated event with its phone number and LID, once per change', async () => {
  const created = await emu.api('POST', '/contacts', { phone_number: ANA, name: 'Ana Lima' })
  assert.equal(created.status, 200, JSON.stringify(created.body))
  const lid = created.body.lid
  assert.match(lid, /^[0-9]+@lid$/)
  const first = await anaSends('hello')
  assert.equal(first.push_name, 'Ana Lima')
  const named = await until(async () => { const e = (await contactEvents()).filter((e) => e.contacts.some((c) => c.push_name === 'Ana Lima')); return e.length && e }, 10000, 'contact.updated')
  assert.equal(named.length, 1)
  assert.equal(named[0].source, 'contacts')
  assert.deepEqual(named[0].contacts, [{ phone_number: ANA, lid, push_name: 'Ana Lima' }])

  await anaSends('same name again') // no news: no event
  assert.equal((await emu.api('POST', '/contacts', { phone_number: ANA, name: 'Ana L.' })).status, 200)
  await anaSends('renamed')
  const renamed = await until(async () => (await contactEvents()).find((e) => e.contacts.some((c) => c.push_name === 'Ana L.')), 10000, 'the new name')
  assert.deepEqual(renamed.contacts, [{ phone_number: ANA, lid, push_name: 'Ana L.' }])
  assert.equal((await contactEvents()).filter((e) => e.contacts.some((c) => c.push_name === 'Ana Lima')).length, 1, 'the repeated name was journaled once')
})

test('GET /contacts/{phone}: on WhatsApp with its LID; not on WhatsApp; a picture only when asked', async () => {
  const lid = (await emu.api('POST', '/contacts', { phone_number: ANA })).body.lid
  const on = await worker.call('GET', `/contacts/${encodeURIComponent(ANA)}`)
  assert.equal(on.status, 200, JSON.stringify(on.body))
  assert.deepEqual(on.body, { phone_number: ANA, on_whatsapp: true, lid, picture_url: null })
  const plain = await worker.call('GET', `/accounts/default/contacts/${ANA}?picture=1`) // unencoded +, per account
  assert.equal(plain.status, 200, JSON.stringify(plain.body))
  assert.deepEqual(plain.body, { phone_number: ANA, on_whatsapp: true, lid, picture_url: null }) // no picture set
  const off = await worker.call('GET', `/contacts/${encodeURIComponent(NOBODY)}?picture=true`)
  assert.equal(off.status, 200, JSON.stringify(off.body))
  assert.deepEqual(off.body, { phone_number: NOBODY, on_whatsapp: false, lid: null, picture_url: null })
})

test('GET /contacts/{phone}?picture=1: the URL of the picture the contact set (its bytes on the media host); none when its privacy hides it', async () => {
  const set = await emu.api('POST', `/contacts/${encodeURIComponent(ANA)}/picture`, {})
  assert.equal(set.status, 200, JSON.stringify(set.body))
  const url = set.body.picture.url
  const r = await worker.call('GET', `/contacts/${encodeURIComponent(ANA)}?picture=1`)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.picture_url, url)
  assert.equal(r.body.on_whatsapp, true)
  const without = await worker.call('GET', `/contacts/${encodeURIComponent(ANA)}?picture=0`)
  assert.equal(without.body.picture_url, null, 'not asked for')
  assert.equal((await emu.api('POST', `/contacts/${encodeURIComponent(ANA)}/picture`, { privacy: 'nobody' })).status, 200)
  const hidden = await worker.call('GET', `/contacts/${encodeURIComponent(ANA)}?picture=true`)
  assert.equal(hidden.status, 200, JSON.stringify(hidden.body))
  assert.deepEqual([hidden.body.on_whatsapp, hidden.body.picture_url], [true, null])
})

test('GET /contacts/{phone} refuses what is no number or no parameter it takes', async () => {
  for (const [path, code] of [['/contacts/12345', 'invalid_phone_number'], ['/contacts/%2B1555abc', 'invalid_phone_number'],
    ['/contacts/%E0%A4', 'invalid_phone_number'], [`/contacts/${encodeURIComponent(ANA)}?picture=yes`, 'invalid_picture'],
    [`/contacts/${encodeURIComponent(ANA)}?size=1`, 'unknown_field']]) {
    const r = await worker.call('GET', path)
    assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, code, path)
  }
})

test('GET /contacts/{phone} on a worker that is not connected: 409 not_connected, as a send', async () => {
  const idle = startWorker(emu, {})
  try {
    await idle.ready()
    const r = await idle.call('GET', `/contacts/${encodeURIComponent(ANA)}`)
    assert.equal(r.status, 409, JSON.stringify(r.body))
    assert.equal(r.body.error.code, 'not_connected')
  } finally {
    await idle.stop()
  }
})
