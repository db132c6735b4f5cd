// Linking by pairing code, the phone's side (whatsmeow pair-code.go and Baileys requestPairingCode
// describe the same exchange):
//   client -> <iq xmlns=md type=set><link_code_companion_reg stage=companion_hello jid=PHONE@s.whatsapp.net>
//             wrapped companion ephemeral key = salt(32) || iv(16) || AES-CTR(PBKDF2(code, salt), pub)
//   server -> result <link_code_companion_reg><link_code_pairing_ref>
//   the user types the code on the phone (POST /phone/pair-code): the phone unwraps the companion's key
//   server -> <notification type=link_code_companion_reg> primary identity + the phone's own wrapped key
//   client -> <iq stage=companion_finish> key bundle = salt(32) || iv(12) || AES-GCM(HKDF(DH(ephemerals)),
//             companionIdentity || primaryIdentity || random)
//   then pair-success exactly as after a QR scan, with the ADV secret both sides derive from the exchange.
// A wrong code leaves both sides with different ephemeral keys, so the bundle fails its GCM check: that is
// how the phone learns the code was wrong (the code itself never leaves either side).
// A hello the server will not take is answered with an error iq instead of the ref (companions report both
// from the real server): 429 rate-overlimit once a number asked for too many codes lately, 400 bad-request
// for a number that is not on WhatsApp. Baileys' requestPairingCode has returned its code by then: the
// companion must read this answer to know that the code it shows is worthless.
import { createCipheriv, createDecipheriv, pbkdf2 } from 'node:crypto'
import { promisify } from 'node:util'
import { child, bytesOf, S_WHATSAPP_NET } from './wa.js'
import { normalizePhone, e164 } from './accounts.js'
import { aesGcmDecrypt, generateKeyPair, hkdf, randomBytes, randomId, sharedKey, toRawPub } from './crypto.js'
import { apiError } from './errors.js'

const pbkdf2Async = promisify(pbkdf2)
// WhatsApp's code alphabet (Crockford base32 without 0, I, O, U): 8 characters, 40 bits
const CODE_RE = /^[1-9A-HJ-NP-TV-Z]{8}$/
const PBKDF2_ROUNDS = 2 << 16
const FINISH_WAIT_MS = 15000
const BUNDLE_INFO = 'link_code_pairing_key_bundle_encryption_key'

/** the 32-byte key a pairing code and a salt give (PBKDF2-SHA256, as both sides derive it) */
export const codeKey = async (code, salt) => Buffer.from(await pbkdf2Async(Buffer.from(code), salt, PBKDF2_ROUNDS, 32, 'sha256'))

const ctr = (key, iv, data, decrypt) => {
  const c = (decrypt ? createDecipheriv : createCipheriv)('aes-256-ctr', key, iv)
  return Buffer.concat([c.update(data), c.final()])
}

/** salt || iv || AES-CTR(code key, pub): how each side hands its ephemeral key to the other */
export const wrapKey = async (code, pub) => {
  const salt = randomBytes(32)
  const iv = randomBytes(16)
  return Buffer.concat([salt, iv, ctr(await codeKey(code, salt), iv, pub, false)])
}
export const unwrapKey = async (code, wrapped) =>
  ctr(await codeKey(code, wrapped.subarray(0, 32)), wrapped.subarray(32, 48), wrapped.subarray(48, 80), true)

/** "abcd-efgh" / "ABCDEFGH" -> "ABCDEFGH", or null when it is no pairing code */
export const normalizeCode = (input) => {
  if (typeof input !== 'string') return null
  const code = input.replace(/[\s-]/g, '').toUpperCase()
  return CODE_RE.test(code) ? code : null
}

