// Errors that carry their HTTP status and code, rendered as {"error": {"code", "message", ...details}}
// by the internal API: the same shape the gateway uses, so it can pass them through. `details` are
// extra machine-readable fields beside code and message (for 409 not_connected: state, attempt,
// next_retry_ms, next_retry_at, last_error).
export class WorkerError extends Error {
  constructor (status, code, message, details = {}) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}
