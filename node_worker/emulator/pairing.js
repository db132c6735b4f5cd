// QR pairing of a new companion device:
//   server -> <iq xmlns=md type=set><pair-device><ref/>xN</pair-device>
//   phone scans "https://wa.me/settings/linked_devices#ref,noise,identity,advSecret,platform"
//   server -> <iq xmlns=md type=set><pair-success><device-identity key-index>ADVSignedDeviceIdentityHMAC
//   client -> <iq type=result><pair-device-sign><device-identity>ADVSignedDeviceIdentity(+deviceSignature)
//   server verifies the device signature STRICTLY, links the device, then <stream:error code=515/>.
import { randomBytes } from 'node:crypto'
import { proto, child, bytesOf, unixNow } from './wa.js'
import { Device, normalizePhone, e164 } from './accounts.js'
import { hmacSha256, sign, verifyStrict, toSignalPub } from './crypto.js'
import { apiError } from './errors.js'
import { errorFields } from './log.js'

export const QR_PREFIX = 'https://wa.me/settings/linked_devices#'
// How long a scan of the gateway's own QR waits for its account to show connected.
const GATEWAY_CONNECT_WAIT_MS = 15000
const ADV_ACCOUNT_SIG_PREFIX = Buffer.from([6, 0])
const ADV_DEVICE_SIG_PREFIX = Buffer.from([6, 1])

/** parses the rc14 QR string; throws ApiError(400) when it is not one */
export const parseQr = (qr) => {
  if (typeof qr !== 'string' || !qr.startsWith(QR_PREFIX)) {
    throw apiError(400, 'qr_invalid', `qr must start with ${QR_PREFIX}`)
  }
  const parts = qr.slice(QR_PREFIX.length).split(',')
  if (parts.length < 4) throw apiError(400, 'qr_invalid', 'qr must hold ref,noiseKey,identityKey,advSecret[,platform]')
  const [ref, noiseB64, identityB64, advB64, platform] = parts
  const noiseKey = Buffer.from(noiseB64, 'base64')
  const identityKey = Buffer.from(identityB64, 'base64')
  const advSecret = Buffer.from(advB64, 'base64')
  if (!ref || noiseKey.length !== 32 || identityKey.length !== 32 || advSecret.length !== 32) {
    throw apiError(400, 'qr_invalid', 'qr keys must be 32-byte base64 values')
  }
  return { ref, noiseKey, identityKey, advSecret, platform: platform || null }
}

/** account signature the phone makes over the companion's details and identity */
export const accountSignatureMessage = (details, companionIdentity) =>
  Buffer.concat([ADV_ACCOUNT_SIG_PREFIX, details, toRaw(companionIdentity)])
/** device signature the companion must return */
export const deviceSignatureMessage = (details, companionIdentity, accountKey) =>
  Buffer.concat([ADV_DEVICE_SIG_PREFIX, details, toRaw(companionIdentity), toRaw(accountKey)])
const toRaw = (k) => { const b = Buffer.from(k); return b.length === 33 ? b.subarray(1) : b }

/**
 * strict check of the companion's pair-device-sign answer against what the phone issued;
 * returns null when it is valid, else a reason string
 */
export const checkDeviceSignature = ({ returned, issuedDetails, issuedAccountSignature, companionIdentity, accountKey }) => {
  if (!returned?.details || !Buffer.from(returned.details).equals(Buffer.from(issuedDetails))) return 'details_changed'
  if (!returned.accountSignature || !Buffer.from(returned.accountSignature).equals(Buffer.from(issuedAccountSignature))) return 'account_signature_changed'
  if (!returned.deviceSignature) return 'device_signature_missing'
  const msg = deviceSignatureMessage(returned.details, companionIdentity, accountKey)
  if (!verifyStrict(companionIdentity, msg, returned.deviceSignature)) return 'device_signature_invalid'
  return null
}

const platformOf = (reg) => {
  try {
    const props = proto.DeviceProps.decode(reg.deviceProps || Buffer.alloc(0))
    const type = proto.DeviceProps.PlatformType[props.platformType] || 'UNKNOWN'
    return props.os ? `${props.os}/${type}` : type
  } catch {
    return 'UNKNOWN'
  }
}

const uint = (b) => { let n = 0; for (const x of Buffer.from(b || [])) n = n * 256 + x; return n }

export class Pairing {
  constructor (emu) {
    this.emu = emu
    this.refs = new Map() // ref -> Connection
  }

