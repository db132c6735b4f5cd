// What the auth store's tests share: temporary session dirs (removed after the file's tests), a sample of
// every key type Baileys stores, and the check that a store holds exactly those keys.
import { after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { proto } from 'baileys'

const tempDirs = []
export async function tempDir () {
  const d = await mkdtemp(join(tmpdir(), 'auth-store-test-'))
  tempDirs.push(d)
  return join(d, 'session')
}
after(async () => {
  for (const d of tempDirs) await rm(d, { recursive: true, force: true })
})

export const keyPair = () => ({ public: randomBytes(32), private: randomBytes(32) })

export function sampleKeys () {
  return {
    'pre-key': { 1: keyPair(), 2: keyPair() },
    session: { '123@s.whatsapp.net.0': randomBytes(200) },
    'sender-key': { 'group@g.us::456::0': randomBytes(120) },
    'sender-key-memory': { 'group@g.us': { '456@s.whatsapp.net': true } },
    'app-state-sync-key': {
      AAAAAK1B: proto.Message.AppStateSyncKeyData.fromObject({
        keyData: randomBytes(32),
        fingerprint: { rawId: 7, currentIndex: 1, deviceIndexes: [0, 1] },
        timestamp: 1700000000000
      })
    },
    'app-state-sync-version': {
      regular_high: { version: 12, hash: randomBytes(128), indexValueMap: { abc: { valueMac: randomBytes(32) } } }
    },
    'lid-mapping': { '123': '999', '999_reverse': '123' },
    'device-list': { '123': ['0', '5'] },
    tctoken: { '123@s.whatsapp.net': { token: randomBytes(16), timestamp: '1700000000' } },
    'identity-key': { '123.0': randomBytes(33) }
  }
}

export async function assertKeys (store, expected) {
  for (const [type, entries] of Object.entries(expected)) {
    const got = await store.state.keys.get(type, Object.keys(entries))
    for (const [id, value] of Object.entries(entries)) {
      if (!value) {
        assert.equal(got[id], null, `${type}/${id} should be absent`)
      } else if (type === 'app-state-sync-key') {
        assert.ok(got[id] instanceof proto.Message.AppStateSyncKeyData, 'revived as proto')
        assert.ok(Buffer.from(got[id].keyData).equals(Buffer.from(value.keyData)))
        assert.equal(got[id].fingerprint.rawId, value.fingerprint.rawId)
        assert.deepEqual(got[id].fingerprint.deviceIndexes, value.fingerprint.deviceIndexes)
        assert.equal(Number(got[id].timestamp), Number(value.timestamp))
      } else {
        assert.deepEqual(got[id], value, `${type}/${id}`)
      }
    }
  }
}
