// The simulated WhatsApp user directory: every phone number is a user with a primary device
// (device 0, played by the emulator with real libsignal keys) and, once it has scanned a QR,
// linked companion devices (the gateways). "Accounts" are users with linked devices (or that
// scanned a QR at least once); every other user is a "contact".
import { randomBytes } from 'node:crypto'
import { SignalParty } from './signal-party.js'

const b64 = (b) => (b == null ? null : Buffer.from(b).toString('base64'))
const unb64 = (s) => (s == null ? null : Buffer.from(s, 'base64'))

/** '+1 555-000 1111' -> '15550001111'; returns null when it is not a plausible E.164 number */
export const normalizePhone = (input) => {
  if (typeof input !== 'string' && typeof input !== 'number') return null
  const digits = String(input).replace(/[\s\-().]/g, '').replace(/^\+/, '')
  if (!/^[1-9][0-9]{6,14}$/.test(digits)) return null
  return digits
}
export const e164 = (phone) => `+${phone}`

export class Device {
  constructor (fields) {
    this.pending = [] // stanzas for it not yet sent (it was offline): sent at its next login
    this.unacked = [] // stanzas sent to it that it has not acknowledged yet: sent again at its next login
    this.packedPreKeys = null // the state file's text of preKeys, until they change (packPreKeys)
    Object.assign(this, fields)
  }

  /** an uploaded one-time prekey (login.js) */
  addPreKey (id, publicKey) {
    this.preKeys.set(id, publicKey)
    this.packedPreKeys = null
  }

  // The device's 812 uploaded prekeys are most of the state file. Kept as one "id:base64,..." string, built
  // again only when they change: a state write of 1,000 linked devices spent 1.4-3 s in their objects.
  packPreKeys () {
    if (this.packedPreKeys === null) this.packedPreKeys = [...this.preKeys].map(([id, pub]) => `${id}:${b64(pub)}`).join(',')
    return this.packedPreKeys
  }

  static unpackPreKeys (j) {
    if (typeof j.preKeysPacked !== 'string') return new Map(Object.entries(j.preKeys || {}).map(([id, pub]) => [Number(id), unb64(pub)]))
    const keys = new Map()
    for (const entry of j.preKeysPacked ? j.preKeysPacked.split(',') : []) {
      const colon = entry.indexOf(':')
      keys.set(Number(entry.slice(0, colon)), unb64(entry.slice(colon + 1)))
    }
    return keys
  }

  get jid () { return `${this.phone}:${this.id}@s.whatsapp.net` }
  get lidJid () { return `${this.lid}:${this.id}@lid` }

  /** pops one uploaded one-time prekey (each is handed out once) */
  takeBundle () {
    let preKey
    const first = this.preKeys.keys().next()
    if (!first.done) {
      preKey = { keyId: first.value, publicKey: this.preKeys.get(first.value) }
      this.preKeys.delete(first.value)
      this.packedPreKeys = null
    }
    return {
      registrationId: this.registrationId,
      identityKey: this.identityKey,
      signedPreKey: this.signedPreKey,
      ...(preKey ? { preKey } : {})
    }
  }

  toJSON () {
    return {
      id: this.id,
      keyIndex: this.keyIndex,
      noiseKey: b64(this.noiseKey),
      identityKey: b64(this.identityKey),
      registrationId: this.registrationId,
      signedPreKey: { keyId: this.signedPreKey.keyId, publicKey: b64(this.signedPreKey.publicKey), signature: b64(this.signedPreKey.signature) },
      preKeysPacked: this.packPreKeys(), // older state files have preKeys: {id: base64}
      platform: this.platform,
      advDetails: b64(this.advDetails),
      accountSignature: b64(this.accountSignature),
      deviceSignature: b64(this.deviceSignature),
      pairedAt: this.pairedAt,
      historySynced: !!this.historySynced,
      pending: this.pending,
      unacked: this.unacked
    }
  }

