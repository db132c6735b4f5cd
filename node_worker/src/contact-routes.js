// The worker's contact route (issue 27; shapes in node_worker/api/openapi.json): GET /contacts/{phone}, one number asked
// of WhatsApp live (session/contacts.js lookup). `{phone}` is one path segment, +E.164, percent-encoded or not
// (matched by server.js); anything else is 400 invalid_phone_number.
import { WorkerError } from './errors.js'
import { isE164 } from './phone.js'
import { SEND_FAILURE } from './states.js'

/** The +E.164 number of a path segment (percent-decoded), else 400 invalid_phone_number. */
export function phoneOf (segment) {
  let phone
  try {
    phone = decodeURIComponent(segment)
  } catch {
    phone = null
  }
  if (!isE164(phone)) throw new WorkerError(400, SEND_FAILURE.INVALID_PHONE_NUMBER, 'The phone number must be +E.164 (e.g. %2B14155550123).')
  return phone
}

// ?picture=1|true|0|false (absent: no picture asked for)
const pictureOf = (url) => {
  const value = url.searchParams.get('picture')
  if (value === null || value === '0' || value === 'false') return false
  if (value === '1' || value === 'true') return true
  throw new WorkerError(400, 'invalid_picture', 'picture must be 1, true, 0 or false.')
}

/** The contact routes, as server.js's per-account routes: (req, url, account, params) with `params.phone`. */
export function contactRoutes () {
  return {
    'GET /contacts/{phone}': async (req, url, { session }, { phone }) => session.contacts.lookup(phone, { picture: pictureOf(url) })
  }
}
