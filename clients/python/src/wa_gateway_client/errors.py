"""One exception class per error code of the gateway, under one base per HTTP status.

Every gateway error is ``{"error": {"code", "message", ...}}``. The client raises the class registered for
``code`` (``except NotLinked:``), which is also an instance of its status family (``except ConflictError:``)
and of :class:`GatewayError` (``except GatewayError:``), so callers catch as narrowly as they like. A code
this version does not know still raises its status family, with ``code`` set: a newer gateway never breaks
an older client. ``message`` is the server's own text; ``details`` holds the other fields of the error (a
failed send's ``id``, a QR's ``state``).
"""

from __future__ import annotations

import json
from typing import Any


class GatewayError(Exception):
    """Any error answer of the gateway (or no answer at all: :class:`GatewayUnreachable`)."""

    status: int = 0
    code: str = "error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 details: dict[str, Any] | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details or {}
        self.retry_after = retry_after  # seconds, from a 429/503/507's Retry-After header

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}" if self.status else f"{self.code}: {self.message}"


class GatewayUnreachable(GatewayError):
    """No HTTP answer: connection refused, reset, DNS, TLS or a timeout."""

    code = "unreachable"


class UnexpectedResponse(GatewayError):
    """An answer that is not the documented JSON (e.g. a proxy's HTML error page)."""

    code = "unexpected_response"


# --- families, by HTTP status -------------------------------------------------------------------------
class BadRequestError(GatewayError):
    status = 400
    code = "bad_request"


class AuthenticationError(GatewayError):
    status = 401
    code = "unauthorized"


class PermissionDeniedError(GatewayError):
    status = 403
    code = "forbidden"


class NotFoundError(GatewayError):
    status = 404
    code = "not_found"


class RequestTimeoutError(GatewayError):
    status = 408
    code = "request_timeout"


