// Errors that the control API turns into {"error": {"code", "message"}} with an HTTP status.
export class ApiError extends Error {
  constructor (status, code, message, details) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}
export const apiError = (status, code, message, details) => new ApiError(status, code, message, details)
