// Profile pictures and push names, with the real Baileys client: profilePictureUrl answers what
// POST /contacts/{phone}/picture set (a URL on the media host serving those bytes, 404 item-not-found without
// one, 401 not-authorized when the contact's privacy hides it), by phone number and by LID; a contact's
// messages carry the push name POST /contacts gave it.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Agent } from 'undici'
import { startEmulator, trustEmulator, pairDevice } from './emulator-helpers.js'

const ACCOUNT = '+15550102000'
const PAT = '+15550102001'
const QUINN = '+15550102002' // never given a picture
const jidOf = (phone) => `${phone.slice(1)}@s.whatsapp.net`
const sha256 = (b) => createHash('sha256').update(b).digest('hex')

describe('profile pictures and push names with the real Baileys client', () => {
  let emu
  let client
  let dispatcher // trusts the media host's test CA
  const picture = async (phone, body) => {
    const r = await emu.api('POST', `/contacts/${phone}/picture`, body)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body
  }
  const fetchBytes = async (url) => {
    const res = await fetch(url, { dispatcher })
    return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) }
  }
  // the error code of a refused profilePictureUrl (Baileys' Boom carries the iq error's code as data)
  const refusal = (jid, type = 'image') => client.sock.profilePictureUrl(jid, type).then(() => 'answered', (err) => err.data)

  before(async () => {
    emu = await startEmulator()
    trustEmulator(emu)
    dispatcher = new Agent({ connect: { ca: (await emu.api('GET', '/media')).body.ca_pem } })
    client = (await pairDevice(emu, ACCOUNT, { settle: true })).client
  })

  after(async () => {
    await client?.end()
    await dispatcher?.close()
    if (emu) assert.equal((await emu.stop()).code, 0)
  })

  test('a generated picture: its URL serves the JPEG, the same URL until it changes, by PN and by LID', async () => {
    const set = await picture(PAT, {})
    assert.match(set.picture.url, /^https:\/\/127\.0\.0\.1:\d+\/v\/t61\.24694-24\/\d+_\d+_\d+_n\.jpg\?/)
    const url = await client.sock.profilePictureUrl(jidOf(PAT), 'image')
    assert.equal(url, set.picture.url)
    const got = await fetchBytes(url)
    assert.deepEqual([got.status, got.type], [200, 'image/jpeg'])
    assert.deepEqual([...got.bytes.subarray(0, 2)], [0xff, 0xd8], 'a JPEG')
    assert.equal(sha256(got.bytes), set.picture.sha256)
    assert.equal(await client.sock.profilePictureUrl(jidOf(PAT), 'preview'), url, 'asked again (preview): the same URL')
    const lid = (await emu.api('POST', '/contacts', { phone_number: PAT })).body.lid
    assert.equal(await client.sock.profilePictureUrl(lid, 'image'), url, 'by LID')

    const mine = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('not really a jpeg but bytes')])
    const changed = await picture(PAT, { base64: mine.toString('base64') })
    assert.notEqual(changed.picture.url, url)
    assert.ok(Number(changed.picture.id) > Number(set.picture.id), 'a new picture id')
    const url2 = await client.sock.profilePictureUrl(jidOf(PAT))
    assert.equal(url2, changed.picture.url)
    assert.deepEqual((await fetchBytes(url2)).bytes, mine)
    assert.equal((await fetchBytes(url)).status, 404, 'the old picture\'s URL is gone')
    assert.equal((await fetchBytes(url2.replace(/oh=01_[^&]+/, 'oh=01_forged'))).status, 403)
  })

  test('no picture is 404 item-not-found; a privacy that hides it is 401 not-authorized, whether or not there is one', async () => {
    assert.equal(await refusal(jidOf(QUINN)), 404)
    await picture(PAT, {})
    const hidden = await picture(PAT, { privacy: 'nobody' })
    assert.equal(hidden.privacy, 'nobody')
    assert.ok(hidden.picture, 'a privacy change keeps the picture')
    assert.equal(await refusal(jidOf(PAT)), 401)
    await picture(QUINN, { privacy: 'nobody' })
    assert.equal(await refusal(jidOf(QUINN)), 401, 'a refusal tells nothing about whether there is a picture')
    await picture(PAT, { privacy: 'contacts', contacts: ['+15550109999'] })
    assert.equal(await refusal(jidOf(PAT)), 401, 'the account is not in its contacts')
    await picture(PAT, { contacts: [ACCOUNT] })
    assert.equal(await client.sock.profilePictureUrl(jidOf(PAT)), hidden.picture.url)
    await picture(PAT, { privacy: 'everyone', remove: true })
    assert.equal(await refusal(jidOf(PAT)), 404)
  })

  test('the account\'s own picture: seen by itself, removed by removeProfilePicture', async () => {
    const own = await picture(ACCOUNT, { privacy: 'nobody' })
    assert.equal(own.picture, null)
    const set = await picture(ACCOUNT, {})
    assert.equal(await client.sock.profilePictureUrl(jidOf(ACCOUNT)), set.picture.url, 'its own, whatever its privacy')
    await client.sock.removeProfilePicture(jidOf(ACCOUNT))
    assert.equal((await emu.api('GET', `/contacts/${ACCOUNT}/picture`)).body.picture, null)
    assert.equal(await refusal(jidOf(ACCOUNT)), 404)
  })

  test('bad picture requests are refused', async () => {
    for (const [body, code] of [
      [{ base64: '***' }, 'invalid_picture'],
      [{ base64: 'AAAA', remove: true }, 'invalid_picture'],
      [{ privacy: 'friends' }, 'invalid_privacy'],
      [{ contacts: ['12'] }, 'invalid_contacts'],
      [{ colour: 'red' }, 'invalid_field']
    ]) {
      const r = await emu.api('POST', `/contacts/${PAT}/picture`, body)
      assert.deepEqual([r.status, r.body.error?.code], [400, code], JSON.stringify(body))
    }
  })

  test('a contact\'s messages carry the push name the control API gave it', async () => {
    const upserted = (id) => client.waitFor((r) => r.upserts.flatMap((u) => u.messages).find((m) => m.key.id === id), 10000, `upsert ${id}`)
    assert.equal((await emu.api('POST', '/contacts', { phone_number: PAT, name: 'Pat Push' })).status, 200)
    const first = await emu.api('POST', `/contacts/${PAT}/messages`, { to: ACCOUNT, text: 'hello' })
    assert.equal((await upserted(first.body.id)).pushName, 'Pat Push')
    await emu.api('POST', '/contacts', { phone_number: PAT, name: 'Pat Renamed' })
    const second = await emu.api('POST', `/contacts/${PAT}/messages`, { to: ACCOUNT, text: 'again' })
    assert.equal((await upserted(second.body.id)).pushName, 'Pat Renamed')
  })
})
