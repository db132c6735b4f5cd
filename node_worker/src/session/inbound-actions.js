// What a contact does to a message rather than send one (issue 25, item 2): a reaction, an edit of its own
// message, a revoke ("delete for everyone"). Each is its own journal event (`message.reaction`, `message.edited`,
// `message.revoked`) naming the message it acts on by its WhatsApp id, never a new message; other protocol
// messages (key shares, history notices, ephemeral settings) stay no events at all.
import { proto } from 'baileys'
import { unwrap } from './media-info.js'

const { Type } = proto.Message.ProtocolMessage

const str = (value) => (typeof value === 'string' ? value : null)
// the edited text: a text's, or a media caption's
const textOf = (m) => str(m?.conversation) ?? str(m?.extendedTextMessage?.text) ??
  str(m?.imageMessage?.caption) ?? str(m?.videoMessage?.caption) ?? str(m?.documentMessage?.caption) ?? null

// The message acted on: its WhatsApp id and, from our side, whose it is. The key is the sender's: its `fromMe`
// says the message is the contact's own (`in` for us), else it is ours (`out`).
const target = (key) => ({ target_id: str(key?.id), target_direction: key?.fromMe ? 'in' : 'out' })

/** {type, fields} of a reaction, edit or revoke in `message` (a proto.Message), or null. */
export function actionOf (message) {
  const inner = unwrap(message) ?? {}
  const reaction = inner.reactionMessage
  if (reaction) return { type: 'message.reaction', fields: { ...target(reaction.key), emoji: str(reaction.text) ?? '' } }
  const p = inner.protocolMessage
  if (p?.type === Type.MESSAGE_EDIT) return { type: 'message.edited', fields: { ...target(p.key), text: textOf(unwrap(p.editedMessage)) } }
  if (p?.type === Type.REVOKE) return { type: 'message.revoked', fields: target(p.key) }
  return null
}
