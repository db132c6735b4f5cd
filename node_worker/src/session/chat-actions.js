// A read receipt and a chat presence (issue 25, item 1): they are no messages. Nothing is stored and no server
// ack is awaited (WhatsApp acks neither with a message ack): `sent` once Baileys wrote the stanza to the socket.
// They go through the same relay as messages so that a batch keeps a recipient's order (a text, then
// "typing...", then a reaction leave in that order).
import { WorkerError } from '../errors.js'
import { SEND_FAILURE } from '../states.js'
import { describe } from './outbound-content.js'

/**
 * Sends `content` ({read} or {presence}, outbound-content.js) in the chat `jid`; resolves as relay() does,
 * `{ id, acked }`, with `acked` already settled.
 */
export async function sendChatAction (session, sock, jid, content, id) {
  // Sessions in PostgreSQL: a former owner hands nothing to Baileys (409 not_owner, fenced).
  if (session.pg) await session.fencing.assertOwner()
  if (content.read) {
    // The contact's messages, as Baileys keys them: readMessages sends one <receipt type="read"> (or read-self,
    // by the account's privacy setting) to the contact with every id (Socket/messages-send.js sendReceipts).
    await sock.readMessages(content.read.ids.map((id) => ({ remoteJid: jid, id, fromMe: false })))
  } else {
    const { state } = content.presence
    // Availability (online / offline) names the account's push name, and Baileys silently sends nothing
    // without one (Socket/chats.js sendPresenceUpdate; whatsmeow refuses too): say so instead of `sent`.
    if ((state === 'available' || state === 'unavailable') && !sock.authState?.creds?.me?.name) {
      throw new WorkerError(422, SEND_FAILURE.INVALID_MESSAGE,
        `presence ${state} needs the account's push name, which WhatsApp has not given this device yet; composing, recording and paused need none.`)
    }
    await sock.sendPresenceUpdate(state, jid)
  }
  session.log.info({ message_id: id, ...describe(content) }, 'chat_action.sent')
  return { id, acked: Promise.resolve() }
}
