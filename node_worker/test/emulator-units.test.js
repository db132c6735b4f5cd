// The emulator's pieces without a client: signatures (its own and the patched Baileys Curve.verify), the
// certificate chain, the QR format, the root-key subcommand and the test helper's start-up timeout.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { Curve, proto } from 'baileys'
import { EMULATOR_MAIN, startEmulator, tmpDir } from './emulator-helpers.js'
import { generateKeyPair, sign, verifyStrict } from '../emulator/crypto.js'
import { checkDeviceSignature, deviceSignatureMessage, accountSignatureMessage, parseQr } from '../emulator/pairing.js'
import { makeCertChain, verifyCertChain } from '../emulator/certs.js'

describe('strict signature verification (unit)', () => {
  test('a forged signature is rejected by the emulator and by the patched Baileys Curve.verify', () => {
    const kp = generateKeyPair()
    const msg = Buffer.from('pair-device-sign payload')
    const good = sign(kp.private, msg)
    assert.equal(verifyStrict(kp.public, msg, good), true)
    const forged = Buffer.from(good)
    forged[10] ^= 0x01
    assert.equal(verifyStrict(kp.public, msg, forged), false)
    assert.equal(verifyStrict(kp.public, msg, Buffer.alloc(64)), false)
    assert.equal(verifyStrict(kp.public, Buffer.from('other'), good), false)
    assert.equal(verifyStrict(kp.public, msg, good.subarray(0, 63)), false)
    // rc14's Curve.verify accepted it; node_worker/patches makes Baileys verify strictly too
    assert.equal(Curve.verify(kp.public, msg, good), true)
    assert.equal(Curve.verify(kp.public, msg, forged), false)
  })

  test('pair-device-sign: only the companion identity key can produce the device signature', () => {
    const account = generateKeyPair()
    const companion = generateKeyPair()
    const attacker = generateKeyPair()
    const details = Buffer.from(proto.ADVDeviceIdentity.encode({ rawId: 7, timestamp: 1, keyIndex: 1 }).finish())
    const accountSignature = sign(account.private, accountSignatureMessage(details, companion.public))
    const base = { issuedDetails: details, issuedAccountSignature: accountSignature, companionIdentity: companion.public, accountKey: account.public }
    const ok = { details, accountSignature, deviceSignature: sign(companion.private, deviceSignatureMessage(details, companion.public, account.public)) }
    assert.equal(checkDeviceSignature({ ...base, returned: ok }), null)
    const wrongKey = { ...ok, deviceSignature: sign(attacker.private, deviceSignatureMessage(details, companion.public, account.public)) }
    assert.equal(checkDeviceSignature({ ...base, returned: wrongKey }), 'device_signature_invalid')
    const random = { ...ok, deviceSignature: Buffer.alloc(64, 7) }
    assert.equal(checkDeviceSignature({ ...base, returned: random }), 'device_signature_invalid')
    const tampered = { ...ok, details: Buffer.concat([details, Buffer.from([0])]) }
    assert.equal(checkDeviceSignature({ ...base, returned: tampered }), 'details_changed')
  })

  test('certificate chain verifies against its root only', () => {
    const root = generateKeyPair()
    const other = generateKeyPair()
    const leafKey = generateKeyPair().public
    const chain = makeCertChain(root, leafKey)
    assert.equal(verifyCertChain(chain, root.public, leafKey), true)
    assert.equal(verifyCertChain(chain, other.public, leafKey), false)
    const decoded = proto.CertChain.decode(chain)
    decoded.leaf.signature = Buffer.from(decoded.leaf.signature)
    decoded.leaf.signature[3] ^= 1
    assert.equal(verifyCertChain(Buffer.from(proto.CertChain.encode(decoded).finish()), root.public, leafKey), false)
  })

  test('QR parser accepts the rc14 format only', () => {
    const k = Buffer.alloc(32, 1).toString('base64')
    const parsed = parseQr(`https://wa.me/settings/linked_devices#2@ref,${k},${k},${k},1`)
    assert.equal(parsed.ref, '2@ref')
    assert.equal(parsed.platform, '1')
    assert.throws(() => parseQr('2@ref,abc'), (e) => e.status === 400 && e.code === 'qr_invalid')
  })
})

describe('root-key subcommand', () => {
  test('creates the key file once and prints only the base64 public key', async () => {
    const dir = tmpDir()
    const env = { ...process.env, WA_EMULATOR_ROOT_KEY_FILE: path.join(dir, 'root.json') }
    const run = () => promisify(execFile)(process.execPath, [EMULATOR_MAIN, 'root-key'], { env, timeout: 10000, killSignal: 'SIGKILL' })
    const a = await run()
    const b = await run()
    assert.match(a.stdout, /^[A-Za-z0-9+/]{43}=\n$/)
    assert.equal(Buffer.from(a.stdout.trim(), 'base64').length, 32)
    assert.equal(a.stdout, b.stdout)
    const file = JSON.parse(fs.readFileSync(path.join(dir, 'root.json'), 'utf8'))
    assert.equal(file.public, a.stdout.trim())
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })
})

describe('test helper startEmulator', () => {
  const gone = (pid) => {
    try { process.kill(pid, 0) } catch (err) { return err.code === 'ESRCH' }
    return false
  }

  test('a start-up timeout kills the child before rejecting', async () => {
    const err = await startEmulator({ timeoutMs: 1 }).then(() => null, (e) => e)
    assert.ok(err, 'the start must fail')
    assert.match(err.message, /did not start within 1 ms/)
    assert.equal(typeof err.pid, 'number')
    const leaked = !gone(err.pid)
    if (leaked) process.kill(err.pid, 'SIGKILL') // so that a regression fails here instead of hanging the file
    assert.ok(!leaked, `emulator pid ${err.pid} was still alive`)
  })
})