  static fromJSON (user, j) {
    return new Device({
      phone: user.phone,
      lid: user.lid,
      id: j.id,
      keyIndex: j.keyIndex,
      noiseKey: unb64(j.noiseKey),
      identityKey: unb64(j.identityKey),
      registrationId: j.registrationId,
      signedPreKey: { keyId: j.signedPreKey.keyId, publicKey: unb64(j.signedPreKey.publicKey), signature: unb64(j.signedPreKey.signature) },
      preKeys: Device.unpackPreKeys(j),
      platform: j.platform,
      advDetails: unb64(j.advDetails),
      accountSignature: unb64(j.accountSignature),
      deviceSignature: unb64(j.deviceSignature),
      pairedAt: j.pairedAt,
      historySynced: !!j.historySynced,
      pending: j.pending || [],
      unacked: j.unacked || []
    })
  }
}

export class User {
  constructor (fields) {
    this.devices = new Map()
    this.nextDeviceId = 1
    this.nextKeyIndex = 1
    this.inbox = [] // messages this user's phone received (decrypted)
    this.receiptsReceived = [] // receipts this user got from linked devices of others for messages it sent
    this.sent = [] // messages this user's phone sent through the control API
    this.isAccount = false
    this.onWhatsApp = true
    // a phone whose first decryption of every message fails: it sends a retry receipt, as real
    // devices do, and decrypts the copy the sender sends again
    this.failDecryptOnce = false
    this.retryReceipt = 'at_once' // or 'next_login': queued for the sender device's next login
    // 'bad': the pre-key bundles of this phone (key fetches, retry receipts) carry a signed pre-key
    // signature with one bit flipped, as a server handing out keys the contact never signed would
    this.signedPreKeySignature = 'valid'
    this.retries = {} // "<from>|<id>" -> retry receipts this phone sent for that message
    this.retryReceiptsSent = 0
    this.retryReceiptsReceived = 0 // retry receipts linked devices sent for this phone's messages
    this.messagesResent = 0 // copies re-encrypted and sent again after a retry receipt
    this.outbox = new Map() // id -> what this phone sent, kept for resends (see retries.js)
    // how this phone's messages to linked devices are addressed: 'pn' (from=<phone>@s.whatsapp.net with
    // sender_lid) or 'lid' (from=<lid>@lid with sender_pn and addressing_mode=lid, as WhatsApp increasingly does)
    this.addressing = 'pn'
    // messages this (account's) phone got whose linked devices got only an <unavailable> stub: id ->
    // { from, t, message (base64) }, for their placeholder resend requests (placeholders.js)
    this.phoneHeld = new Map()
    this.placeholderRequests = 0 // messages its linked devices asked it to resend
    this.placeholderAnswers = 0 // messages it resent to them
    this.placeholderUnknown = 0 // requests for messages it does not hold
    // groups (groups.js, group-messaging.js): 'nobody' refuses being added (403), the sender keys this phone
    // got ("<group id>|<sender device jid>" -> record) and its own per group (sender-keys.js)
    this.groupsAdd = 'everyone'
    this.groupKeys = {}
    this.groupOwnKeys = {}
    // what its phone syncs to a newly linked device (history-seed.js; POST /accounts/{phone}/history)
    this.history = undefined
    // its profile picture ({id, sha, size, path, oh}, profile-pictures.js) and who may see it
    this.picture = null
    this.picturePrivacy = 'everyone' // or 'contacts' (the accounts in pictureContacts) or 'nobody'
    this.pictureContacts = []
    Object.assign(this, fields)
  }

  get jid () { return `${this.phone}@s.whatsapp.net` }
  get lidJid () { return `${this.lid}@lid` }
  get name () { return this.pushName || `Emulated ${this.phone.slice(-4)}` }

