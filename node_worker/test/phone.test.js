// The worker's side of the one phone number rule: it accepts exactly the E.164 strings the gateway
// produces (tests/fixtures/phone_numbers.json, shared with tests/test_phone_numbers.py).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { isE164, countryCallingCode, phoneToJid, jidToPhone } from '../src/phone.js'

const { vectors } = JSON.parse(readFileSync(new URL('../../tests/fixtures/phone_numbers.json', import.meta.url)))

test('the worker accepts a vector exactly when the gateway leaves it unchanged', () => {
  for (const v of vectors) {
    assert.equal(isE164(v.input), v.e164 === v.input, `${JSON.stringify(v.input)}: ${v.why}`)
    if (v.e164 !== null) assert.equal(isE164(v.e164), true, `gateway output ${v.e164} refused`)
  }
})

test('non-strings are refused', () => {
  for (const value of [undefined, null, 1234567890, ['+1234567890'], { toString: () => '+1234567890' }]) {
    assert.equal(isE164(value), false)
  }
})

test('country calling codes are found as phonenumbers finds them', () => {
  assert.equal(countryCallingCode('1234567890'), '1')
  assert.equal(countryCallingCode('442079460958'), '44')
  assert.equal(countryCallingCode('2121234567'), '212')
  assert.equal(countryCallingCode('9991234567'), null)
})

test('JIDs round-trip', () => {
  assert.equal(phoneToJid('+15550001111'), '15550001111@s.whatsapp.net')
  assert.equal(jidToPhone('15550001111:3@s.whatsapp.net'), '+15550001111')
  assert.equal(jidToPhone('123@lid'), null)
})
