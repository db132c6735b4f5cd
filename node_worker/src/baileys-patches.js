// The worker depends on node_worker/patches/ being applied to the installed Baileys (patch-package at
// `npm ci`). Without 002+durable-before-receipt, Baileys would acknowledge inbound messages and
// receipts before the worker stored them; without 003+commit-before-frame, a message would leave before
// the Signal state it advanced is on disk; without 004+placeholder-before-ack, a stub whose content the
// phone must resend would be acked before the worker noted what to ask for; without 006+notification-before-ack,
// a group's change would be acked before the worker journaled it; without libsignal+6.0.0
// (crossed sessions), a failed decrypt try would damage the session we write on. A crash or a race
// could then lose messages or break a conversation for good: refuse to start. (001+server-auth is
// checked by sandbox-trust.js.)
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const source = (path, pkg = 'baileys') => readFileSync(fileURLToPath(new URL(path, import.meta.resolve(pkg))), 'utf8')

/** Throws unless the patches are applied; `read(path, pkg)` gives a file of the installed packages (tests pass their own). */
export function assertDurableReceiptHooks (read = source) {
  const recv = read('./Socket/messages-recv.js')
  if (!recv.includes('config.beforeMessageReceipt') || !recv.includes('config.beforeReceiptAck')) {
    throw new Error('Baileys is installed without node_worker/patches (durable before receipt); ' +
      'reinstall with `npm ci` in node_worker')
  }
  if (!recv.includes('config.beforeNotificationAck')) {
    throw new Error('Baileys is installed without node_worker/patches (notification before ack); ' +
      'reinstall with `npm ci` in node_worker')
  }
  if (!recv.includes('config.beforePlaceholderAck')) {
    throw new Error('Baileys is installed without node_worker/patches (placeholder before ack); ' +
      'reinstall with `npm ci` in node_worker')
  }
  const send = read('./Socket/messages-send.js')
  const auth = read('./Utils/auth-utils.js')
  if (!auth.includes('commitPending:') || !send.includes('keys.commitPending') || !recv.includes('keys.commitPending')) {
    throw new Error('Baileys is installed without node_worker/patches (commit before the frame); ' +
      'reinstall with `npm ci` in node_worker')
  }
  if (!read('./src/session_cipher.js', 'libsignal').includes('original.constructor.deserialize(original.serialize())')) {
    throw new Error('libsignal is installed without node_worker/patches (crossed sessions); ' +
      'reinstall with `npm ci` in node_worker')
  }
}