export class PairCode {
  constructor (emu) {
    this.emu = emu
    this.ttlMs = emu.settings.pairCodeTtlMs ?? 180000
    // at most `limit` hellos per number within `windowMs` (WA_EMULATOR_PAIR_CODE_LIMIT, _WINDOW_MS; 0: no limit)
    this.limit = emu.settings.pairCodeLimit ?? 5
    this.windowMs = emu.settings.pairCodeWindowMs ?? 3600000
    this.asked = new Map() // number -> times of its accepted hellos within the window, oldest first
  }

  // [code, text] of the error iq for a hello for `phone` the server refuses, or null (and it counts)
  refusal (phone) {
    const user = this.emu.directory.get(phone)
    if (user && !user.onWhatsApp) return [400, 'bad-request']
    const now = Date.now()
    const recent = (this.asked.get(phone) ?? []).filter((at) => now - at < this.windowMs)
    this.asked.set(phone, recent)
    if (this.limit > 0 && recent.length >= this.limit) return [429, 'rate-overlimit']
    recent.push(now)
    return null
  }

  /** the md iqs of this exchange; true when handled */
  handleIq (conn, iq) {
    const reg = child(iq, 'link_code_companion_reg')
    if (iq.attrs.xmlns !== 'md' || iq.attrs.type !== 'set' || !reg) return false
    if (reg.attrs.stage === 'companion_hello') this.hello(conn, iq, reg)
    else if (reg.attrs.stage === 'companion_finish') this.finish(conn, iq, reg)
    else conn.errorResult(iq, 400, 'bad-request')
    return true
  }

  hello (conn, iq, reg) {
    const phone = normalizePhone(String(reg.attrs.jid || '').split('@')[0])
    const wrapped = bytesOf(child(reg, 'link_code_pairing_wrapped_companion_ephemeral_pub'))
    const noise = bytesOf(child(reg, 'companion_server_auth_key_pub'))
    if (conn.state !== 'pairing' || !phone || wrapped?.length !== 80 || !noise?.equals(conn.clientStatic)) {
      conn.log.warn('pair_code.bad_hello', { pairing: conn.state === 'pairing' })
      conn.errorResult(iq, 400, 'bad-request')
      return
    }
    const refused = this.refusal(phone)
    if (refused) {
      conn.log.info('pair_code.refused', { phone_number: e164(phone), code: refused[0], text: refused[1] })
      conn.errorResult(iq, ...refused)
      return
    }
    const ref = Buffer.from(randomId(16))
    conn.pairCode = { phone, wrapped, ref, at: Date.now(), finish: null }
    conn.log.info('pair_code.requested', { phone_number: e164(phone) })
    conn.result(iq, [{ tag: 'link_code_companion_reg', attrs: {}, content: [{ tag: 'link_code_pairing_ref', attrs: {}, content: ref }] }])
  }

  finish (conn, iq, reg) {
    const waiting = conn.pairCode?.finish
    const ref = bytesOf(child(reg, 'link_code_pairing_ref'))
    if (!waiting || !ref?.equals(conn.pairCode.ref)) {
      conn.errorResult(iq, 400, 'bad-request')
      return
    }
    conn.pairCode.finish = null
    waiting({ iq, bundle: bytesOf(child(reg, 'link_code_pairing_wrapped_key_bundle')), identity: bytesOf(child(reg, 'companion_identity_public')) })
  }

  // The connection of the newest companion that asked for a code for `phone`; the refusals otherwise.
  requestFor (phone) {
    const asking = [...this.emu.connections.values()].filter((c) => c.state === 'pairing' && c.isOpen && c.pairCode)
    const mine = asking.filter((c) => c.pairCode.phone === phone).sort((a, b) => b.pairCode.at - a.pairCode.at)[0]
    if (!mine) {
      if (asking.length) throw apiError(409, 'wrong_phone_number', `no companion asked for a pairing code for ${e164(phone)}: the waiting companion asked for another number`)
      throw apiError(404, 'no_pairing_request', 'no companion is waiting for a pairing code (request one first)')
    }
    if (Date.now() - mine.pairCode.at > this.ttlMs) throw apiError(410, 'expired_code', `this pairing code is older than ${Math.round(this.ttlMs / 1000)} s: request a new one`)
    if (mine.pairing?.inProgress || mine.pairCode.finish) throw apiError(409, 'pairing_in_progress', 'this companion is being paired')
    return mine
  }

