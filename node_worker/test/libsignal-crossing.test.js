// node_worker/patches/libsignal+6.0.0.patch: two parties that start a session with each other at the same
// instant end up with two sessions each, and each writes on the one the other started. libsignal 6 tries
// every session of a record on the session itself: a failed try steps that session's ratchet, and the
// record is stored with the damage once another session decrypts. The next message written on the damaged
// session is then unreadable at the other side ("Bad MAC"), for good. Patched, each try runs on a copy and
// the session the other side writes on becomes the open one, as phones' libsignal does.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import libsignal from 'libsignal'

function party (name) {
  const identity = libsignal.keyhelper.generateIdentityKeyPair()
  const registrationId = libsignal.keyhelper.generateRegistrationId()
  const signed = libsignal.keyhelper.generateSignedPreKey(identity, 1)
  const preKeys = new Map()
  const sessions = new Map()
  const store = {
    getOurIdentity: () => identity,
    getOurRegistrationId: () => registrationId,
    isTrustedIdentity: () => true,
    saveIdentity: () => true,
    loadSession: (id) => sessions.has(id) ? libsignal.SessionRecord.deserialize(sessions.get(id)) : undefined,
    storeSession: (id, record) => { sessions.set(id, record.serialize()) },
    loadPreKey: (id) => preKeys.get(Number(id)),
    removePreKey: (id) => { preKeys.delete(Number(id)) },
    loadSignedPreKey: (id) => Number(id) === 1 ? signed.keyPair : undefined
  }
  let nextPreKey = 1
  return {
    name,
    addr: new libsignal.ProtocolAddress(name, 1),
    bundle () {
      const id = nextPreKey++
      const pk = libsignal.keyhelper.generatePreKey(id)
      preKeys.set(id, pk.keyPair)
      return {
        registrationId,
        identityKey: identity.pubKey,
        signedPreKey: { keyId: 1, publicKey: signed.keyPair.pubKey, signature: signed.signature },
        preKey: { keyId: id, publicKey: pk.keyPair.pubKey }
      }
    },
    openBaseKey: (other) => store.loadSession(other.addr.toString()).getOpenSession()?.indexInfo.baseKey.toString('base64'),
    async start (other) { await new libsignal.SessionBuilder(store, other.addr).initOutgoing(other.bundle()) },
    async encrypt (other, text) { return new libsignal.SessionCipher(store, other.addr).encrypt(Buffer.from(text)) },
    async decrypt (other, msg) {
      const cipher = new libsignal.SessionCipher(store, other.addr)
      const body = Buffer.from(msg.body, 'binary')
      return String(msg.type === 3 ? await cipher.decryptPreKeyWhisperMessage(body) : await cipher.decryptWhisperMessage(body))
    }
  }
}

test('sessions that crossed keep working both ways (each try on a copy; the used session becomes the open one)', async () => {
  const quiet = { info: console.info, warn: console.warn, error: console.error }
  console.info = console.warn = console.error = () => {} // libsignal narrates every session change
  try {
    const a = party('a')
    const b = party('b')
    // Both write their first message at the same instant: each starts a session from the other's bundle.
    await a.start(b)
    await b.start(a)
    const fromA = await a.encrypt(b, 'a1')
    const fromB = await b.encrypt(a, 'b1')
    const late = await b.encrypt(a, 'b1 late') // written on b's first session, delivered after b2 below
    assert.equal(await b.decrypt(a, fromA), 'a1') // b now also holds a's session, and opens it
    assert.equal(await a.decrypt(b, fromB), 'b1')
    // b writes on a's session now; a tries its open one (b's) first: a failed try must leave it intact,
    // since a message still in flight on it (`late`) must decrypt afterwards.
    assert.equal(await a.decrypt(b, await b.encrypt(a, 'b2')), 'b2')
    assert.equal(await a.decrypt(b, late), 'b1 late')
    // Each side goes on writing; every message must decrypt, in both directions, whatever session it uses.
    const failures = []
    for (let n = 2; n < 8; n++) {
      for (const [from, to] of [[a, b], [b, a], [b, a], [a, b]]) {
        const text = `${from.name}${n}`
        try {
          assert.equal(await to.decrypt(from, await from.encrypt(to, text)), text)
        } catch (err) {
          failures.push(`${text}: ${err.message}`)
        }
      }
    }
    assert.deepEqual(failures, [])
    // And they converged: both write on one session (the used one became the open one on each side).
    assert.equal(a.openBaseKey(b), b.openBaseKey(a))
  } finally {
    Object.assign(console, quiet)
  }
})