  /** a new client without credentials sent its registration data */
  begin (conn, payload) {
    const reg = payload.devicePairingData
    const identity = Buffer.from(reg.eIdent || [])
    const skeyVal = Buffer.from(reg.eSkeyVal || [])
    const skeySig = Buffer.from(reg.eSkeySig || [])
    if (identity.length !== 32 || skeyVal.length !== 32 ||
        !verifyStrict(identity, toSignalPub(skeyVal), skeySig)) {
      conn.log.warn('pairing.bad_registration', { reason: 'signed prekey signature invalid or keys malformed' })
      conn.failure(400)
      return
    }
    conn.pairing = {
      registrationId: uint(reg.eRegid),
      identityKey: identity,
      signedPreKey: { keyId: uint(reg.eSkeyId), publicKey: skeyVal, signature: skeySig },
      platform: platformOf(reg),
      pushName: payload.pushName || null,
      refs: [],
      startedAt: Date.now()
    }
    conn.state = 'pairing'
    for (let i = 0; i < this.emu.settings.qrRefs; i++) {
      const ref = '2@' + randomBytes(36).toString('base64')
      conn.pairing.refs.push(ref)
      this.refs.set(ref, conn)
    }
    this.trimRefs()
    conn.log.info('pairing.started', { refs: conn.pairing.refs.length, platform: conn.pairing.platform })
    conn.query({
      tag: 'iq',
      attrs: { from: 's.whatsapp.net', type: 'set', xmlns: 'md' },
      content: [{ tag: 'pair-device', attrs: {}, content: conn.pairing.refs.map((r) => ({ tag: 'ref', attrs: {}, content: Buffer.from(r) })) }]
    }, 15000).catch(() => {})
  }

  trimRefs () {
    while (this.refs.size > 5000) this.refs.delete(this.refs.keys().next().value)
  }

  pairingConnections () {
    return [...this.emu.connections.values()].filter((c) => c.state === 'pairing' && c.isOpen)
  }

