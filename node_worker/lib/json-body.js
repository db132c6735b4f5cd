// Reads a request body that must be one JSON object (an empty body is {}), bounded in size. Shared
// by the worker's internal API and the emulator's control API; each supplies its own errors, so
// both keep their own error codes.
//   fail('too_large' | 'not_json' | 'not_object' | 'incomplete') -> the Error to reject with
// JSON is UTF-8 (RFC 8259): bytes that are not UTF-8 are `not_json`, never replaced silently.
// A body over `maxBytes` is read to its end but not kept (up to DRAIN_FACTOR times the limit, past
// which the connection is cut), so that a client that sends its whole body before it reads the
// answer gets the 413 instead of a reset connection. `incomplete`: the client went away mid-body.
const DRAIN_FACTOR = 16
const utf8 = new TextDecoder('utf-8', { fatal: true })

export const readJsonObject = (req, { maxBytes, fail }) => new Promise((resolve, reject) => {
  let size = 0
  let done = false
  const chunks = []
  const finish = (settle, value) => {
    if (done) return
    done = true
    settle(value)
  }
  req.on('data', (chunk) => {
    size += chunk.length
    if (size > maxBytes * DRAIN_FACTOR) {
      finish(reject, fail('too_large'))
      req.destroy()
      return
    }
    if (size <= maxBytes) chunks.push(chunk)
    else chunks.length = 0
  })
  req.on('end', () => {
    if (size > maxBytes) return finish(reject, fail('too_large'))
    let raw
    try {
      raw = utf8.decode(Buffer.concat(chunks))
    } catch {
      return finish(reject, fail('not_json'))
    }
    if (!raw.trim()) return finish(resolve, {})
    let body
    try {
      body = JSON.parse(raw)
    } catch {
      return finish(reject, fail('not_json'))
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return finish(reject, fail('not_object'))
    finish(resolve, body)
  })
  req.on('error', () => finish(reject, fail('incomplete')))
  req.on('close', () => finish(reject, fail('incomplete')))
})
