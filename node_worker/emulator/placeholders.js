// Messages only the account's phone can give a companion, and other protocol messages of the phone.
//
// Placeholder resends, as WhatsApp does them: some messages (ads / click-to-WhatsApp, bot and hosted
// fan-outs, some view-once) reach a companion device as an `<unavailable>` stub with no <enc>, while the
// account's phone gets the content. The companion asks its phone: a peer message (category=peer, to its
// own number) holding a protocolMessage PEER_DATA_OPERATION_REQUEST_MESSAGE of type
// PLACEHOLDER_MESSAGE_RESEND with the message keys (Baileys' requestPlaceholderResend, whatsmeow's
// SendPeerMessage(BuildUnavailableMessageRequest)). The phone answers with a peer protocolMessage
// PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE (stanzaId = the request's id) whose results carry
// placeholderMessageResendResponse.webMessageInfoBytes (key, message, timestamp, push name), encrypted to
// the asking device on the phone's own Signal session with it, and delivered like any message: written
// at once to a logged-in device, else queued for its next login, and kept until acknowledged. A phone
// answers every request it can (a repeated request gets the content again); one for a message it does
// not hold is counted and not answered.
//
// Peer protocol messages on demand (POST /phone/peer-messages): an app-state sync key share
// (APP_STATE_SYNC_KEY_SHARE) or a LID migration mapping sync (LID_MIGRATION_MAPPING_SYNC) from the
// phone to every linked device of its account, for tests of what a companion stores before its receipt.
import { randomBytes } from 'node:crypto'
import { proto, unixNow, padMessage } from './wa.js'
import { SignalParty } from './signal-party.js'
import { randomId } from './crypto.js'
import { normalizePhone, e164 } from './accounts.js'
import { apiError } from './errors.js'
import { errorFields } from './log.js'

const KEEP_HELD = 2000 // messages an account's phone keeps for placeholder resends (the oldest are forgotten)
export const PEER_KINDS = ['app_state_key_share', 'lid_mapping']
const PDO = proto.Message.PeerDataOperationRequestType

export class Placeholders {
  constructor (emu) {
    this.emu = emu
  }

  get log () { return this.emu.log }

  /**
   * A contact's message that the account's linked devices get as an `<unavailable>` stub (`type`: the
   * stub's type attribute, or none): the account's phone keeps the content, each device gets the stub.
   */
  sendUnavailable (contact, account, devices, { id, t, message, type }) {
    account.phoneHeld.set(id, { from: contact.phone, t, message: Buffer.from(message).toString('base64') })
    while (account.phoneHeld.size > KEEP_HELD) account.phoneHeld.delete(account.phoneHeld.keys().next().value)
    let delivered = 0
    let queued = 0
    for (const dev of devices) {
      const how = this.emu.deliverToDevice(account, dev, {
        tag: 'message',
        attrs: { ...this.emu.messaging.senderAttrs(contact), id, t: String(t), type: 'text', notify: contact.name },
        content: [{ tag: 'unavailable', attrs: type ? { type } : {} }]
      })
      if (how === 'sent') delivered++
      else queued++
    }
    this.log.info('contact.message_unavailable', { id, type: type || null, devices_online: delivered, devices_queued: queued })
    return { delivered, queued }
  }

  /** a peer message a linked device sent to its own phone, decrypted there (`msg`: its proto.Message) */
  async onPeerMessage (user, device, node, msg) {
    const request = msg?.protocolMessage?.peerDataOperationRequestMessage
    if (request?.peerDataOperationRequestType === PDO.HISTORY_SYNC_ON_DEMAND) {
      return this.emu.history.onDemand(user, device, node.attrs.id, request.historySyncOnDemandRequest) // history.js
    }
    if (!request || request.peerDataOperationRequestType !== PDO.PLACEHOLDER_MESSAGE_RESEND) {
      this.log.debug('peer.ignored', { id: node.attrs.id })
      return
    }
    const results = []
    for (const { messageKey } of request.placeholderMessageResendRequest || []) {
      user.placeholderRequests++
      const held = messageKey?.id ? user.phoneHeld.get(messageKey.id) : undefined
      const contact = held ? this.emu.directory.get(held.from) : undefined
      if (!contact) {
        user.placeholderUnknown++
        this.log.info('placeholder.unknown', { id: messageKey?.id || null })
        continue
      }
      const info = proto.WebMessageInfo.encode({
        key: { remoteJid: contact.addressing === 'lid' ? contact.lidJid : contact.jid, fromMe: false, id: messageKey.id },
        message: proto.Message.decode(Buffer.from(held.message, 'base64')),
        messageTimestamp: held.t,
        pushName: contact.name
      }).finish()
      results.push({ placeholderMessageResendResponse: { webMessageInfoBytes: info } })
    }
    if (!results.length) return
    const answer = {
      protocolMessage: {
        type: proto.Message.ProtocolMessage.Type.PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE,
        peerDataOperationRequestResponseMessage: {
          peerDataOperationRequestType: PDO.PLACEHOLDER_MESSAGE_RESEND,
          stanzaId: node.attrs.id,
          peerDataOperationResult: results
        }
      }
    }
    try {
      const how = await this.sendFromPhone(user, device, answer)
      user.placeholderAnswers += results.length
      this.log.info('placeholder.answered', { request_id: node.attrs.id, messages: results.length, how })
    } catch (err) {
      this.log.warn('placeholder.answer_failed', { request_id: node.attrs.id, ...errorFields(err) })
    }
    this.emu.persist()
  }

