// Creds that change together with keys are written with them.
//
// Baileys changes creds counters (nextPreKeyId, firstUnuploadedPreKeyId) in memory together with the
// pre-keys it generates inside a key-store transaction, and tells the app only through a 'creds.update'
// event that the app saves later. A retry receipt hands out such a pre-key: if the process died before
// the event was saved, the next start would generate the same pre-key id with other key material and
// the contact's session built on it would never decrypt. So each key commit (patch 003 makes it happen
// before the frame) also carries the creds record whenever the creds differ from what was last written:
// one atomic record, one fsync, and a saveCreds with nothing new writes nothing.

/**
 * @param {object} creds the live creds object Baileys mutates
 * @param {(value: object) => string} encode
 * @param {string} key the store key of the creds record
 */
export function trackCreds (creds, encode, key) {
  let written = encode(creds)
  return {
    /** the creds record to add to a commit, or null when the creds are as last written */
    op () {
      const text = encode(creds)
      return text === written ? null : [key, text]
    },
    /** after a commit that carried `op` succeeded */
    committed (op) {
      if (op) written = op[1]
    }
  }
}
