// The worker depends on node_worker/patches/ being applied to the installed Baileys (patch-package at
// `npm ci`). Without 002+durable-before-receipt, Baileys would acknowledge inbound messages and
// receipts before the worker stored them, and a crash could lose them silently: refuse to start.
// (001+server-auth is checked by sandbox-trust.js.)
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export function assertDurableReceiptHooks () {
  const file = fileURLToPath(new URL('./Socket/messages-recv.js', import.meta.resolve('baileys')))
  const source = readFileSync(file, 'utf8')
  if (!source.includes('config.beforeMessageReceipt') || !source.includes('config.beforeReceiptAck')) {
    throw new Error('Baileys is installed without node_worker/patches (durable before receipt); ' +
      'reinstall with `npm ci` in node_worker')
  }
}