  /**
   * the account's phone sends `message` (a proto.Message object) to one of its linked devices as a peer
   * message, on its existing Signal session with it (a new one from the device's bundle if it has none)
   */
  async sendFromPhone (user, device, message) {
    const addr = SignalParty.address(user.phone, device.id)
    if (!user.signal.hasSession(addr)) await user.signal.initSession(addr, device.takeBundle())
    const { type, ciphertext } = await user.signal.encrypt(addr, padMessage(proto.Message.encode(message).finish()))
    return this.emu.deliverToDevice(user, device, {
      tag: 'message',
      attrs: { from: user.jid, id: randomId(16), t: String(unixNow()), type: 'text', category: 'peer', sender_lid: user.lidJid },
      content: [{ tag: 'enc', attrs: { v: '2', type }, content: ciphertext }]
    })
  }

  /** POST /phone/peer-messages {phone_number, kind, pn?}: a protocol message of the phone to every linked device */
  async peerMessage ({ phone_number: phoneInput, kind, pn }) {
    const phone = normalizePhone(phoneInput)
    if (!phone) throw apiError(400, 'invalid_phone_number', 'phone_number must be an E.164 number')
    if (!PEER_KINDS.includes(kind)) throw apiError(400, 'invalid_kind', `kind must be one of ${PEER_KINDS.join(', ')}`)
    const user = this.emu.directory.get(phone)
    const devices = user ? [...user.devices.values()] : []
    if (!devices.length) throw apiError(409, 'no_linked_device', `${e164(phone)} has no linked device`)
    const out = { kind }
    let protocolMessage
    if (kind === 'app_state_key_share') {
      const keyId = randomBytes(6)
      protocolMessage = {
        type: proto.Message.ProtocolMessage.Type.APP_STATE_SYNC_KEY_SHARE,
        appStateSyncKeyShare: {
          keys: [{
            keyId: { keyId },
            keyData: { keyData: randomBytes(32), fingerprint: { rawId: 1, currentIndex: 0, deviceIndexes: [0] }, timestamp: Date.now() }
          }]
        }
      }
      out.key_id = keyId.toString('base64')
    } else {
      const contactPhone = normalizePhone(pn)
      if (!contactPhone) throw apiError(400, 'invalid_phone_number', '"pn" must be the E.164 number of the mapping')
      const contact = this.emu.directory.ensure(contactPhone)
      const payload = proto.LIDMigrationMappingSyncPayload.encode({
        pnToLidMappings: [{ pn: Number(contact.phone), assignedLid: Number(contact.lid) }],
        chatDbMigrationTimestamp: unixNow()
      }).finish()
      protocolMessage = {
        type: proto.Message.ProtocolMessage.Type.LID_MIGRATION_MAPPING_SYNC,
        lidMigrationMappingSyncMessage: { encodedMappingPayload: payload }
      }
      out.mappings = [{ pn: e164(contact.phone), lid: contact.lidJid }]
    }
    let delivered = 0
    let queued = 0
    for (const dev of devices) {
      if ((await this.sendFromPhone(user, dev, { protocolMessage })) === 'sent') delivered++
      else queued++
    }
    this.log.info('phone.peer_message_sent', { kind, devices_online: delivered, devices_queued: queued })
    this.emu.persist()
    return { ...out, delivered_to: delivered, queued_for: queued }
  }

  /** the placeholder counters of an account's phone, for GET / */
  counters (user) {
    return {
      placeholder_requests: user.placeholderRequests,
      placeholder_answers: user.placeholderAnswers,
      placeholder_unknown: user.placeholderUnknown
    }
  }
}