  toJSON () {
    return {
      phone: this.phone,
      lid: this.lid,
      onWhatsApp: this.onWhatsApp,
      isAccount: this.isAccount,
      pushName: this.pushName || null,
      signal: this.signal.toJSON(),
      nextDeviceId: this.nextDeviceId,
      nextKeyIndex: this.nextKeyIndex,
      devices: [...this.devices.values()].map((d) => d.toJSON()),
      inbox: this.inbox,
      receiptsReceived: this.receiptsReceived,
      sent: this.sent,
      failDecryptOnce: this.failDecryptOnce,
      retryReceipt: this.retryReceipt,
      signedPreKeySignature: this.signedPreKeySignature,
      retries: this.retries,
      retryReceiptsSent: this.retryReceiptsSent,
      retryReceiptsReceived: this.retryReceiptsReceived,
      messagesResent: this.messagesResent,
      outbox: Object.fromEntries(this.outbox),
      addressing: this.addressing,
      phoneHeld: Object.fromEntries(this.phoneHeld),
      placeholderRequests: this.placeholderRequests,
      placeholderAnswers: this.placeholderAnswers,
      placeholderUnknown: this.placeholderUnknown,
      groupsAdd: this.groupsAdd,
      groupKeys: this.groupKeys,
      groupOwnKeys: this.groupOwnKeys,
      history: this.history || null,
      picture: this.picture || null,
      picturePrivacy: this.picturePrivacy,
      pictureContacts: this.pictureContacts
    }
  }

  static fromJSON (j) {
    const u = new User({
      phone: j.phone,
      lid: j.lid,
      onWhatsApp: j.onWhatsApp !== false,
      isAccount: !!j.isAccount,
      pushName: j.pushName || undefined,
      signal: SignalParty.fromJSON(j.signal),
      nextDeviceId: j.nextDeviceId || 1,
      nextKeyIndex: j.nextKeyIndex || 1,
      inbox: j.inbox || [],
      receiptsReceived: j.receiptsReceived || [],
      sent: j.sent || [],
      failDecryptOnce: !!j.failDecryptOnce,
      retryReceipt: j.retryReceipt || 'at_once',
      signedPreKeySignature: j.signedPreKeySignature === 'bad' ? 'bad' : 'valid',
      retries: j.retries || {},
      retryReceiptsSent: j.retryReceiptsSent || 0,
      retryReceiptsReceived: j.retryReceiptsReceived || 0,
      messagesResent: j.messagesResent || 0,
      outbox: new Map(Object.entries(j.outbox || {})),
      addressing: j.addressing === 'lid' ? 'lid' : 'pn',
      phoneHeld: new Map(Object.entries(j.phoneHeld || {})),
      placeholderRequests: j.placeholderRequests || 0,
      placeholderAnswers: j.placeholderAnswers || 0,
      placeholderUnknown: j.placeholderUnknown || 0,
      groupsAdd: j.groupsAdd === 'nobody' ? 'nobody' : 'everyone',
      groupKeys: j.groupKeys || {},
      groupOwnKeys: j.groupOwnKeys || {},
      history: j.history || undefined,
      picture: j.picture || null,
      picturePrivacy: j.picturePrivacy || 'everyone',
      pictureContacts: j.pictureContacts || []
    })
    for (const d of j.devices || []) u.devices.set(d.id, Device.fromJSON(u, d))
    return u
  }
}

export class Directory {
  constructor () {
    this.users = new Map() // phone -> User
    this.byLid = new Map() // lid -> phone
  }

  newLid () {
    for (;;) {
      // 15-digit LIDs in a range real phone numbers do not use in tests
      const lid = '2' + BigInt('0x' + randomBytes(8).toString('hex')).toString().padStart(14, '0').slice(-14)
      if (!this.byLid.has(lid)) return lid
    }
  }

  get (phone) { return this.users.get(phone) }

  /** user for a phone number, created on first use */
  ensure (phone) {
    let u = this.users.get(phone)
    if (!u) {
      u = new User({ phone, lid: this.newLid(), signal: SignalParty.create() })
      this.users.set(phone, u)
      this.byLid.set(u.lid, phone)
    }
    return u
  }

  byLidUser (lid) {
    const phone = this.byLid.get(lid)
    return phone ? this.users.get(phone) : undefined
  }

  /** resolves the user part of a PN or LID jid ({user, server}) to a User */
  resolve ({ user, server }) {
    if (server === 'lid') return this.byLidUser(user)
    if (server === 's.whatsapp.net' || server === 'c.us') return this.users.get(user)
    return undefined
  }

  toJSON () { return [...this.users.values()].map((u) => u.toJSON()) }

  load (list) {
    this.users.clear()
    this.byLid.clear()
    for (const j of list || []) {
      const u = User.fromJSON(j)
      this.users.set(u.phone, u)
      this.byLid.set(u.lid, u.phone)
    }
  }
}
