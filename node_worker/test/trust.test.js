// Trust (issue 21): the sandbox root key is honoured only in the sandbox with a loopback server; a
// contact's signed pre-key must be signed by its identity key before a session is built from it
// (libsignal+6.0.0.patch); the pairing HMAC is compared in constant time
// (baileys+7.0.0-rc14+005+adv-hmac-constant-time.patch).
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import fs from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import libsignal from 'libsignal'
import curve from 'libsignal/src/curve.js'
import { configureSuccessfulPairing, Curve, proto, WA_ADV_ACCOUNT_SIG_PREFIX } from 'baileys'
import { readSettings, SettingsError } from '../src/settings.js'
import { assertStrictKeyChecks } from '../src/sandbox-trust.js'
import { pairDevice, startEmulator, tmpDir, trustEmulator, until } from './emulator-helpers.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const MAIN = path.join(here, '..', 'src', 'main.js')
const ROOT_KEY = Buffer.alloc(32, 7).toString('base64')

describe('WA_SANDBOX_ROOT_KEY only in the sandbox, with a loopback server', () => {
  const settings = (env) => readSettings({ WA_DATA_DIR: '/tmp/wa-trust-unused', WA_SANDBOX_ROOT_KEY: ROOT_KEY, ...env })

  test('refused without WA_SANDBOX=true (what `wa-gateway sandbox` sets)', () => {
    for (const sandbox of [undefined, '', 'false', '1', 'yes', 'TRUE ']) {
      const env = { WA_SERVER_URL: 'ws://127.0.0.1:3002/ws/chat' }
      if (sandbox !== undefined) env.WA_SANDBOX = sandbox
      assert.throws(() => settings(env), (err) => err instanceof SettingsError && /WA_SANDBOX_ROOT_KEY/.test(err.message) &&
        /not the sandbox/.test(err.message), `WA_SANDBOX=${sandbox}`)
    }
  })

  test('refused in the sandbox for a server that is not loopback', () => {
    for (const url of [undefined, 'wss://web.whatsapp.com/ws/chat', 'ws://10.0.0.1:3002/ws/chat', 'ws://192.168.1.2/ws/chat',
      'ws://127.0.0.1.evil.example/ws/chat', 'ws://localhost.evil.example/ws/chat', 'ws://127.0.0.1@evil.example/ws/chat',
      'ws://[::ffff:127.0.0.1]:3002/ws/chat', 'ws://0.0.0.0:3002/ws/chat', 'ws://[::]:3002/ws/chat', 'ws://[fd00::1]/ws/chat',
      'wss://emulator.internal:3002/ws/chat']) {
      const env = { WA_SANDBOX: 'true' }
      if (url) env.WA_SERVER_URL = url
      assert.throws(() => settings(env), (err) => err instanceof SettingsError && /loopback WA_SERVER_URL/.test(err.message), url)
    }
  })

  test('honoured in the sandbox with a loopback server', () => {
    for (const url of ['ws://127.0.0.1:3002/ws/chat', 'ws://localhost:3002/ws/chat', 'ws://LOCALHOST:3002/ws/chat',
      'ws://[::1]:3002/ws/chat', 'wss://127.0.0.1/ws/chat', 'ws://127.0.0.2:3002/ws/chat', 'ws://2130706433:3002/ws/chat']) {
      assert.equal(settings({ WA_SANDBOX: 'true', WA_SERVER_URL: url }).sandboxRootKey, ROOT_KEY, url)
    }
  })

  test('without the key nothing changes, in either mode', () => {
    for (const env of [{}, { WA_SANDBOX: 'false' }, { WA_SANDBOX: 'true', WA_SERVER_URL: 'wss://web.whatsapp.com/ws/chat' }]) {
      assert.equal(readSettings({ WA_DATA_DIR: '/tmp/wa-trust-unused', ...env }).sandboxRootKey, null)
    }
  })

  // The worker itself: exit 78 (EX_CONFIG, which the watchdog does not restart) with the reason recorded.
  const runWorker = (env) => new Promise((resolve, reject) => {
    const dataDir = tmpDir('wa-trust-worker-')
    fs.mkdirSync(path.join(dataDir, 'run')) // as the launcher does: the reason is left there
    const proc = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, WA_DATA_DIR: dataDir, WA_LOG_FORMAT: 'json', WA_SANDBOX_ROOT_KEY: ROOT_KEY, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    proc.stdout.on('data', (d) => { out += d })
    proc.stderr.on('data', (d) => { out += d })
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`the worker still runs after 20 s:\n${out}`)) }, 20000)
    proc.on('close', (code) => {
      clearTimeout(timer)
      let recorded = null
      try { recorded = JSON.parse(fs.readFileSync(path.join(dataDir, 'run', 'config-error.worker'), 'utf8')) } catch { /* no record: asserted below */ }
      resolve({ code, out, recorded })
    })
  })

  for (const [name, env] of [
    ['outside the sandbox (production settings plus a leaked key)', { WA_SERVER_URL: 'wss://web.whatsapp.com/ws/chat' }],
    ['outside the sandbox, even with a loopback server', { WA_SANDBOX: 'false', WA_SERVER_URL: 'ws://127.0.0.1:9/ws/chat' }],
    ['in the sandbox with a remote server', { WA_SANDBOX: 'true', WA_SERVER_URL: 'wss://web.whatsapp.com/ws/chat' }]
  ]) {
    test(`the worker exits 78 ${name}`, async () => {
      const { code, out, recorded } = await runWorker(env)
      assert.equal(code, 78, out)
      assert.equal(recorded?.program, 'worker')
      assert.match(recorded.reason, /WA_SANDBOX_ROOT_KEY/)
      const record = out.trim().split('\n').map((l) => { try { return JSON.parse(l) } catch { return {} } }).find((r) => r.event === 'worker.bad_setting')
      assert.ok(record, out)
      assert.ok(!out.includes('sandbox.trust_enabled'), 'the test root was never trusted')
    })
  }
})

