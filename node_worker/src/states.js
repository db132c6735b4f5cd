// The worker's states and reasons, in one place: what a session's state can be, which statuses the
// worker reports for a message it sent, and with which codes it answers a send. The gateway keeps its
// own copies of these lists (service/); a Python test compares them with the frozen arrays below
// (`WORKER_STATES`, `MESSAGE_STATUSES`, `SEND_FAILURES`), so each list is complete: every value the
// worker emits is here, and nothing it never emits. Code compares and emits the named values (STATE.*,
// STATUS.*, ...), never string literals.

const frozen = (names) => Object.freeze(Object.fromEntries(names.map((name) => [name.toUpperCase(), name])))

// A session's state (session/lifecycle.js has the state machine; GET /status, `session.status` events).
// whatsapp_unreachable: connecting, but the last attempt could not reach the server (its cause in
// `unreachable`, network-cause.js); it keeps retrying with backoff. pairing_code: linking by a code typed on
// the phone (POST /connect with phone_number) instead of a QR, the code in the status while it waits.
export const STATE = frozen(['stopped', 'connecting', 'whatsapp_unreachable', 'qr', 'pairing_code', 'connected',
  'logged_out', 'failed', 'fenced'])
export const WORKER_STATES = Object.freeze(Object.values(STATE))

// Why the server could not be reached, in state whatsapp_unreachable (network-cause.js classifies).
export const UNREACHABLE_CAUSE = frozen(['dns', 'refused', 'tls', 'proxy', 'timeout', 'network'])
export const UNREACHABLE_CAUSES = Object.freeze(Object.values(UNREACHABLE_CAUSE))

// The statuses of a message this worker sent, as `message.status` events (session/statuses.js) and the
// `status` of a send's answer (`sent`). In the order WhatsApp reports them; `failed` is the server's ack
// with an error. WhatsApp's `pending` (not yet at the server) is no status the worker reports.
export const STATUS = frozen(['sent', 'delivered', 'read', 'played', 'failed'])
export const MESSAGE_STATUSES = Object.freeze(Object.values(STATUS))

// The codes of a send that failed for good: the same request gets the same answer, so the gateway fails
// the message instead of retrying it. `not_on_whatsapp` (422) is the recipient's; `media_missing` /
// `media_corrupt` (422) the media file's in WA_MEDIA_DIR (absent, or not hashing to its name); the others
// (400, 413) refuse the request as given (server.js). A request cut off mid-body (`incomplete_body`) and an unknown
// account or route are no failures of a send and are not listed.
export const SEND_FAILURE = frozen([
  'not_on_whatsapp', 'media_missing', 'media_corrupt',
  'invalid_phone_number', 'invalid_message', 'invalid_media', 'invalid_id', 'invalid_batch', 'invalid_json',
  'payload_too_large', 'unknown_field',
  // groups (issue 26): not a group id; a group the account is not in (or none such); a change only admins may
  // make; a participant list of 0 or more than WhatsApp's 1,024
  'invalid_group_id', 'group_not_found', 'not_admin', 'invalid_participants'
])
export const SEND_FAILURES = Object.freeze(Object.values(SEND_FAILURE))

// The codes of a send that did not go now but may later (409, 5xx): the gateway keeps the message.
//   not_connected: no open connection (or it closed under the send); not_owner: this instance lost the
//   account's lease; not_attempted: an earlier message of the batch failed; superseded: the same id was
//   sent again; whatsapp_timeout / whatsapp_rejected / whatsapp_error: WhatsApp did not answer, refused
//   the message (an error ack) or failed the relay; store_error: the message could not be stored before
//   it left; worker_error: a bug; store_unavailable: PostgreSQL unreachable.
export const SEND_RETRY = frozen([
  'not_connected', 'not_owner', 'not_attempted', 'superseded',
  'whatsapp_timeout', 'whatsapp_rejected', 'whatsapp_error',
  'store_error', 'worker_error', 'store_unavailable'
])
export const SEND_RETRY_CODES = Object.freeze(Object.values(SEND_RETRY))

// The codes of POST /media/download (session/media-download.js) besides the usual not-connected and body
// refusals: `invalid_media` (400, a body that names no media), `media_gone` (410: the media host no longer has
// the file and the phone did not upload it again: the gateway tries a few times, then fails it),
// `media_corrupt` (422: a hash or the MAC did not match, twice), `media_download_failed` (502: the network,
// TLS or a 5xx of the media host: later may work).
export const MEDIA_DOWNLOAD_ERROR = frozen(['invalid_media', 'media_gone', 'media_corrupt', 'media_download_failed'])
export const MEDIA_DOWNLOAD_ERRORS = Object.freeze(Object.values(MEDIA_DOWNLOAD_ERROR))

// The account the worker's un-prefixed routes (/status, /send, ...) act on.
export const DEFAULT_ACCOUNT = 'default'

// The codes of the session's own refusals (besides a send's): a session store that cannot be read
// (resume leaves it `failed`), POST /connect during shutdown, an attach with an older lease generation.
export const SESSION_ERROR = frozen(['session_store_error', 'worker_stopping', 'stale_lease'])

// WhatsApp's refusals of a pairing code (POST /connect with phone_number), which leave the session `stopped`
// with them in last_error: 429 `pairing_rate_limited` (too many codes for the number lately), 422
// `pairing_code_refused` (any other error answer: a number WhatsApp will not link, such as one not on it).
export const PAIRING_ERROR = frozen(['pairing_rate_limited', 'pairing_code_refused'])
export const PAIRING_ERRORS = Object.freeze(Object.values(PAIRING_ERROR))
