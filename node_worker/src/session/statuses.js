// The statuses of the messages this worker sent (`message.status` events), from every source that
// reports one: the server's ack straight from the socket (`sent`, or `failed` with its error), a
// contact's receipt in the beforeReceiptAck hook (`delivered`, `read`, `played`), and Baileys' own
// events (messages.upsert of our own message, messages.update). Every source hands (id, status) to
// record(): the one path into the journal.
import { isJidGroup, jidDecode, proto } from 'baileys'
import { STATUS } from '../states.js'

const { Status } = proto.WebMessageInfo

// WhatsApp's status of a message -> the status the worker reports (live, and in a history sync). PENDING (not yet
// at the server) is no step at WhatsApp and is not reported.
export const STATUS_NAMES = {
  [Status.ERROR]: STATUS.FAILED,
  [Status.SERVER_ACK]: STATUS.SENT,
  [Status.DELIVERY_ACK]: STATUS.DELIVERED,
  [Status.READ]: STATUS.READ,
  [Status.PLAYED]: STATUS.PLAYED
}

// What a receipt's type says about a message we sent (no type: delivered). Other types (retry,
// read-self, sender, inactive, ...) are not statuses of the message at its recipient.
const RECEIPT_STATUS = {
  '': Status.DELIVERY_ACK,
  read: Status.READ,
  played: Status.PLAYED
}

export const STATUS_MEMORY = 10000

export class Statuses {
  constructor (session) {
    this.session = session
    this.rank = new Map() // id -> highest status reported (the journal gets each step once)
  }

  get size () { return this.rank.size }

  clear () { this.rank.clear() }

  // Each step once per message, in order (a late or repeated one is dropped): the socket's raw ack,
  // the receipt hook and Baileys' events all report here. Only messages this worker sent have a status
  // to report (the phone's own messages and history syncs are not ours); not 'pending': that is no step
  // at WhatsApp. A dropped repeat resolves with the write of the step that covers it, so a hook that
  // awaits it still acknowledges nothing before that step is on disk.
  // A group message (issue 26) has a status per participant: `participant` (+E.164) names whose receipt it is,
  // and each participant's steps are counted on their own.
  record (id, status, extra = {}) {
    const s = this.session
    const name = STATUS_NAMES[status]
    if (name === undefined || !s.sentIds.has(id)) return Promise.resolve()
    const rank = status === Status.ERROR ? Infinity : status
    const who = extra.participant ? `${id}|${extra.participant}` : id
    const known = this.rank.get(who)
    if (known && known.rank >= rank) return known.written
    this.rank.delete(who)
    s.log.info({ message_id: id, status: name, ...extra }, 'message.status')
    const eventId = extra.participant ? `status:${id}:${name}:${extra.participant}` : `status:${id}:${name}`
    const written = s.journal.push('message.status', { id, status: name, ...extra }, eventId)
    this.rank.set(who, { rank, written })
    if (this.rank.size > STATUS_MEMORY) this.rank.delete(this.rank.keys().next().value)
    return written
  }

  // The server ack ('sent') straight from the socket: rc14 emits no status at all for it. The
  // receipts come through the beforeReceiptAck hook (onReceiptNode), not messages.update, which can
  // sit in the event buffer (ev.buffer: connect, offline delivery, initial sync) for up to 30 s.
  watchAcks (sock, live) {
    const s = this.session
    sock.ws.on('CB:ack,class:message', (node) => {
      if (!live()) return
      const { id, error } = node.attrs
      s.acks.settle(id, error)
      if (error) s.durably(this.record(id, Status.ERROR, { error: String(error) }))
      else s.durably(this.record(id, Status.SERVER_ACK))
    })
  }

  // beforeReceiptAck: the statuses a contact's receipt gives messages this worker sent, journaled
  // before Baileys acks the receipt (an unacked receipt is delivered again at the next login).
  async onReceiptNode (node) {
    const { attrs } = node
    const status = RECEIPT_STATUS[attrs.type ?? '']
    if (status === undefined || attrs.recipient || this.isOwnJid(attrs.participant || attrs.from)) return
    const list = Array.isArray(node.content) ? node.content.find((c) => c.tag === 'list') : undefined
    const ids = [attrs.id, ...(Array.isArray(list?.content) ? list.content.map((item) => item.attrs?.id) : [])]
    // a group's receipt comes from the group, naming the participant (device) whose it is
    const extra = isJidGroup(attrs.from) && attrs.participant ? { participant: await this.participantPhone(attrs) } : {}
    await this.session.mustPersist(Promise.all(ids.map((id) => this.record(id, status, extra))))
  }

  // The phone number of a group receipt's participant (a PN jid, or a LID with its number beside it or mapped).
  async participantPhone (attrs) {
    const jid = attrs.participant.replace(/:\d+@/, '@')
    const { phone, lid } = await this.session.inbound.identify(jid, attrs.participant_pn ?? null)
    return phone ?? lid
  }

  // messages.upsert of a message of ours (Baileys' copy of a send, or the phone's own message).
  onOwnUpsert (msg) {
    if (msg.status != null) this.session.durably(this.record(msg.key.id, msg.status))
  }

  // messages.update: Baileys' status changes of our messages.
  onMessagesUpdate (updates) {
    for (const { key, update } of updates) {
      if (key?.fromMe && update?.status != null) this.session.durably(this.record(key.id, update.status))
    }
  }

  isOwnJid (jid) {
    const user = jidDecode(jid ?? '')?.user
    if (!user) return false
    const me = this.session.store?.state.creds.me
    return user === jidDecode(me?.id ?? '')?.user || user === jidDecode(me?.lid ?? '')?.user
  }
}
