// A group message's signature is checked once for all the member phones that hold the same sender key
// (sender-keys.js remembers good answers), and the phones stay as strict as when each checked its own: a bad
// signature is refused for every member, and a member holding another signing key for the sender refuses
// a message that the others accepted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { newOwnSenderKey, distributionMessage, groupEncrypt, processDistribution, groupDecrypt, signatureChecks } from '../emulator/sender-keys.js'

const MEMBERS = 20

test('one skmsg to 20 member phones: the signature is computed once and every phone decrypts it', () => {
  const own = newOwnSenderKey()
  const records = Array.from({ length: MEMBERS }, () => processDistribution(null, distributionMessage(own)))
  const skmsg = groupEncrypt(own, Buffer.from('to all'))
  const before = signatureChecks.computed
  for (const record of records) assert.equal(groupDecrypt(record, skmsg).toString(), 'to all')
  assert.equal(signatureChecks.computed - before, 1)
  const next = groupEncrypt(own, Buffer.from('again'))
  for (const record of records) assert.equal(groupDecrypt(record, next).toString(), 'again')
  assert.equal(signatureChecks.computed - before, 2, 'another message is another check')
})

test('a bad signature is refused by every member, also after the good one was accepted', () => {
  const own = newOwnSenderKey()
  const records = Array.from({ length: MEMBERS }, () => processDistribution(null, distributionMessage(own)))
  const skmsg = groupEncrypt(own, Buffer.from('signed'))
  const forged = Buffer.from(skmsg)
  forged[forged.length - 1] ^= 0x01
  const body = Buffer.from(skmsg)
  body[body.length - 65] ^= 0x01 // the same signature over another ciphertext
  assert.equal(groupDecrypt(records[0], skmsg).toString(), 'signed')
  for (const record of records) {
    assert.throws(() => groupDecrypt(record, forged), /signature/)
    assert.throws(() => groupDecrypt(record, body), /signature/)
  }
  for (const record of records.slice(1)) assert.equal(groupDecrypt(record, skmsg).toString(), 'signed')
})

test('a member holding another signing key for the sender refuses what the others accepted', () => {
  const own = newOwnSenderKey()
  const other = { ...newOwnSenderKey(), keyId: own.keyId, chainKey: own.chainKey, iteration: own.iteration }
  const honest = processDistribution(null, distributionMessage(own))
  const misled = processDistribution(null, distributionMessage(other)) // same key id and chain, another signing key
  const skmsg = groupEncrypt(own, Buffer.from('mine'))
  assert.equal(groupDecrypt(honest, skmsg).toString(), 'mine')
  assert.throws(() => groupDecrypt(misled, skmsg), /signature/)
})
