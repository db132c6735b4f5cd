// Reads a request body that must be one JSON object (an empty body is {}), bounded in size. Shared
// by the worker's internal API and the emulator's control API; each supplies its own errors, so
// both keep their own error codes.
//   fail('too_large' | 'not_json' | 'not_object') -> the Error to reject with
export const readJsonObject = (req, { maxBytes, fail }) => new Promise((resolve, reject) => {
  let size = 0
  const chunks = []
  req.on('data', (chunk) => {
    size += chunk.length
    if (size > maxBytes) {
      reject(fail('too_large'))
      req.destroy()
      return
    }
    chunks.push(chunk)
  })
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8')
    if (!raw.trim()) return resolve({})
    let body
    try {
      body = JSON.parse(raw)
    } catch {
      return reject(fail('not_json'))
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return reject(fail('not_object'))
    resolve(body)
  })
  req.on('error', reject)
})