describe('signed pre-key signatures (libsignal SessionBuilder.initOutgoing, patched)', () => {
  const memoryStore = (ours) => {
    const sessions = new Map()
    return {
      sessions,
      isTrustedIdentity: async () => true,
      getOurIdentity: async () => ours,
      getOurRegistrationId: async () => 1,
      loadSession: async (id) => sessions.get(id),
      storeSession: async (id, record) => { sessions.set(id, record) }
    }
  }
  const bundle = ({ spoil = false } = {}) => {
    const identity = curve.generateKeyPair()
    const spk = curve.generateKeyPair()
    const signature = Buffer.from(curve.calculateSignature(identity.privKey, spk.pubKey))
    if (spoil) signature[5] ^= 0x01
    return {
      registrationId: 4242,
      identityKey: identity.pubKey,
      signedPreKey: { keyId: 1, publicKey: spk.pubKey, signature },
      preKey: { keyId: 7, publicKey: curve.generateKeyPair().pubKey }
    }
  }

  test('a validly signed bundle builds a session', async () => {
    const store = memoryStore(curve.generateKeyPair())
    const addr = new libsignal.ProtocolAddress('15550007002', 0)
    await new libsignal.SessionBuilder(store, addr).initOutgoing(bundle())
    assert.equal(store.sessions.size, 1)
  })

  test('a bad signature is refused before any session is built', async () => {
    const store = memoryStore(curve.generateKeyPair())
    const addr = new libsignal.ProtocolAddress('15550007002', 0)
    await assert.rejects(new libsignal.SessionBuilder(store, addr).initOutgoing(bundle({ spoil: true })),
      (err) => err instanceof libsignal.SessionError && /Invalid signed pre-key signature/.test(err.message))
    assert.equal(store.sessions.size, 0)
  })

  test("the worker's start-up self-check finds both patches of issue 21", () => {
    assert.doesNotThrow(() => assertStrictKeyChecks())
  })
})

describe('a send to a contact whose bundle carries a bad signature (emulator)', () => {
  const ACCOUNT = '+15550007001'
  const CONTACT = '+15550007002'
  const CONTACT_JID = '15550007002@s.whatsapp.net'
  let emu
  let client
  let authDir

  before(async () => {
    emu = await startEmulator()
    trustEmulator(emu)
    ;({ client, authDir } = await pairDevice(emu, ACCOUNT, { settle: true }))
  })
  after(async () => {
    await client?.end()
    await emu?.stop()
  })

  const contactSessions = (lid) => fs.readdirSync(authDir).filter((f) => f.startsWith('session-') &&
    (f.includes('15550007002') || (lid && f.includes(lid))))

  test('POST /contacts switches the signature; a bad value is a 400', async () => {
    const bad = await emu.api('POST', '/contacts', { phone_number: CONTACT, signed_prekey_signature: 'nonsense' })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'invalid_signed_prekey_signature')
    const res = await emu.api('POST', '/contacts', { phone_number: CONTACT, signed_prekey_signature: 'bad' })
    assert.equal(res.status, 200)
    assert.equal(res.body.signed_prekey_signature, 'bad')
    const overview = await emu.api('GET', '/')
    assert.equal(overview.body.contacts.find((c) => c.phone_number === CONTACT).signed_prekey_signature, 'bad')
  })

  test('the send fails with a clear error, no session is built and nothing arrives', async () => {
    const lid = (await emu.api('POST', '/contacts', { phone_number: CONTACT })).body.lid?.split('@')[0]
    await assert.rejects(client.sock.sendMessage(CONTACT_JID, { text: 'to a forged key' }, { messageId: 'TRUSTBAD0001' }),
      /Invalid signed pre-key signature/)
    await client.flushCreds()
    assert.deepEqual(contactSessions(lid), [])
    assert.deepEqual((await emu.api('GET', `/contacts/${CONTACT}/messages`)).body, [])
  })

  test("with the contact's real signature again, the same send goes through (the emulator's own bundles verify)", async () => {
    await emu.api('POST', '/contacts', { phone_number: CONTACT, signed_prekey_signature: 'valid' })
    await client.sock.sendMessage(CONTACT_JID, { text: 'to the real key' }, { messageId: 'TRUSTOK00001' })
    const got = await until(async () => {
      const inbox = (await emu.api('GET', `/contacts/${CONTACT}/messages`)).body
      return inbox.find((m) => m.id === 'TRUSTOK00001')
    }, 10000, 'the contact received the message')
    assert.equal(got.text, 'to the real key')
  })
})

