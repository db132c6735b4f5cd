// HTTP/JSON control API (every path except the WebSocket endpoint /ws/chat).
import { ApiError, apiError } from './errors.js'
import { normalizePhone, e164 } from './accounts.js'
import { readJsonObject } from '../lib/json-body.js'
import { CERT_MODES } from './certs.js'
import { inboxView } from './conversation.js'
import { historyRoutes } from './history.js'
import { pictureRoutes } from './profile-pictures.js'
import { statsRoutes } from './connect-stats.js'

const MAX_BODY = 1024 * 1024
const MAX_HISTORY_BODY = 16 * 1024 * 1024 // a history seed: up to 5000 messages (history-seed.js)
// POST /contacts/{phone}/messages carries base64 media (a document: up to one upload, 64 MiB by default): 96 MiB,
// more when WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES is raised (4/3 of it in base64, and the rest of the JSON)
const messageBodyBound = (maxUploadBytes) => Math.max(96 * 1024 * 1024, Math.ceil(maxUploadBytes * 4 / 3) + 1024 * 1024)
const RETRY_RECEIPT_MODES = ['at_once', 'next_login']
const ADDRESSING_MODES = ['pn', 'lid']

const BODY_ERRORS = {
  too_large: () => apiError(413, 'body_too_large', 'request body is too large (1 MiB; 16 MiB for POST /accounts/{phone}/history; 96 MiB or 4/3 of the media upload bound for POST /contacts/{phone}/messages)'),
  not_json: () => apiError(400, 'bad_json', 'the body is not valid JSON'),
  not_object: () => apiError(400, 'bad_json', 'the body must be a JSON object'),
  incomplete: () => apiError(400, 'bad_json', 'the body ended early')
}
// how large a POST body may be on `pathname`
const bodyBound = (pathname, maxMessageBody) => /\/messages$/.test(pathname) ? maxMessageBody : /\/history$/.test(pathname) ? MAX_HISTORY_BODY : MAX_BODY
const readJson = (req, maxBytes = MAX_BODY) => readJsonObject(req, { maxBytes, fail: (why) => BODY_ERRORS[why]() })

const send = (res, status, body) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

const phoneParam = (raw) => {
  const phone = normalizePhone(decodeURIComponent(raw))
  if (!phone) throw apiError(400, 'invalid_phone_number', 'the phone number in the path is not an E.164 number')
  return phone
}

