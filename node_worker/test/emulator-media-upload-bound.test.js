// WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES: the media host's bound of one upload also bounds the document a contact
// sends (less the encryption's 64 bytes), so that a benchmark can raise both together (bench/media_memory.py
// sends 100 MiB documents both ways; the default stays WhatsApp-like at 64 MiB).
import { test, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startEmulator } from './emulator-helpers.js'

const CONTACT = '+15550007333'
const NOBODY = '+15550007444' // no linked device: a document the bound lets through is answered 409
const documentOf = (n) => ({ to: NOBODY, media: { kind: 'document', base64: randomBytes(n).toString('base64'), mimetype: 'application/pdf' } })

describe('the media upload bound', () => {
  const started = []
  after(async () => { for (const emu of started) await emu.stop() })
  const start = async (env) => { const emu = await startEmulator({ env }); started.push(emu); return emu }

  test('lowered to 1 MiB: a contact\'s document over it (less 64 bytes) is refused, one at it passes', async () => {
    const emu = await start({ WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES: String(1024 * 1024) })
    const over = await emu.api('POST', `/contacts/${CONTACT}/messages`, documentOf(1024 * 1024 - 63))
    assert.equal(over.status, 400, JSON.stringify(over.body))
    assert.equal(over.body.error.code, 'invalid_media')
    assert.match(over.body.error.message, /1048512 bytes/)
    const at = await emu.api('POST', `/contacts/${CONTACT}/messages`, documentOf(1024 * 1024 - 64))
    assert.equal(at.status, 409, JSON.stringify(at.body)) // past the media checks: nobody to send it to
    assert.equal(at.body.error.code, 'no_linked_device')
  })

  test('by default 64 MiB: a 2 MiB document passes the media checks', async () => {
    const emu = await start({})
    const res = await emu.api('POST', `/contacts/${CONTACT}/messages`, documentOf(2 * 1024 * 1024))
    assert.equal(res.status, 409, JSON.stringify(res.body))
    assert.equal(res.body.error.code, 'no_linked_device')
  })

  test('a bound that is not a number stops the emulator at start', async () => {
    await assert.rejects(start({ WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES: 'lots' }), /exited/)
  })
})