describe('the pairing HMAC (ADVSignedDeviceIdentityHMAC), patched to a constant-time compare', () => {
  const advSecret = Buffer.alloc(32, 3)
  const companion = Curve.generateKeyPair()
  const phone = Curve.generateKeyPair()
  const details = Buffer.from(proto.ADVDeviceIdentity.encode({ rawId: 99, timestamp: Math.floor(Date.now() / 1000), keyIndex: 1 }).finish())
  const accountSignature = Curve.sign(phone.private, Buffer.concat([WA_ADV_ACCOUNT_SIG_PREFIX, details, companion.public]))
  const signed = Buffer.from(proto.ADVSignedDeviceIdentity.encode({ details, accountSignatureKey: phone.public, accountSignature }).finish())
  const rightHmac = createHmac('sha256', advSecret).update(signed).digest()
  const pairSuccess = (hmac) => ({
    tag: 'iq',
    attrs: { id: 'pair-1', from: 's.whatsapp.net', type: 'set', xmlns: 'md' },
    content: [{
      tag: 'pair-success',
      attrs: {},
      content: [
        { tag: 'device-identity', attrs: { 'key-index': '1' }, content: Buffer.from(proto.ADVSignedDeviceIdentityHMAC.encode(hmac === undefined ? { details: signed } : { details: signed, hmac }).finish()) },
        { tag: 'platform', attrs: { name: 'android' } },
        { tag: 'device', attrs: { jid: '15550007001:1@s.whatsapp.net', lid: '77700001:1@lid' } }
      ]
    }]
  })
  const pair = (hmac) => configureSuccessfulPairing(pairSuccess(hmac), { advSecretKey: advSecret.toString('base64'), signedIdentityKey: companion, signalIdentities: [] })

  test('the right HMAC pairs', () => {
    const { creds, reply } = pair(rightHmac)
    assert.equal(creds.me.id, '15550007001:1@s.whatsapp.net')
    assert.equal(reply.attrs.id, 'pair-1')
  })

  test('a wrong, short, long or missing HMAC refuses pairing (Invalid account signature)', () => {
    const flipped = Buffer.from(rightHmac)
    flipped[31] ^= 0x80
    for (const [name, hmac] of [['last bit flipped', flipped], ['first byte wrong', Buffer.concat([Buffer.from([rightHmac[0] ^ 1]), rightHmac.subarray(1)])],
      ['short', rightHmac.subarray(0, 31)], ['long', Buffer.concat([rightHmac, Buffer.from([0])])], ['empty', Buffer.alloc(0)], ['missing', undefined]]) {
      assert.throws(() => pair(hmac), (err) => err.isBoom && err.message === 'Invalid account signature', name)
    }
  })

  test('the comparison is crypto.timingSafeEqual, over the received and the expected HMAC', () => {
    const cjsCrypto = createRequire(import.meta.url)('node:crypto')
    const real = cjsCrypto.timingSafeEqual
    const calls = []
    cjsCrypto.timingSafeEqual = (a, b) => { calls.push([Buffer.from(a), Buffer.from(b)]); return real(a, b) }
    syncBuiltinESMExports() // the live binding Baileys imported now points at the spy
    try {
      pair(rightHmac)
      const flipped = Buffer.from(rightHmac)
      flipped[0] ^= 1
      assert.throws(() => pair(flipped), /Invalid account signature/)
    } finally {
      cjsCrypto.timingSafeEqual = real
      syncBuiltinESMExports()
    }
    const hmacCalls = calls.filter(([, b]) => b.equals(rightHmac))
    assert.equal(hmacCalls.length, 2, 'one constant-time compare per pairing')
    assert.ok(hmacCalls[0][0].equals(rightHmac))
  })
})