export const makeControlApi = (emu) => {
  const maxMessageBody = messageBodyBound(emu.mediaServer.maxUploadBytes)
  const routes = [
    ['GET', /^\/$/, () => emu.overview()],
    ['GET', /^\/healthz$/, () => ({ ok: true })],
    ['POST', /^\/phone\/scan$/, async (m, body) => emu.pairing.scan(body)],
    ['POST', /^\/phone\/pair-code$/, async (m, body) => emu.pairCode.enter(body)],
    ['POST', /^\/phone\/peer-messages$/, async (m, body) => emu.placeholders.peerMessage(body)],
    ['POST', /^\/phone\/read$/, (m, body) => emu.phoneReads.read(body)],
    ['GET', /^\/contacts\/([^/]+)\/messages$/, (m) => inboxView(emu.directory.get(phoneParam(m[1])))],
    ['GET', /^\/contacts\/([^/]+)\/sent$/, (m) => { const u = emu.directory.get(phoneParam(m[1])); return u ? emu.retries.sentView(u) : [] }],
    ['POST', /^\/contacts\/([^/]+)\/session$/, (m, body) => emu.faults.contactSession(decodeURIComponent(m[1]), body)],
    ['POST', /^\/contacts\/([^/]+)\/messages$/, async (m, body) => emu.messaging.contactSends(decodeURIComponent(m[1]), body)],
    ['GET', /^\/contacts\/([^/]+)\/presence$/, (m) => emu.conversation.presenceView(emu.directory.get(phoneParam(m[1])))],
    ['POST', /^\/contacts\/([^/]+)\/presence$/, (m, body) => emu.conversation.contactPresence(decodeURIComponent(m[1]), body)],
    ['POST', /^\/contacts\/([^/]+)\/privacy$/, (m, body) => emu.groups.setPrivacy(decodeURIComponent(m[1]), body)],
    ['POST', /^\/contacts\/([^/]+)\/groups\/([^/]+)\/participants$/, (m, body) => emu.groups.changeAsContact(decodeURIComponent(m[1]), decodeURIComponent(m[2]), body)],
    ['GET', /^\/groups$/, () => emu.groups.view()],
    ['POST', /^\/contacts\/([^/]+)\/receipts$/, (m, body) => emu.messaging.contactReceipt(decodeURIComponent(m[1]), body)],
    ['GET', /^\/contacts\/([^/]+)\/receipts-received$/, (m) => {
      const u = emu.directory.get(phoneParam(m[1]))
      return (u?.receiptsReceived || []).flatMap((r) => r.ids.map((id) => ({ id, from: r.from, device: r.device, type: r.type, timestamp: r.timestamp })))
    }],
    ['POST', /^\/contacts$/, (m, body) => {
      const phone = normalizePhone(body.phone_number)
      if (!phone) throw apiError(400, 'invalid_phone_number', 'phone_number must be an E.164 number')
      if (body.on_whatsapp != null && typeof body.on_whatsapp !== 'boolean') throw apiError(400, 'invalid_on_whatsapp', 'on_whatsapp must be a boolean')
      if (body.fail_decrypt_once != null && typeof body.fail_decrypt_once !== 'boolean') throw apiError(400, 'invalid_fail_decrypt_once', 'fail_decrypt_once must be a boolean')
      if (body.retry_receipt != null && !RETRY_RECEIPT_MODES.includes(body.retry_receipt)) throw apiError(400, 'invalid_retry_receipt', `retry_receipt must be one of ${RETRY_RECEIPT_MODES.join(', ')}`)
      if (body.addressing != null && !ADDRESSING_MODES.includes(body.addressing)) throw apiError(400, 'invalid_addressing', `addressing must be one of ${ADDRESSING_MODES.join(', ')}`)
      if (body.signed_prekey_signature != null && !['valid', 'bad'].includes(body.signed_prekey_signature)) throw apiError(400, 'invalid_signed_prekey_signature', 'signed_prekey_signature must be one of valid, bad')
      const existing = emu.directory.get(phone)
      if (body.on_whatsapp === false && existing?.devices.size) throw apiError(409, 'has_linked_devices', 'this number has linked devices; log them out first')
      const u = emu.directory.ensure(phone)
      if (body.on_whatsapp != null) u.onWhatsApp = body.on_whatsapp
      if (typeof body.name === 'string' && body.name) u.pushName = body.name
      if (body.fail_decrypt_once != null) u.failDecryptOnce = body.fail_decrypt_once
      if (body.retry_receipt != null) u.retryReceipt = body.retry_receipt
      if (body.addressing != null) u.addressing = body.addressing
      if (body.signed_prekey_signature != null) u.signedPreKeySignature = body.signed_prekey_signature
      emu.persist()
      return {
        phone_number: e164(u.phone),
        lid: u.onWhatsApp ? u.lidJid : null,
        on_whatsapp: u.onWhatsApp,
        fail_decrypt_once: u.failDecryptOnce,
        retry_receipt: u.retryReceipt,
        addressing: u.addressing,
        signed_prekey_signature: u.signedPreKeySignature
      }
    }],
    ['GET', /^\/media$/, () => ({ ...emu.mediaServer.describe(), url: emu.mediaServer.origin, ca_pem: emu.mediaServer.ca, expiry_seconds: emu.mediaStore.expirySeconds })],
    ['POST', /^\/faults$/, (m, body) => emu.faults.apply(body)],
    ['POST', /^\/cert-mode$/, (m, body) => {
      if (!Object.hasOwn(CERT_MODES, body.mode ?? '')) throw apiError(400, 'invalid_mode', `mode must be one of ${Object.keys(CERT_MODES).join(', ')}`)
      emu.log.warn('cert_mode.set', { mode: body.mode })
      return { mode: emu.setCertMode(body.mode) }
    }]
  ].concat(historyRoutes(emu), pictureRoutes(emu), statsRoutes(emu)) // history sync (history.js), profile pictures (profile-pictures.js), GET /stats (connect-stats.js)

  return async (req, res) => {
    const url = new URL(req.url, 'http://emulator')
    try {
      const matching = routes.filter(([, re]) => re.test(url.pathname))
      if (!matching.length) throw apiError(404, 'not_found', `no route ${url.pathname}`)
      const route = matching.find(([method]) => method === req.method)
      if (!route) throw apiError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`)
      const body = req.method === 'POST' ? await readJson(req, bodyBound(url.pathname, maxMessageBody)) : undefined
      const result = await route[2](url.pathname.match(route[1]), body)
      send(res, 200, result)
    } catch (err) {
      if (err instanceof ApiError) {
        send(res, err.status, { error: { code: err.code, message: err.message } })
      } else {
        emu.log.error('api.failed', { path: url.pathname, error: err?.message, stack: err?.stack?.split('\n').slice(0, 4).join(' | ') })
        send(res, 500, { error: { code: 'internal', message: 'internal error' } })
      }
    }
  }
}