  /** POST /phone/scan {phone_number, qr?, account?}: without `qr`, the QR the gateway shows for `account` (default `default`) */
  async scan ({ phone_number: phoneInput, qr, account = 'default' }) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'phone_number must be an E.164 number such as +15550001111')
    if (typeof account !== 'string' || !/^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/.test(account)) {
      throw apiError(400, 'invalid_account', 'account must be a gateway account name (lowercase letters, digits and -), such as sales-eu')
    }
    const fromGateway = qr == null || qr === ''
    if (fromGateway) qr = await this.qrFromGateway(account)
    const parsed = parseQr(qr)
    const conn = this.refs.get(parsed.ref)
    if (!conn) throw apiError(404, 'qr_unknown', 'this QR code was never issued by this emulator')
    if (conn.state !== 'pairing' || !conn.isOpen || conn.pairing?.inProgress) {
      throw apiError(410, 'qr_expired', 'this QR code is no longer valid (its pairing connection is closed, already paired or being paired)')
    }
    if (!parsed.noiseKey.equals(conn.clientStatic) || !parsed.identityKey.equals(conn.pairing.identityKey)) {
      throw apiError(400, 'qr_mismatch', 'the keys in this QR code do not match the connection that owns its ref')
    }
    const existing = this.emu.directory.get(phone)
    if (existing && !existing.onWhatsApp) throw apiError(409, 'not_on_whatsapp', `${e164(phone)} is declared as not on WhatsApp`)
    conn.pairing.inProgress = true
    let linked
    try {
      linked = await this.link(conn, phone, parsed)
    } finally {
      if (conn.pairing) conn.pairing.inProgress = false
    }
    // The QR came from the gateway: answer once its account shows connected (the companion logs back in
    // with its new identity right after the pairing), so that the next call a user makes finds it linked.
    return fromGateway ? { ...linked, connected: await this.gatewayConnected(account, GATEWAY_CONNECT_WAIT_MS) } : linked
  }

  // Whether the gateway's `account` reaches `connected` within `waitMs` (false when it does not in time).
  async gatewayConnected (account, waitMs) {
    const deadline = Date.now() + waitMs
    while (Date.now() < deadline) {
      const { body } = await this.gatewayStatus(account).catch(() => ({ body: null }))
      if (body?.state === 'connected') return true
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return false
  }

  async gatewayStatus (account) {
    const { gatewayUrl } = this.emu.settings
    const apiKey = typeof this.emu.settings.apiKey === 'function' ? this.emu.settings.apiKey() : this.emu.settings.apiKey
    const path = account === 'default' ? '/status' : `/accounts/${account}/status`
    const res = await fetch(new URL(path, gatewayUrl), { headers: apiKey ? { 'X-API-Key': apiKey } : {}, signal: AbortSignal.timeout(5000) })
    return { res, body: await res.json(), path }
  }

  // The QR the gateway shows for `account`: its /status (`default`) or /accounts/{account}/status.
  async qrFromGateway (account = 'default') {
    const { gatewayUrl } = this.emu.settings
    if (!gatewayUrl) {
      const n = this.pairingConnections().length
      throw apiError(422, 'qr_required',
        n === 1
          ? 'qr is required: one connection is waiting to be paired, but the QR secret never reaches the server; pass the QR string the client shows'
          : `qr is required (${n} connections are waiting to be paired; the QR secret never reaches the server)`)
    }
    const path = account === 'default' ? '/status' : `/accounts/${account}/status`
    let body
    let res
    try {
      ({ res, body } = await this.gatewayStatus(account))
    } catch (err) {
      throw apiError(502, 'gateway_unreachable', `could not read the gateway's ${path}: ${err.message}`)
    }
    if (res.status === 404) throw apiError(404, 'account_not_found', `the gateway has no account ${account} (${path} answered 404)`)
    if (!res.ok) throw apiError(502, 'gateway_unreachable', `could not read the gateway's ${path}: it answered ${res.status}`)
    if (typeof body?.qr !== 'string' || !body.qr) {
      throw apiError(409, 'gateway_has_no_qr', `the gateway's account ${account} shows no QR code (state ${body?.state ?? 'unknown'}): ` +
        `start linking it first (POST ${account === 'default' ? '' : `/accounts/${account}`}/connect)`)
    }
    return body.qr
  }

  async link (conn, phone, parsed) {
    const dir = this.emu.directory
    const user = dir.ensure(phone)
    const deviceId = user.nextDeviceId
    const keyIndex = user.nextKeyIndex
    if (user.advRawId == null) user.advRawId = randomBytes(4).readUInt32BE(0)
    const details = Buffer.from(proto.ADVDeviceIdentity.encode({ rawId: user.advRawId, timestamp: unixNow(), keyIndex }).finish())
    const accountKey = user.signal.identityPublic
    const accountSignature = sign(user.signal.identity.private, accountSignatureMessage(details, conn.pairing.identityKey))
    const signed = Buffer.from(proto.ADVSignedDeviceIdentity.encode({ details, accountSignatureKey: accountKey, accountSignature }).finish())
    const container = Buffer.from(proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac: hmacSha256(parsed.advSecret, signed) }).finish())
    const deviceJid = `${phone}:${deviceId}@s.whatsapp.net`
    const lidJid = `${user.lid}:${deviceId}@lid`
    let reply
    try {
      reply = await conn.query({
        tag: 'iq',
        attrs: { from: 's.whatsapp.net', type: 'set', xmlns: 'md', t: String(unixNow()) },
        content: [{
          tag: 'pair-success',
          attrs: {},
          content: [
            { tag: 'device-identity', attrs: { 'key-index': String(keyIndex) }, content: container },
            { tag: 'platform', attrs: { name: 'android' } },
            { tag: 'device', attrs: { jid: deviceJid, lid: lidJid } }
          ]
        }]
      }, 10000)
    } catch (err) {
      throw apiError(504, 'pairing_no_answer', `the client did not confirm the pairing: ${err.message}`)
    }
    const signNode = child(reply, 'pair-device-sign')
    const identityBytes = bytesOf(child(signNode, 'device-identity'))
    let returned
    try {
      returned = identityBytes ? proto.ADVSignedDeviceIdentity.decode(identityBytes) : null
    } catch (err) {
      conn.log.warn('pairing.bad_answer', errorFields(err))
    }
    const problem = reply.attrs.type !== 'result'
      ? 'client_rejected_pairing'
      : checkDeviceSignature({ returned, issuedDetails: details, issuedAccountSignature: accountSignature, companionIdentity: conn.pairing.identityKey, accountKey })
    if (problem) {
      conn.log.warn('pairing.rejected', { reason: problem })
      conn.failure(401)
      throw apiError(422, 'pairing_rejected', `the companion's answer failed verification: ${problem}`)
    }
    user.nextDeviceId++
    user.nextKeyIndex++
    user.isAccount = true
    if (conn.pairing.pushName && !user.pushName) user.pushName = conn.pairing.pushName
    const device = new Device({
      phone,
      lid: user.lid,
      id: deviceId,
      keyIndex,
      noiseKey: Buffer.from(conn.clientStatic),
      identityKey: conn.pairing.identityKey,
      registrationId: conn.pairing.registrationId,
      signedPreKey: conn.pairing.signedPreKey,
      preKeys: new Map(),
      platform: conn.pairing.platform,
      advDetails: details,
      accountSignature,
      deviceSignature: Buffer.from(returned.deviceSignature),
      pairedAt: unixNow(),
      historySynced: false,
      pending: []
    })
    user.devices.set(deviceId, device)
    this.emu.persist()
    conn.log.info('device.linked', { jid: deviceJid, platform: device.platform })
    // WhatsApp asks the freshly paired client to reconnect and log in with its new identity
    conn.streamError({ code: '515' })
    return { jid: deviceJid, lid: lidJid, phone_number: e164(phone) }
  }
}
