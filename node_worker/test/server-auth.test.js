// Server authentication: the patched Baileys (node_worker/patches/baileys+7.0.0-rc14+001+server-auth.patch) refuses a
// server whose certificate chain does not lead to the trusted root or whose leaf is not its Noise static
// key, before it sends its own static key or any registration/login payload.
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Curve, proto, verifyServerCertChain, WA_CERT_DETAILS } from 'baileys'
import { EMULATOR_MAIN, startEmulator, trustEmulator, openClient, pairDevice, tmpDir } from './emulator-helpers.js'
import { generateKeyPair, sign } from '../emulator/crypto.js'
import { CERT_MODES, makeCertChain } from '../emulator/certs.js'
import { assertStrictServerAuth } from '../src/sandbox-trust.js'

const ACCOUNT = '+15550003333'

/** the reason a chain is refused for, or 'accepted' */
const verdict = (chain, staticKey, opts) => {
  try {
    verifyServerCertChain(chain, staticKey, opts)
    return 'accepted'
  } catch (err) {
    assert.equal(err.isBoom, true)
    assert.equal(err.data?.code, 'untrusted_server')
    assert.match(err.message, /^untrusted_server: /)
    return err.data.reason
  }
}

/** re-encodes a chain after `edit` changed its decoded form */
const edited = (chain, edit) => {
  const decoded = proto.CertChain.decode(chain)
  edit(decoded)
  return Buffer.from(proto.CertChain.encode(decoded).finish())
}

describe('certificate chain checks (unit, the patched verifyServerCertChain)', () => {
  const root = generateKeyPair()
  const server = generateKeyPair()
  const opts = { rootKey: root.public, rootSerial: 0 }
  const now = Math.floor(Date.now() / 1000)

  test("the worker's start-up self-check passes with the patch and fails on rc14's Curve.verify", () => {
    assert.doesNotThrow(() => assertStrictServerAuth())
    const strict = Curve.verify
    Curve.verify = () => true // what rc14 does for any 64-byte signature
    try {
      assert.throws(() => assertStrictServerAuth(), /without node_worker\/patches/)
    } finally {
      Curve.verify = strict
    }
  })

  test('Curve.verify rejects a forged signature (rc14 accepted every 64-byte signature)', () => {
    const kp = generateKeyPair()
    const msg = Buffer.from('pair-success account signature')
    const good = sign(kp.private, msg)
    const forged = Buffer.from(good)
    forged[10] ^= 0x01
    assert.equal(Curve.verify(kp.public, msg, good), true)
    assert.equal(Curve.verify(kp.public, msg, forged), false)
    assert.equal(Curve.verify(kp.public, msg, Buffer.alloc(64)), false)
    assert.equal(Curve.verify(kp.public, Buffer.from('other'), good), false)
    assert.equal(Curve.verify(generateKeyPair().public, msg, good), false)
  })

  test('every emulator mode: only `valid` is accepted, each other one for its own reason', () => {
    const expected = {
      valid: 'accepted',
      other_root: 'intermediate_signature_invalid',
      leaf_mismatch: 'leaf_key_mismatch',
      expired: 'leaf_expired',
      not_yet_valid: 'leaf_not_yet_valid',
      bad_signature: 'leaf_signature_invalid',
      wrong_issuer: 'leaf_issuer_serial'
    }
    assert.deepEqual(Object.keys(expected).sort(), Object.keys(CERT_MODES).sort())
    for (const [mode, reason] of Object.entries(expected)) {
      assert.equal(verdict(makeCertChain(root, server.public, { mode }), server.public, opts), reason, mode)
    }
  })

  test('the intermediate: trusted root, issuer serial, key length, validity window', () => {
    const chain = (intermediate, extra = {}) => makeCertChain(root, server.public, { intermediate, ...extra })
    assert.equal(verdict(chain({}), server.public, opts), 'accepted')
    assert.equal(verdict(chain({}), server.public, { ...opts, rootKey: generateKeyPair().public }), 'intermediate_signature_invalid')
    assert.equal(verdict(chain({ issuerSerial: 3 }), server.public, opts), 'intermediate_issuer_serial')
    assert.equal(verdict(chain({ key: Buffer.alloc(31, 1) }), server.public, opts), 'malformed_chain')
    assert.equal(verdict(chain({ notAfter: now - 10 }), server.public, opts), 'intermediate_expired')
    assert.equal(verdict(chain({ notBefore: now + 600 }), server.public, opts), 'intermediate_not_yet_valid')
    assert.equal(verdict(chain({ notAfter: null }), server.public, opts), 'intermediate_expired', 'no notAfter is no validity')
    // the validity window is checked against the verifier's clock
    assert.equal(verdict(chain({}), server.public, { ...opts, nowSeconds: now + 30 * 24 * 3600 }), 'intermediate_expired')
  })

  test('the leaf: issuer serial, key equal to the Noise static key, validity window', () => {
    const chain = (leaf) => makeCertChain(root, server.public, { leaf })
    assert.equal(verdict(chain({ issuerSerial: 0 }), server.public, opts), 'leaf_issuer_serial')
    assert.equal(verdict(chain({}), generateKeyPair().public, opts), 'leaf_key_mismatch')
    assert.equal(verdict(chain({}), server.public.subarray(0, 31), opts), 'leaf_key_mismatch')
    assert.equal(verdict(chain({ key: Buffer.concat([server.public, Buffer.from([0])]) }), server.public, opts), 'leaf_key_mismatch')
    assert.equal(verdict(chain({ notAfter: now - 1 }), server.public, opts), 'leaf_expired')
    assert.equal(verdict(chain({ notBefore: now + 600 }), server.public, opts), 'leaf_not_yet_valid')
  })

  test('malformed chains: missing parts, short signatures, undecodable bytes', () => {
    const good = makeCertChain(root, server.public)
    assert.equal(verdict(edited(good, (c) => { c.leaf = null }), server.public, opts), 'malformed_chain')
    assert.equal(verdict(edited(good, (c) => { c.intermediate.signature = null }), server.public, opts), 'malformed_chain')
    assert.equal(verdict(edited(good, (c) => { c.leaf.signature = c.leaf.signature.subarray(0, 63) }), server.public, opts), 'malformed_chain')
    assert.equal(verdict(edited(good, (c) => { c.intermediate.signature = c.intermediate.signature.subarray(0, 63) }), server.public, opts), 'malformed_chain')
    assert.equal(verdict(Buffer.from([0xff, 0xff, 0xff]), server.public, opts), 'malformed_chain')
  })

  test('the trusted root defaults to WA_CERT_DETAILS, read at each verification (the sandbox mechanism)', () => {
    const saved = WA_CERT_DETAILS.PUBLIC_KEY
    try {
      const chain = makeCertChain(root, server.public)
      assert.equal(verdict(chain, server.public), 'intermediate_signature_invalid', "WhatsApp's root does not trust the emulator")
      WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(root.public)
      assert.equal(verdict(chain, server.public), 'accepted')
    } finally {
      WA_CERT_DETAILS.PUBLIC_KEY = saved
    }
  })
})

