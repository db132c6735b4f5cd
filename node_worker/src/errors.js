// Errors that carry their HTTP status and code, rendered as {"error": {"code", "message"}} by the
// internal API: the same shape the gateway uses, so it can pass them through.
export class WorkerError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}
