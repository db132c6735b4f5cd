// src/placeholders.js on its own: what the session store holds for a stub (never its content), the
// re-requests at a new socket and their bound, the report of a message given up on, and the phone's
// answer journaled under the stub's key. The whole flow against the emulator, with kills, is
// test/placeholder-resend.test.js.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { proto } from 'baileys'
import { Placeholders } from '../src/placeholders.js'

const silent = { info () {}, warn () {}, debug () {}, error () {} }

// the session store's key store as the worker's stores behave: a set is committed when it resolves
const fakeKeys = () => {
  const data = new Map()
  return {
    data,
    async get (type, ids) { return Object.fromEntries(ids.map((id) => [id, data.has(`${type}/${id}`) ? JSON.parse(data.get(`${type}/${id}`)) : null])) },
    async set (values) {
      for (const type in values) {
        for (const id in values[type]) {
          if (values[type][id]) data.set(`${type}/${id}`, JSON.stringify(values[type][id]))
          else data.delete(`${type}/${id}`)
        }
      }
    }
  }
}
const fakeSock = () => {
  const asked = []
  return { ev: new EventEmitter(), asked, requestPlaceholderResend: async (key, msgData) => { asked.push({ key, msgData }); return 'REQ' } }
}
const stub = (id, text = null) => ({
  key: { remoteJid: '15550001234@s.whatsapp.net', remoteJidAlt: '212345678901234@lid', fromMe: false, id, addressingMode: 'pn' },
  messageTimestamp: Math.floor(Date.now() / 1000),
  pushName: 'Ana',
  ...(text ? { message: { conversation: text } } : {})
})
const answer = (id, text) => ({
  key: { remoteJid: '15550009999@s.whatsapp.net', fromMe: true, id: 'PEER1' },
  message: {
    protocolMessage: {
      type: proto.Message.ProtocolMessage.Type.PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE,
      peerDataOperationRequestResponseMessage: {
        stanzaId: 'REQ',
        peerDataOperationResult: [
          { placeholderMessageResendResponse: { webMessageInfoBytes: Buffer.from('not a protobuf at all \xff\xff') } },
          {
            placeholderMessageResendResponse: {
              webMessageInfoBytes: proto.WebMessageInfo.encode({
                key: { remoteJid: '212345678901234@lid', fromMe: false, id },
                message: { conversation: text },
                messageTimestamp: 1700000000
              }).finish()
            }
          }
        ]
      }
    }
  }
})

test('a stub is noted in the session store (its key, never content) and asked for again by a later socket only', async () => {
  const keys = fakeKeys()
  const p = new Placeholders({ keys: () => keys, logger: silent })
  const first = fakeSock()
  p.attach(first, () => true)
  await p.remember(stub('ID1'), { attrs: { offline: '1' } })
  const stored = JSON.parse(keys.data.get('placeholder-resend/pending'))
  assert.deepEqual(Object.keys(stored), ['ID1'])
  assert.equal(stored.ID1.key.remoteJidAlt, '212345678901234@lid')
  assert.equal(stored.ID1.offline, true)
  assert.ok(!JSON.stringify(stored).includes('conversation'))

  // the socket that got the stub leaves the request to Baileys; a restarted worker (a new object) asks
  await p.askAgain(first, new Set(['ID1']), () => true)
  assert.equal(first.asked.length, 0)
  const restarted = new Placeholders({ keys: () => keys, logger: silent })
  const second = fakeSock()
  await restarted.askAgain(second, new Set(), () => true)
  assert.deepEqual(second.asked.map((a) => [a.key.id, a.key.remoteJid, a.msgData.pushName]), [['ID1', '15550001234@s.whatsapp.net', 'Ana']])
  assert.equal(JSON.parse(keys.data.get('placeholder-resend/pending')).ID1.requests, 1, 'the count is stored before the request')
})

