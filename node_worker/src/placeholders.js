// Placeholder resends: a contact's message that reached this device as an `<unavailable>` stub (no
// ciphertext: WhatsApp fans some messages out to companions that way) and whose content only the
// account's phone can send.
//
// rc14 acks the stub at once and asks the phone 2 s later, without awaiting it and from memory only
// (requestPlaceholderResend: a peer PLACEHOLDER_MESSAGE_RESEND request to our own number). The phone
// answers with a peer protocol message (PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE whose
// placeholderMessageResendResponse carries the WebMessageInfo bytes), and Baileys upserts the content
// only after that peer message's receipt (Utils/process-message.js). A kill -9 after the stub's ack and
// before the request left, or after the response's receipt and before the journal write, lost the
// message for good: the server had forgotten both.
//
// Here:
//  * remember (beforePlaceholderAck, patches/*004*): the stub's key is in the session store before the
//    ack. The record lives with the account's keys, so with PostgreSQL it is fenced like them and moves
//    to the instance that takes the account over, and it goes with them at logout.
//  * resent (beforeMessageReceipt of the phone's answer, see peer-messages.js): the content is journaled
//    as an ordinary `message` event (original id and sender) before the answer's receipt; then the
//    record goes. A crash in between is harmless: the unreceipted answer is delivered again.
//  * attach (every socket): once the server's offline queue has been handled (an answer queued while
//    the worker was away is journaled by then), every record older than this socket is asked for again.
//    Re-asking, rather than only waiting for a queued answer, because a request that never left (killed
//    in the 2 s before it, or its socket closed) leaves nothing for the server to queue; a request that
//    did leave is answered anyway, and a second answer is the same event (one per event id). Bounded:
//    MAX_REQUESTS re-requests per message, none older than WhatsApp's 14 days, MAX_PENDING records. A
//    message given up on is never silent: `abandoned` reports it (a `message.undecryptable` event), and
//    content that still comes later is an ordinary message.
//
// Records hold message keys, times and the sender's push name: never message content.
import { proto } from 'baileys'

const STORE_TYPE = 'placeholder-resend' // one record, id 'pending': { [message id]: entry }
const STORE_ID = 'pending'
const MAX_PENDING = 500
const MAX_REQUESTS = 5
const MAX_AGE_MS = 14 * 24 * 3600 * 1000 // Baileys' PLACEHOLDER_MAX_AGE_SECONDS (WA Web's limit)
const RESOLVED_MEMORY = 2000
export const REASK_AFTER_OFFLINE_MS = 3000 // what the offline queue may still be handling after its end marker

// The key fields Baileys keeps for the stub (messages-recv.js msgData.key), as plain JSON.
const plainKey = (key) => {
  const out = { remoteJid: key.remoteJid, fromMe: !!key.fromMe, id: key.id }
  for (const field of ['remoteJidAlt', 'participant', 'participantAlt', 'addressingMode']) {
    if (key[field]) out[field] = key[field]
  }
  return out
}

const seconds = (value) => (value == null ? 0 : Number(value.toString()))

export class Placeholders {
  #keys // () => the session store's key store (store.state.keys), or null
  #log
  #abandoned
  #entries = new Map() // message id -> { key, t, push_name, offline, at, requests }
  #loadedFrom = null
  #loading = null
  #fresh = new Set() // ids remembered under the current socket: Baileys itself asks for these
  #resolved = new Set() // ids whose content was journaled lately (bounded, oldest first)

  /**
   * @param {{ keys: () => object|null, logger: object,
   *   abandoned?: (stub: { key: object, messageTimestamp: number }, info: { stubs: number, error: string }) => unknown }} o
   */
  constructor ({ keys, logger, abandoned = () => {} }) {
    this.#keys = keys
    this.#log = logger
    this.#abandoned = abandoned
  }

