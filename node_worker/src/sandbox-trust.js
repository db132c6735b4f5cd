// The one place that can make the worker trust a server other than WhatsApp: the sandbox emulator.
//
// Baileys checks the server's certificate chain against WA_CERT_DETAILS.PUBLIC_KEY, an exported,
// mutable object. Replacing it with the emulator's test root is how a test CA is trusted. It is
// off unless WA_SANDBOX_ROOT_KEY is set, and it is logged loudly when it is on.
import { WA_CERT_DETAILS } from 'baileys'

export function applySandboxTrust (rootKeyB64, logger) {
  if (!rootKeyB64) return false
  const key = Buffer.from(rootKeyB64, 'base64')
  if (key.length !== WA_CERT_DETAILS.PUBLIC_KEY.length) {
    throw new Error(`WA_SANDBOX_ROOT_KEY must be a base64 ${WA_CERT_DETAILS.PUBLIC_KEY.length}-byte key`)
  }
  WA_CERT_DETAILS.PUBLIC_KEY = key
  logger.warn({ root_key_prefix: rootKeyB64.slice(0, 8) },
    'sandbox.trust_enabled: this worker trusts a TEST server root, not WhatsApp. Never use this in production.')
  return true
}