test('the answer is recorded under the stub\'s key before the record goes; an unreadable result is skipped', async () => {
  const keys = fakeKeys()
  const p = new Placeholders({ keys: () => keys, logger: silent })
  p.attach(fakeSock(), () => true)
  await p.remember(stub('ID2'), { attrs: {} })
  const recorded = []
  await p.resent(answer('ID2', 'the content'), { attrs: {} }, async (msg, how) => {
    assert.ok(keys.data.has('placeholder-resend/pending'), 'the record stays until the content is recorded')
    recorded.push({ msg, how })
  })
  assert.equal(recorded.length, 1)
  assert.equal(recorded[0].how, 'live')
  assert.equal(recorded[0].msg.key.remoteJid, '15550001234@s.whatsapp.net', 'the stub\'s chat: the same event id as Baileys\' own upsert')
  assert.equal(recorded[0].msg.message.conversation, 'the content')
  assert.equal(recorded[0].msg.pushName, 'Ana')
  assert.equal(keys.data.has('placeholder-resend/pending'), false)
  assert.equal(p.isResolved('ID2'), true)
  assert.equal(p.isResolved('ID3'), false)

  // an answer for a message without a record (asked for before a logout, or by Baileys' retry path)
  const other = []
  await p.resent(answer('ID3', 'unasked'), { attrs: { offline: '1' } }, async (msg, how) => other.push({ msg, how }))
  assert.deepEqual(other.map((o) => [o.msg.key.remoteJid, o.how]), [['212345678901234@lid', 'append']])
})

test('a failed journal write keeps the record (the answer is not receipted, and asked for again if it never comes)', async () => {
  const keys = fakeKeys()
  const p = new Placeholders({ keys: () => keys, logger: silent })
  p.attach(fakeSock(), () => true)
  await p.remember(stub('ID4'), { attrs: {} })
  await assert.rejects(p.resent(answer('ID4', 'x'), { attrs: {} }, async () => { throw new Error('disk full') }), /disk full/)
  assert.ok(JSON.parse(keys.data.get('placeholder-resend/pending')).ID4)
  assert.equal(p.isResolved('ID4'), false)
})

test('given up after 5 re-requests: reported once before the record goes', async () => {
  const keys = fakeKeys()
  const reports = []
  const p = new Placeholders({ keys: () => keys, logger: silent, abandoned: async (s, info) => reports.push({ s, info }) })
  p.attach(fakeSock(), () => true)
  await p.remember(stub('ID5'), { attrs: {} })
  const sock = fakeSock()
  for (let n = 0; n < 5; n++) await p.askAgain(sock, new Set(), () => true)
  assert.equal(sock.asked.length, 5)
  assert.equal(reports.length, 0)
  await p.askAgain(sock, new Set(), () => true)
  assert.equal(sock.asked.length, 5)
  assert.deepEqual(reports.map((r) => [r.s.key.id, r.s.key.remoteJid, r.info.stubs]), [['ID5', '15550001234@s.whatsapp.net', 6]])
  assert.equal(keys.data.has('placeholder-resend/pending'), false)
  assert.equal(p.pending, 0)
})

test('the worker refuses to start without patch 004 (placeholder before ack)', async () => {
  const { assertDurableReceiptHooks } = await import('../src/baileys-patches.js')
  const { readFileSync } = await import('node:fs')
  const { fileURLToPath } = await import('node:url')
  const installed = (path, pkg = 'baileys') => readFileSync(fileURLToPath(new URL(path, import.meta.resolve(pkg))), 'utf8')
  assert.doesNotThrow(() => assertDurableReceiptHooks(installed))
  const without004 = (path, pkg) => {
    const text = installed(path, pkg)
    return path === './Socket/messages-recv.js' ? text.replaceAll('config.beforePlaceholderAck', 'config.somethingElse') : text
  }
  assert.throws(() => assertDurableReceiptHooks(without004), /placeholder before ack/)
})