describe('the real Baileys against the emulator in each certificate mode', () => {
  let emu
  const clients = []

  before(async () => {
    emu = await startEmulator()
    trustEmulator(emu)
  })

  after(async () => {
    for (const c of clients) await c.end().catch(() => {})
    if (emu) {
      const { code } = await emu.stop()
      assert.equal(code, 0)
    }
  })

  const setMode = async (mode) => {
    const res = await emu.api('POST', '/cert-mode', { mode })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.mode, mode)
  }
  const handshakes = async () => (await emu.api('GET', '/')).body.handshakes

  /** one connection attempt; resolves with how it ended */
  const attempt = async (authDir) => {
    const c = await openClient(emu, authDir)
    clients.push(c)
    await c.waitClose(8000)
    return c
  }

  const refusals = {
    other_root: 'intermediate_signature_invalid',
    leaf_mismatch: 'leaf_key_mismatch',
    expired: 'leaf_expired',
    not_yet_valid: 'leaf_not_yet_valid',
    bad_signature: 'leaf_signature_invalid',
    wrong_issuer: 'leaf_issuer_serial'
  }

  for (const [mode, reason] of Object.entries(refusals)) {
    test(`${mode}: a new device refuses the server before registering (no QR, no pairing)`, async () => {
      await setMode(mode)
      const before = await handshakes()
      const c = await attempt(tmpDir())
      const error = c.rec.closed.error
      assert.equal(error?.data?.code, 'untrusted_server', `closed with ${error?.message}`)
      assert.equal(error.data.reason, reason)
      assert.match(error.message, /^untrusted_server: /)
      assert.equal(c.rec.open, false, 'never open')
      assert.deepEqual(c.rec.qrs, [], 'no QR')
      const afterCount = await handshakes()
      assert.equal(afterCount.started, before.started + 1, 'the server said hello once')
      assert.equal(afterCount.completed, before.completed, 'the client never sent its static key or payload')
      const { body } = await emu.api('GET', '/')
      assert.equal(body.accounts.length, 0, 'nothing was paired')
    })
  }

  test('valid: pairing works; then a linked device refuses another root and logs in again once valid', async () => {
    await setMode('valid')
    const paired = await pairDevice(emu, ACCOUNT)
    clients.push(paired.client)
    await paired.client.end()

    await setMode('other_root')
    const before = await handshakes()
    const refused = await attempt(paired.authDir)
    assert.equal(refused.rec.closed.error?.data?.reason, 'intermediate_signature_invalid')
    assert.equal(refused.rec.open, false)
    assert.equal((await handshakes()).completed, before.completed, 'no login payload was sent')

    await setMode('leaf_mismatch')
    const mismatch = await attempt(paired.authDir)
    assert.equal(mismatch.rec.closed.error?.data?.reason, 'leaf_key_mismatch')
    assert.equal(mismatch.rec.open, false)

    await setMode('valid')
    const again = await openClient(emu, paired.authDir)
    clients.push(again)
    await again.waitOpen(10000)
    assert.equal(again.sock.user.id, paired.scan.jid)
    await again.end()
  })

  test('control API: an unknown mode is a 400 and changes nothing', async () => {
    await setMode('valid')
    const res = await emu.api('POST', '/cert-mode', { mode: 'lenient' })
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'invalid_mode')
    assert.equal((await emu.api('GET', '/')).body.cert_mode, 'valid')
  })
})

describe('WA_EMULATOR_CERT_MODE', () => {
  test('starts the emulator in a mode; an unknown mode is a configuration error', async () => {
    const emu = await startEmulator({ env: { WA_EMULATOR_CERT_MODE: 'leaf_mismatch' } })
    try {
      assert.equal(emu.info.cert_mode, 'leaf_mismatch')
      assert.equal((await emu.api('GET', '/')).body.cert_mode, 'leaf_mismatch')
    } finally {
      await emu.stop()
    }
    const env = { ...process.env, WA_EMULATOR_PORT: '0', WA_EMULATOR_CERT_MODE: 'nope' }
    await assert.rejects(promisify(execFile)(process.execPath, [EMULATOR_MAIN], { env, timeout: 10000 }),
      (err) => err.code > 0 && /WA_EMULATOR_CERT_MODE must be one of valid, other_root/.test(err.stdout + err.stderr))
  })
})
