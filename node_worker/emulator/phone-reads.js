// The account's own phone reads a contact's chat (POST /phone/read), as a person opening the chat on the phone:
// the phone sends its read receipt, which WhatsApp relays to the contact (blue ticks) and, as type `read-self`,
// to the account's linked devices, so that they mark the chat read too. The relayed node, as WhatsApp sends it
// (whatsmeow parseMessageSource / Baileys handleReceipt read it so): `from` the account itself, `recipient` the
// chat, the first id in `id` and the others in <list><item id/></list>; addressed by LID when the contact's
// chat is (the contact's `addressing`). Kept for each device until it acknowledges it, like every receipt.
import { apiError } from './errors.js'
import { normalizePhone, e164 } from './accounts.js'
import { unixNow } from './wa.js'

export class PhoneReads {
  constructor (emu) {
    this.emu = emu
  }

  /** POST /phone/read {"account"?, "chat", "ids"?}: returns {"ids", "delivered_to", "queued_for"} */
  read ({ account: accountInput, chat, ids }) {
    const account = this.account(accountInput)
    const contactPhone = normalizePhone(chat)
    if (!contactPhone) throw apiError(400, 'invalid_phone_number', '"chat" must be the contact\'s E.164 phone number')
    if (ids != null && (!Array.isArray(ids) || !ids.length || ids.some((i) => typeof i !== 'string' || !i))) {
      throw apiError(400, 'invalid_ids', '"ids" must be a non-empty list of message ids (omit it to read every unread message)')
    }
    const contact = this.emu.directory.get(contactPhone)
    const theirs = (contact?.sent ?? []).filter((m) => m.to === e164(account.phone))
    const unknown = (ids ?? []).filter((id) => !theirs.some((m) => m.id === id))
    if (unknown.length) throw apiError(404, 'message_unknown', `${e164(contactPhone)} sent ${e164(account.phone)} no message ${unknown[0]}`)
    const read = ids ? theirs.filter((m) => ids.includes(m.id)) : theirs.filter((m) => !m.read_on_phone)
    if (!read.length) return { ids: [], delivered_to: 0, queued_for: 0 }
    for (const m of read) m.read_on_phone = true
    const readIds = read.map((m) => m.id)
    const lid = contact.addressing === 'lid'
    // to the contact: the phone's read receipt (what GET /contacts/{phone}/receipts-received shows)
    contact.receiptsReceived.push({ ids: readIds, from: e164(account.phone), device: account.jid, type: 'read', timestamp: unixNow() })
    let delivered = 0
    let queued = 0
    for (const dev of account.devices.values()) {
      const how = this.emu.deliverToDevice(account, dev, {
        tag: 'receipt',
        attrs: {
          from: lid ? account.lidJid : account.jid,
          recipient: lid ? contact.lidJid : contact.jid,
          id: readIds[0],
          type: 'read-self',
          t: String(unixNow())
        },
        ...(readIds.length > 1 ? { content: [{ tag: 'list', attrs: {}, content: readIds.slice(1).map((id) => ({ tag: 'item', attrs: { id } })) }] } : {})
      })
      if (how === 'sent') delivered++
      else queued++
    }
    this.emu.log.info('phone.read', { chat_ids: readIds.length, devices_online: delivered, devices_queued: queued })
    this.emu.persist()
    return { ids: readIds, delivered_to: delivered, queued_for: queued }
  }

  // the account whose phone reads: the one named, else the only user with linked devices
  account (input) {
    if (input != null) {
      const phone = normalizePhone(input)
      if (!phone) throw apiError(400, 'invalid_phone_number', '"account" must be an E.164 phone number')
      const user = this.emu.directory.get(phone)
      if (!user?.devices.size) throw apiError(409, 'no_linked_device', `${e164(phone)} has no linked device`)
      return user
    }
    const linked = [...this.emu.directory.users.values()].filter((u) => u.devices.size)
    if (linked.length !== 1) throw apiError(400, 'account_required', `${linked.length} accounts have linked devices: name one in "account"`)
    return linked[0]
  }
}