class ConflictError(GatewayError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(GatewayError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(GatewayError):
    status = 415
    code = "unsupported_media_type"


class RangeNotSatisfiableError(GatewayError):
    status = 416
    code = "range_not_satisfiable"


class SendFailed(GatewayError):
    """422: the message was accepted but ended ``failed``; ``details["id"]`` is its id."""

    status = 422
    code = "failed"


class GoneError(GatewayError):
    """410: it existed and never will again (media that failed to download or was pruned)."""

    status = 410
    code = "gone"


class UnprocessableError(GatewayError):
    """422 that is not a failed send: the request's content could not be used (a media URL that failed)."""

    status = 422
    code = "unprocessable"


class RateLimitedError(GatewayError):
    status = 429
    code = "rate_limited"


class ServerError(GatewayError):
    """5xx: a failure of the gateway or its worker, not of the request."""

    status = 500
    code = "internal_error"


class ServiceUnavailableError(ServerError):
    status = 503
    code = "service_unavailable"


class InsufficientStorageError(ServerError):
    """507: the gateway's disk is full; nothing of the request was stored. Not retried by the client (freeing
    space takes an operator): send the same request again later, ``retry_after`` says when to try."""

    status = 507
    code = "insufficient_storage"


FAMILIES: dict[int, type[GatewayError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    408: RequestTimeoutError, 409: ConflictError, 410: GoneError, 413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError, 416: RangeNotSatisfiableError, 422: SendFailed, 429: RateLimitedError,
    503: ServiceUnavailableError, 507: InsufficientStorageError,
}

# code -> class; filled by _code() below. tests/test_python_client.py fails when /openapi.json documents a
# code that has no class here.
BY_CODE: dict[str, type[GatewayError]] = {}


def _code(name: str, code: str, family: type[GatewayError], doc: str) -> type[GatewayError]:
    cls = type(name, (family,), {"code": code, "__doc__": doc, "__module__": __name__})
    BY_CODE[code] = cls
    return cls


# 400
InvalidJson = _code("InvalidJson", "invalid_json", BadRequestError, "The body is not a JSON object.")
InvalidBody = _code("InvalidBody", "invalid_body", BadRequestError, "The body has unknown or wrongly typed fields.")
UnknownField = _code("UnknownField", "unknown_field", BadRequestError,
                     "A body field or query parameter the operation does not take (the message names it).")
UnsupportedTransferEncoding = _code("UnsupportedTransferEncoding", "unsupported_transfer_encoding", BadRequestError,
                                    "A transfer coding other than chunked (compress with Content-Encoding).")
InvalidPhoneNumber = _code("InvalidPhoneNumber", "invalid_phone_number", BadRequestError,
                           "phone_number is not a valid international number.")
InvalidMessage = _code("InvalidMessage", "invalid_message", BadRequestError, "message is empty or not text.")
MessageTooLong = _code("MessageTooLong", "message_too_long", BadRequestError, "message exceeds WA_MAX_MESSAGE_CHARS.")
InvalidIdempotencyKey = _code("InvalidIdempotencyKey", "invalid_idempotency_key", BadRequestError,
                              "Idempotency-Key is not 1-255 printable ASCII characters.")
InvalidWait = _code("InvalidWait", "invalid_wait", BadRequestError, "wait is out of range.")
InvalidLimit = _code("InvalidLimit", "invalid_limit", BadRequestError, "limit is out of range.")
InvalidCursor = _code("InvalidCursor", "invalid_cursor", BadRequestError, "cursor is not one the gateway gave.")
InvalidAfter = _code("InvalidAfter", "invalid_after", BadRequestError, "after is not an event seq.")
InvalidLastEventId = _code("InvalidLastEventId", "invalid_last_event_id", BadRequestError,
                           "Last-Event-ID is not an event seq.")
InvalidDirection = _code("InvalidDirection", "invalid_direction", BadRequestError, "direction is not in or out.")
InvalidStatus = _code("InvalidStatus", "invalid_status", BadRequestError, "status is not a message status.")
InvalidTypes = _code("InvalidTypes", "invalid_types", BadRequestError, "types names an unknown event type.")
InvalidEvents = _code("InvalidEvents", "invalid_events", BadRequestError, "events names an unknown event type.")
InvalidUrl = _code("InvalidUrl", "invalid_url", BadRequestError, "Not an http(s) URL.")
InvalidEndpoint = _code("InvalidEndpoint", "invalid_endpoint", BadRequestError, "endpoint is not a string.")
InvalidLabel = _code("InvalidLabel", "invalid_label", BadRequestError, "label is too long or not text.")
InvalidAccountName = _code("InvalidAccountName", "invalid_account_name", BadRequestError, "Not an account name.")
ReservedAccountName = _code("ReservedAccountName", "reserved_account_name", BadRequestError,
                            "The account name is reserved.")
InvalidProxyUrl = _code("InvalidProxyUrl", "invalid_proxy_url", BadRequestError,
                        "proxy_url is not an http:// or socks5:// proxy URL with host and port, or direct.")
InvalidFormat = _code("InvalidFormat", "invalid_format", BadRequestError, "Unknown QR format.")
InvalidBackground = _code("InvalidBackground", "invalid_background", BadRequestError,
                          "background is not dark or light.")
WebhookUrlNotAllowed = _code("WebhookUrlNotAllowed", "webhook_url_not_allowed", BadRequestError,
                             "The webhook URL is, or resolves to, an internal address.")
InvalidOverlap = _code("InvalidOverlap", "invalid_overlap", BadRequestError, "overlap must be 0 to 604800 seconds.")
UrlNotAllowed = _code("UrlNotAllowed", "url_not_allowed", BadRequestError,
                      "An account's webhook test cannot name a URL (the admin's route can).")
InvalidRequest = _code("InvalidRequest", "invalid_request", BadRequestError, "Fields that exclude each other.")
# 401 / 403 / 408 / 413 / 415
Unauthorized = _code("Unauthorized", "unauthorized", AuthenticationError, "No API key, or not a valid one.")
Forbidden = _code("Forbidden", "forbidden", PermissionDeniedError,
                  "The key is scoped to another account, or the route is the admin's.")
RequestTimeout = _code("RequestTimeout", "request_timeout", RequestTimeoutError, "The body came too slowly.")
PayloadTooLarge = _code("PayloadTooLarge", "payload_too_large", PayloadTooLargeError, "The body is too large.")
UnsupportedMediaType = _code("UnsupportedMediaType", "unsupported_media_type", UnsupportedMediaTypeError,
                             "The body is not application/json.")
# 404
AccountNotFound = _code("AccountNotFound", "account_not_found", NotFoundError, "No account with this name.")
MessageNotFound = _code("MessageNotFound", "message_not_found", NotFoundError, "No message with this id.")
DeliveryNotFound = _code("DeliveryNotFound", "delivery_not_found", NotFoundError, "No webhook delivery with this id.")
EndpointNotFound = _code("EndpointNotFound", "endpoint_not_found", NotFoundError, "No webhook endpoint like this.")
WebhookNotFound = _code("WebhookNotFound", "webhook_not_found", NotFoundError, "No webhook with this id.")
KeyNotFound = _code("KeyNotFound", "key_not_found", NotFoundError, "No key with this id.")
# 409
NotLinked = _code("NotLinked", "not_linked", ConflictError,
                  "The account has no linked WhatsApp: connect and scan the QR first.")
IdempotencyKeyReused = _code("IdempotencyKeyReused", "idempotency_key_reused", ConflictError,
                             "This Idempotency-Key was used with a different request.")
NotCancellable = _code("NotCancellable", "not_cancellable", ConflictError, "Only a queued message can be cancelled.")
NotFailed = _code("NotFailed", "not_failed", ConflictError, "Only a failed delivery can be redriven.")
TooManyStreams = _code("TooManyStreams", "too_many_streams", RateLimitedError,
                       "Too many event streams open (per key or in all): close one or retry after Retry-After.")
AccountExists = _code("AccountExists", "account_exists", ConflictError, "An account with this name exists.")
DefaultAccount = _code("DefaultAccount", "default_account", ConflictError, "The default account cannot be deleted.")
TooManyAccounts = _code("TooManyAccounts", "too_many_accounts", ConflictError, "WA_MAX_ACCOUNTS is reached.")
WebhookExists = _code("WebhookExists", "webhook_exists", ConflictError, "The account has a webhook with this URL.")
TooManyWebhooks = _code("TooManyWebhooks", "too_many_webhooks", ConflictError, "The account has too many webhooks.")
QrUnavailable = _code("QrUnavailable", "qr_unavailable", ConflictError,
                      "No QR to show: the account is not waiting for a scan (details['state']).")
# 422: a send that ended failed, by reason
NotOnWhatsApp = _code("NotOnWhatsApp", "not_on_whatsapp", SendFailed, "The number has no WhatsApp.")
Expired = _code("Expired", "expired", SendFailed, "The message waited longer than its time to live.")
TooManyAttempts = _code("TooManyAttempts", "too_many_attempts", SendFailed, "Every attempt to send failed.")
Cancelled = _code("Cancelled", "cancelled", SendFailed, "The message was cancelled.")
Rejected = _code("Rejected", "rejected", SendFailed, "WhatsApp rejected the message.")
Failed = _code("Failed", "failed", SendFailed, "The message could not be sent.")
# media (issue 24): sending it, and GET /media/{id}
InvalidMedia = _code("InvalidMedia", "invalid_media", BadRequestError,
                     "The media could not be read: broken base64, a truncated multipart body.")
MediaTypeMismatch = _code("MediaTypeMismatch", "media_type_mismatch", BadRequestError,
                          "The declared mimetype is not what the bytes are.")
MediaTypeNotAllowed = _code("MediaTypeNotAllowed", "media_type_not_allowed", BadRequestError,
                            "WhatsApp does not take this type for this kind (a voice note must be OGG/Opus).")
MediaUrlRefused = _code("MediaUrlRefused", "media_url_refused", BadRequestError,
                        "The media URL (or a redirect) is not http(s) or names an address the gateway may not fetch.")
MediaTooLarge = _code("MediaTooLarge", "media_too_large", PayloadTooLargeError,
                      "The media is over its kind's limit (WA_MEDIA_MAX_*): nothing was stored.")
MediaQuotaExceeded = _code("MediaQuotaExceeded", "media_quota_exceeded", PayloadTooLargeError,
                           "The account's media would exceed WA_MEDIA_QUOTA_BYTES: nothing was stored.")
InvalidCaption = _code("InvalidCaption", "invalid_caption", BadRequestError,
                       "caption applies to an image, a video or a document (not audio or a sticker).")
RangeNotSatisfiable = _code("RangeNotSatisfiable", "range_not_satisfiable", RangeNotSatisfiableError,
                            "The Range lies past the end of the media.")
MediaFetchFailed = _code("MediaFetchFailed", "media_fetch_failed", UnprocessableError,
                         "The media URL answered an error, redirected too often or could not be reached.")
MediaFetchTimeout = _code("MediaFetchTimeout", "media_fetch_timeout", UnprocessableError,
                          "The media URL did not finish within WA_MEDIA_FETCH_TIMEOUT.")
MediaMissing = _code("MediaMissing", "media_missing", UnprocessableError, "The stored media of the message is gone.")
MediaCorrupt = _code("MediaCorrupt", "media_corrupt", UnprocessableError,
                     "The media's bytes do not match their sha256 (also raised by the client's own check).")
MediaNotFound = _code("MediaNotFound", "media_not_found", NotFoundError, "No media for this message id.")
MediaNotReady = _code("MediaNotReady", "media_not_ready", ConflictError,
                      "The gateway is still downloading the media from WhatsApp: retry later.")
MediaFailed = _code("MediaFailed", "media_failed", GoneError,
                    "The media could not be downloaded from WhatsApp (details say why); it never will be.")
MediaPruned = _code("MediaPruned", "media_pruned", GoneError, "The media was removed by the retention setting.")
# 5xx
# issue 25: replies, reactions, edits, revokes, reads, locations, contact cards, polls
InvalidReplyTo = _code("InvalidReplyTo", "invalid_reply_to", BadRequestError, "reply_to is not a message id.")
InvalidMentions = _code("InvalidMentions", "invalid_mentions", BadRequestError,
                        "mentions are not phone numbers, or not beside a text sent to a group.")
InvalidLocation = _code("InvalidLocation", "invalid_location", BadRequestError,
                        "location needs latitude -90..90 and longitude -180..180.")
InvalidContacts = _code("InvalidContacts", "invalid_contacts", BadRequestError,
                        "contacts or vcards: 1 to 50 cards, each with a name (and a valid number or vCard).")
InvalidPoll = _code("InvalidPoll", "invalid_poll", BadRequestError,
                    "A poll has a question and 2 to 12 distinct options.")
InvalidEmoji = _code("InvalidEmoji", "invalid_emoji", BadRequestError, 'emoji is not one emoji (or "").')
InvalidState = _code("InvalidState", "invalid_state", BadRequestError,
                     "state is not composing, recording, paused, available or unavailable.")
NotOwnMessage = _code("NotOwnMessage", "not_own_message", ConflictError, "Only a message we sent can be changed.")
NotEditable = _code("NotEditable", "not_editable", ConflictError, "Only a text message can be edited.")
NotSent = _code("NotSent", "not_sent", ConflictError, "The message is not sent yet (still queued).")
EditWindowExpired = _code("EditWindowExpired", "edit_window_expired", ConflictError,
                          "WhatsApp's time to edit the message has passed.")
MessageRevoked = _code("MessageRevoked", "message_revoked", ConflictError, "The message was deleted for everyone.")
NotInbound = _code("NotInbound", "not_inbound", ConflictError, "Only a contact's message can be marked read.")
MessageFailed = _code("MessageFailed", "message_failed", ConflictError, "The message it acts on failed.")
RevokeWindowExpired = _code("RevokeWindowExpired", "revoke_window_expired", ConflictError,
                            "WhatsApp's time to delete the message for everyone has passed.")
NotAMessage = _code("NotAMessage", "not_a_message", ConflictError,
                    "The id names an action (a reaction, an edit...), not a message.")
ChatUnresolved = _code("ChatUnresolved", "chat_unresolved", ConflictError,
                       "The contact is known only by its LID: its chat cannot be addressed yet.")
# issue 25: linking by pairing code
PairingCodeRefused = _code("PairingCodeRefused", "pairing_code_refused", UnprocessableError,
                           "WhatsApp would not give a pairing code for that number.")
PairingRateLimited = _code("PairingRateLimited", "pairing_rate_limited", RateLimitedError,
                           "Too many pairing codes lately: retry after Retry-After.")
# issue 26: groups
InvalidGroupId = _code("InvalidGroupId", "invalid_group_id", BadRequestError,
                       "Not a WhatsApp group id (digits@g.us, as GET /groups lists it).")
InvalidParticipants = _code("InvalidParticipants", "invalid_participants", BadRequestError,
                            "participants: 1 to 1,024 E.164 numbers (the message names a bad one by position).")
InvalidSubject = _code("InvalidSubject", "invalid_subject", BadRequestError, "subject must be 1 to 100 characters.")
InvalidDescription = _code("InvalidDescription", "invalid_description", BadRequestError,
                           "description must be at most 2,048 characters.")
InvalidInviteCode = _code("InvalidInviteCode", "invalid_invite_code", BadRequestError,
                          "Not an invite code (or a https://chat.whatsapp.com/ link).")
GroupNotFound = _code("GroupNotFound", "group_not_found", NotFoundError,
                      "No such group, the account is not in it, or the invite code is unknown or revoked.")
NotAdmin = _code("NotAdmin", "not_admin", PermissionDeniedError, "Only a group admin may do that.")
NotConnected = _code("NotConnected", "not_connected", ConflictError,
                     "The account's WhatsApp session is not connected right now: retry once it is.")
WhatsAppTimeout = _code("WhatsAppTimeout", "whatsapp_timeout", ServerError, "WhatsApp did not answer in time.")
NotSupportedInGroups = _code("NotSupportedInGroups", "not_supported_in_groups", ConflictError,
                             "Not done in groups (marking a group's messages read).")
# issue 27: chats, contacts, MCP rails
InvalidChat = _code("InvalidChat", "invalid_chat", BadRequestError,
                    "Not a chat: a phone number (+...), a group id (...@g.us) or a LID (...@lid).")
InvalidQuery = _code("InvalidQuery", "invalid_query", BadRequestError, "q must be 1 to 200 characters.")
InvalidPicture = _code("InvalidPicture", "invalid_picture", BadRequestError, "picture must be true or false.")
InvalidMcp = _code("InvalidMcp", "invalid_mcp", BadRequestError,
                   "A key's MCP rails: known tool names, a budget of 0 or more, dry_run true or false.")
ChatNotFound = _code("ChatNotFound", "chat_not_found", NotFoundError, "The account has no message with this chat.")
ContactNotFound = _code("ContactNotFound", "contact_not_found", NotFoundError,
                        "Nothing is known of this number and the account cannot ask WhatsApp now.")

InternalError = _code("InternalError", "internal_error", ServerError, "The gateway failed.")
WorkerError = _code("WorkerError", "worker_error", ServerError, "The worker failed.")
WorkerProtocol = _code("WorkerProtocol", "worker_protocol", ServerError, "The worker answered nonsense.")
SessionStoreError = _code("SessionStoreError", "session_store_error", ServerError, "The session store failed.")
WhatsAppError = _code("WhatsAppError", "whatsapp_error", ServerError, "WhatsApp answered an error.")
WorkerTimeout = _code("WorkerTimeout", "worker_timeout", ServerError, "The worker did not answer in time.")
WorkerUnavailable = _code("WorkerUnavailable", "worker_unavailable", ServiceUnavailableError,
                          "The worker is not running (restarting?): retry.")
WorkerStopping = _code("WorkerStopping", "worker_stopping", ServiceUnavailableError, "The worker is stopping: retry.")
OutboxFull = _code("OutboxFull", "outbox_full", ServiceUnavailableError, "The outbox is full: retry later.")
InsufficientStorage = _code("InsufficientStorage", "insufficient_storage", InsufficientStorageError,
                            "The gateway's disk is full: nothing was stored; retry later.")
ShuttingDown = _code("ShuttingDown", "shutting_down", ServiceUnavailableError,
                     "The gateway is draining after SIGTERM: retry after Retry-After (the client does).")


def from_response(status: int, body: Any, retry_after: float | None = None) -> GatewayError:
    """The exception for an error answer: the class of its code, else of its status family."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return UnexpectedResponse(f"HTTP {status} without the gateway's error body", status=status,
                                  retry_after=retry_after)
    code, message = error["code"], str(error.get("message", ""))
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    cls = BY_CODE.get(code) or FAMILIES.get(status) or (ServerError if status >= 500 else GatewayError)
    return cls(message, status=status, code=code, details=details, retry_after=retry_after)


def json_or_none(body: bytes) -> Any:
    """An error answer's JSON, or None when it is none (a proxy's HTML page)."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def json_body(status: int, body: bytes) -> Any:
    """A success answer's JSON; a body that is not JSON is ``UnexpectedResponse``."""
    try:
        return json.loads(body)
    except ValueError:
        raise UnexpectedResponse(f"HTTP {status} with a body that is not JSON", status=status) from None