  /** POST /phone/pair-code {phone_number, code}: the user types the companion's code on the phone */
  async enter ({ phone_number: phoneInput, code: codeInput }) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'phone_number must be an E.164 number such as +15550001111')
    const code = normalizeCode(codeInput)
    if (!code) throw apiError(400, 'invalid_code', 'code must be the 8 characters the companion shows (such as ABCD-EFGH)')
    const existing = this.emu.directory.get(phone)
    if (existing && !existing.onWhatsApp) throw apiError(409, 'not_on_whatsapp', `${e164(phone)} is declared as not on WhatsApp`)
    const conn = this.requestFor(phone)
    conn.pairing.inProgress = true
    try {
      const advSecret = await this.exchange(conn, phone, code)
      delete conn.pairCode
      return await this.emu.pairing.link(conn, phone, { advSecret })
    } finally {
      if (conn.pairing) conn.pairing.inProgress = false
    }
  }

  // The primary_hello / companion_finish exchange; the ADV secret, or a 400 wrong_code.
  async exchange (conn, phone, code) {
    const user = this.emu.directory.ensure(phone)
    const companionEphemeral = await unwrapKey(code, conn.pairCode.wrapped)
    const ephemeral = generateKeyPair()
    const primaryIdentity = toRawPub(user.signal.identityPublic)
    const finished = new Promise((resolve, reject) => {
      const timer = setTimeout(() => { conn.pairCode.finish = null; reject(apiError(504, 'pairing_no_answer', 'the companion did not finish the pairing')) }, FINISH_WAIT_MS)
      conn.pairCode.finish = (v) => { clearTimeout(timer); resolve(v) }
    })
    conn.sendNode({
      tag: 'notification',
      attrs: { from: S_WHATSAPP_NET, type: 'link_code_companion_reg', id: randomId(6), t: String(Math.floor(Date.now() / 1000)) },
      content: [{
        tag: 'link_code_companion_reg',
        attrs: {},
        content: [
          { tag: 'link_code_pairing_ref', attrs: {}, content: conn.pairCode.ref },
          { tag: 'primary_identity_pub', attrs: {}, content: primaryIdentity },
          { tag: 'link_code_pairing_wrapped_primary_ephemeral_pub', attrs: {}, content: await wrapKey(code, ephemeral.public) }
        ]
      }]
    })
    const { iq, bundle, identity } = await finished
    const ephemeralShared = sharedKey(ephemeral.private, companionEphemeral)
    let plain = null
    try {
      const key = hkdf(ephemeralShared, 32, { salt: bundle.subarray(0, 32), info: BUNDLE_INFO })
      plain = aesGcmDecrypt(bundle.subarray(44), key, bundle.subarray(32, 44), Buffer.alloc(0))
    } catch { /* a wrong code: the two sides hold different keys */ }
    const companionIdentity = conn.pairing.identityKey
    if (!plain || plain.length !== 96 || !plain.subarray(0, 32).equals(companionIdentity) ||
        !identity?.equals(companionIdentity) || !plain.subarray(32, 64).equals(primaryIdentity)) {
      conn.log.warn('pair_code.wrong_code', { phone_number: e164(phone) })
      conn.errorResult(iq, 400, 'bad-request')
      throw apiError(400, 'wrong_code', 'the code does not match the one the companion shows: nothing was linked')
    }
    conn.result(iq)
    const identityShared = sharedKey(user.signal.identity.private, companionIdentity)
    return hkdf(Buffer.concat([ephemeralShared, identityShared, plain.subarray(64)]), 32, { info: 'adv_secret' })
  }
}
