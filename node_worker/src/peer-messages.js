// Protocol messages from the account's own devices that change this device's state, applied before
// their receipt.
//
// rc14 sends the receipt of a decrypted message (`peer_msg` for category=peer) and only then runs
// Utils/process-message.js, which stores what the message carries: app-state sync keys
// (APP_STATE_SYNC_KEY_SHARE), LID <-> phone-number mappings with the sessions they move
// (LID_MIGRATION_MAPPING_SYNC), and the content of placeholder resends
// (PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE, see placeholders.js). A kill -9 between the two
// left a receipted message that was never applied: the server never sends it again, so the keys
// or mappings were missing for good (app-state patches that cannot be decrypted, a contact's LID
// without its number).
//
// Here the same writes run in the beforeMessageReceipt hook (patches/*002*), awaited, before the
// receipt; Baileys' own processing after it writes the same values again, which changes nothing. Only
// messages from our own account (fromMe), as process-message.js requires for these types. A message
// that cannot be parsed is left to Baileys (logged, never a crash loop); a failed store write rejects
// the hook, so nothing is receipted.
import { proto } from 'baileys'

const TYPE = proto.Message.ProtocolMessage.Type
const HANDLED = new Set([TYPE.APP_STATE_SYNC_KEY_SHARE, TYPE.LID_MIGRATION_MAPPING_SYNC, TYPE.PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE])

export class PeerMessages {
  #sock
  #placeholders
  #record
  #log

  /**
   * @param {{ sock: () => object|null, placeholders: import('./placeholders.js').Placeholders,
   *   record: (msg: object, how: string) => Promise<unknown>, logger: object }} o
   *   `sock` gives the socket whose message it is; `record` journals a contact's message (fail-stop).
   */
  constructor ({ sock, placeholders, record, logger }) {
    this.#sock = sock
    this.#placeholders = placeholders
    this.#record = record
    this.#log = logger
  }

  /** whether `msg` (decrypted, about to be receipted) is a state-changing protocol message of our own */
  handles (msg) {
    const type = msg?.message?.protocolMessage?.type
    return !!msg?.key?.fromMe && type != null && HANDLED.has(type)
  }

  /** applies it; resolves once every write it makes is committed */
  async apply (msg, node) {
    const protocol = msg.message.protocolMessage
    const sock = this.#sock()
    switch (protocol.type) {
      case TYPE.PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE:
        return this.#placeholders.resent(msg, node, this.#record)
      case TYPE.APP_STATE_SYNC_KEY_SHARE:
        if (sock) return this.#keyShare(sock, protocol.appStateSyncKeyShare?.keys ?? [], msg.key.id)
        break
      case TYPE.LID_MIGRATION_MAPPING_SYNC:
        if (sock) return this.#lidMappings(sock, protocol.lidMigrationMappingSyncMessage?.encodedMappingPayload, msg.key.id)
        break
    }
    this.#log.warn({ message_id: msg.key.id, type: protocol.type }, 'peer.not_applied_no_socket')
  }

  // As process-message.js: each key under its base64 id, and the last one becomes creds.myAppStateKeyId.
  // The creds change rides in the same atomic record as the keys (creds-record.js).
  async #keyShare (sock, keys, messageId) {
    const values = {}
    let last = null
    for (const { keyData, keyId } of keys) {
      if (!keyId?.keyId || !keyData) continue
      last = Buffer.from(keyId.keyId).toString('base64')
      values[last] = keyData
    }
    if (!last) return
    sock.authState.creds.myAppStateKeyId = last
    await sock.authState.keys.set({ 'app-state-sync-key': values })
    this.#log.info({ message_id: messageId, keys: Object.keys(values).length }, 'peer.app_state_keys_stored')
  }

  // As process-message.js: store the mappings, then move each number's sessions to its LID.
  async #lidMappings (sock, payload, messageId) {
    let pairs
    try {
      const { pnToLidMappings } = proto.LIDMigrationMappingSyncPayload.decode(payload)
      pairs = pnToLidMappings.map(({ pn, latestLid, assignedLid }) => ({ lid: `${latestLid || assignedLid}@lid`, pn: `${pn}@s.whatsapp.net` }))
    } catch (err) {
      this.#log.warn({ err: { message: err.message }, message_id: messageId }, 'peer.lid_mappings_unreadable')
      return
    }
    const repository = sock.signalRepository
    await repository.lidMapping.storeLIDPNMappings(pairs)
    for (const { pn, lid } of pairs) await repository.migrateSession(pn, lid)
    this.#log.info({ message_id: messageId, mappings: pairs.length }, 'peer.lid_mappings_stored')
  }
}