  get pending () { return this.#entries.size }

  static get maxPending () { return MAX_PENDING }

  /** whether the content of message `id` was journaled lately (its stub or Baileys' own upsert is no news) */
  isResolved (id) { return !!id && this.#resolved.has(id) }

  async #load () {
    const keys = this.#keys()
    if (!keys) throw new Error('placeholders: no session store')
    if (this.#loadedFrom !== keys) {
      // one load per store (a logout makes a new one); concurrent callers share it
      this.#loading ??= (async () => {
        const { [STORE_ID]: saved } = await keys.get(STORE_TYPE, [STORE_ID])
        this.#entries = new Map(Object.entries(saved ?? {}))
        this.#loadedFrom = keys
      })().finally(() => { this.#loading = null })
      await this.#loading
    }
    return keys
  }

  // The whole record in one write (it is small and bounded); the store serialises it when called, so
  // writes land in call order and the last one holds every change.
  #write (keys) {
    return keys.set({ [STORE_TYPE]: { [STORE_ID]: this.#entries.size ? Object.fromEntries(this.#entries) : null } })
  }

  /** beforePlaceholderAck: the stub `msg` is about to be acked; durably note what to ask the phone for. */
  async remember (msg, node) {
    const keys = await this.#load()
    const id = msg.key.id
    if (!this.#entries.has(id)) {
      this.#entries.set(id, {
        key: plainKey(msg.key),
        t: seconds(msg.messageTimestamp),
        push_name: msg.pushName ?? null,
        offline: !!node?.attrs?.offline,
        at: Date.now(),
        requests: 0
      })
      for (const old of [...this.#entries.keys()].slice(0, Math.max(0, this.#entries.size - MAX_PENDING))) {
        this.#entries.delete(old)
        this.#log.warn({ message_id: old, bound: MAX_PENDING }, 'placeholder.dropped')
      }
    }
    this.#fresh.add(id)
    await this.#write(keys)
    this.#log.info({ message_id: id }, 'placeholder.pending')
  }

  /**
   * The phone's answer (a decrypted peer protocol message from our own account): each resent message is
   * handed to `record(msg, how)`, which journals it, and its record goes afterwards. Awaited before the
   * answer's receipt. Answers that cannot be read are skipped (logged), never retried forever.
   */
  async resent (msg, node, record) {
    const response = msg.message?.protocolMessage?.peerDataOperationRequestResponseMessage
    const done = []
    for (const result of response?.peerDataOperationResult ?? []) {
      const bytes = result?.placeholderMessageResendResponse?.webMessageInfoBytes
      if (!bytes?.length) continue
      let info
      try {
        info = proto.WebMessageInfo.decode(bytes)
      } catch (err) {
        this.#log.warn({ err: { message: err.message }, request_id: response.stanzaId ?? null }, 'placeholder.answer_unreadable')
        continue
      }
      const id = info.key?.id
      if (!id || !info.message) continue
      await this.#load()
      const entry = this.#entries.get(id)
      // The stub's key when we have it (the event id is then the one Baileys' own upsert would give).
      const content = {
        key: entry?.key ?? plainKey(info.key),
        message: info.message,
        messageTimestamp: seconds(info.messageTimestamp) || entry?.t || 0,
        pushName: entry?.push_name ?? info.pushName ?? undefined
      }
      await record(content, (entry?.offline || node?.attrs?.offline) ? 'append' : 'live')
      this.#markResolved(id)
      done.push(id)
      this.#log.info({ message_id: id, request_id: response.stanzaId ?? null, was_pending: !!entry }, 'placeholder.resolved')
    }
    if (done.some((id) => this.#entries.has(id))) {
      for (const id of done) this.#entries.delete(id)
      await this.#write(await this.#load())
    }
  }

  #markResolved (id) {
    this.#resolved.delete(id)
    this.#resolved.add(id)
    while (this.#resolved.size > RESOLVED_MEMORY) this.#resolved.delete(this.#resolved.values().next().value)
  }

  /**
   * A new socket: once its offline queue was handled, the records it did not create are asked for
   * again (see above). `live()` says whether the socket is still the session's current one.
   */
  attach (sock, live) {
    this.#fresh = new Set()
    const fresh = this.#fresh
    let timer = null
    sock.ev.on('connection.update', ({ receivedPendingNotifications }) => {
      if (!receivedPendingNotifications || timer) return
      timer = setTimeout(() => {
        if (!live()) return
        this.askAgain(sock, fresh, live).catch((err) => this.#log.warn({ err }, 'placeholder.reask_failed'))
      }, REASK_AFTER_OFFLINE_MS)
      timer.unref?.()
    })
  }

  async askAgain (sock, fresh, live) {
    const keys = await this.#load()
    const now = Date.now()
    const ask = []
    const gone = []
    let changed = false
    for (const [id, entry] of this.#entries) {
      if (fresh.has(id)) continue
      changed = true
      const age = entry.t ? now - entry.t * 1000 : now - entry.at
      if (entry.requests >= MAX_REQUESTS || age > MAX_AGE_MS) {
        this.#log.warn({ message_id: id, requests: entry.requests, age_s: Math.round(age / 1000) }, 'placeholder.abandoned')
        gone.push(entry)
        continue
      }
      entry.requests += 1
      ask.push(entry)
    }
    if (!changed) return
    // reported before the record goes, so a crash in between reports again (the same event id) rather than never
    for (const entry of gone) {
      await this.#abandoned({ key: entry.key, messageTimestamp: entry.t }, { stubs: entry.requests + 1, error: 'the phone did not resend the message' })
      this.#entries.delete(entry.key.id)
    }
    await this.#write(keys) // the count first: a crash loop cannot ask forever
    for (const entry of ask) {
      if (!live() || this.#resolved.has(entry.key.id)) continue
      this.#log.info({ message_id: entry.key.id, request: entry.requests }, 'placeholder.reasked')
      // Baileys waits 2 s and asks only if no answer came meanwhile; msgData lets its own upsert keep our key.
      sock.requestPlaceholderResend(entry.key, { key: entry.key, messageTimestamp: entry.t, pushName: entry.push_name ?? undefined })
        .catch((err) => this.#log.warn({ err: { message: err.message }, message_id: entry.key.id }, 'placeholder.request_failed'))
    }
  }
}
