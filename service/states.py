"""Every state and reason the gateway reads, stores or answers, declared once.

The worker's own list is ``node_worker/src/states.js``; ``tests/unit/test_states.py`` fails when the worker
can report a state, status or send failure this module does not know. The OpenAPI document, the metrics'
labels, the store's checks and the views all take their values from here, so a new state is one edit.

They are ``StrEnum``s: a member *is* its string (``WorkerState.QR == "qr"``), so values read from the worker
or the store compare and serialize as they are.
"""

from __future__ import annotations

from enum import StrEnum

DEFAULT_ACCOUNT = "default"  # the account the unprefixed routes act on (/send, /status, ...)


class WorkerState(StrEnum):
    """An account's WhatsApp session as the worker reports it (``GET /status``, ``session.status``)."""

    STOPPED = "stopped"  # not started, or stopped by POST /disconnect
    CONNECTING = "connecting"  # opening (or re-opening after a drop, with backoff) the WhatsApp connection
    # connecting, but the last attempt could not reach the server (``unreachable`` says why); retrying
    WHATSAPP_UNREACHABLE = "whatsapp_unreachable"
    QR = "qr"  # not linked: waiting for a QR scan
    PAIRING_CODE = "pairing_code"  # not linked: waiting for the pairing code (``pairing_code``) typed on the phone
    CONNECTED = "connected"  # linked and online: sends go out
    LOGGED_OUT = "logged_out"  # the phone unlinked this device: a new QR scan is needed
    FAILED = "failed"  # the session cannot run (a broken store): needs an operator
    FENCED = "fenced"  # cluster mode: another instance owns the account's lease now


class UnreachableCause(StrEnum):
    """Why the WhatsApp server could not be reached (``unreachable.cause`` in state whatsapp_unreachable)."""

    DNS = "dns"  # the server's name did not resolve
    REFUSED = "refused"  # nothing listens at the address, or a firewall rejects
    TLS = "tls"  # the TLS handshake failed (certificate, an intercepting middlebox, the clock)
    PROXY = "proxy"  # the configured proxy could not be reached, refused, or wants credentials
    TIMEOUT = "timeout"  # no answer within the connect timeout (a firewall that drops)
    NETWORK = "network"  # any other network failure


UNREACHABLE_CAUSES: tuple[str, ...] = tuple(UnreachableCause)

# What the gateway shows when it cannot ask the worker (not running, not answering): not a worker state.
UNKNOWN_STATE = "unknown"
WORKER_STATES: tuple[str, ...] = tuple(WorkerState)
# Every value of an account's state on the gateway side (metrics' labels, /status while the worker is down).
GATEWAY_STATES: tuple[str, ...] = (*WORKER_STATES, UNKNOWN_STATE)
# Not linked: sends are refused (409 not_linked) instead of queued for a connection that will not come.
UNLINKED: tuple[str, ...] = (WorkerState.LOGGED_OUT, WorkerState.QR, WorkerState.PAIRING_CODE)
# A linked account in one of these is on its way back (``/health``'s ``returning``).
RECOVERING: tuple[str, ...] = (WorkerState.CONNECTING, WorkerState.WHATSAPP_UNREACHABLE, UNKNOWN_STATE,
                               WorkerState.STOPPED)


class MessageStatus(StrEnum):
    """An outbound message's status in the outbox (``message.status`` events, ``GET /messages/{id}``)."""

    QUEUED = "queued"  # accepted and durable, waiting for its turn (``wait_reason`` says why it waits)
    SENDING = "sending"  # claimed by a dispatcher, at the worker now
    SENT = "sent"  # WhatsApp's server acknowledged it
    DELIVERED = "delivered"  # the contact's phone received it
    READ = "read"  # the contact read it
    FAILED = "failed"  # given up for good (``reason`` says why)


MESSAGE_STATUSES: tuple[str, ...] = tuple(MessageStatus)
# Final for the sender: the send's HTTP wait ends (200 instead of 202) and the dispatcher is done with it.
DONE: tuple[str, ...] = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED)
# What the worker reports for a message already out (receipts), in the order they advance.
WORKER_MESSAGE_STATUSES: tuple[str, ...] = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


class FailureReason(StrEnum):
    """Why an outbound message failed for good (``reason``), with the sentence the API shows for it."""

    NOT_ON_WHATSAPP = "not_on_whatsapp"
    EXPIRED = "expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    GROUP_NOT_FOUND = "group_not_found"  # a group the account is not in (or none such)
    NOT_ADMIN = "not_admin"  # a group where only admins may send


FAILURE_REASONS: tuple[str, ...] = tuple(FailureReason)
FAILURE_MESSAGES: dict[str, str] = {
    FailureReason.NOT_ON_WHATSAPP: "The phone number is not on WhatsApp.",
    FailureReason.EXPIRED: "The message waited longer than WA_MESSAGE_TTL and was not sent.",
    FailureReason.TOO_MANY_ATTEMPTS: "Sending failed too many times; the message was given up.",
    FailureReason.CANCELLED: "The message was cancelled before it was sent.",
    FailureReason.REJECTED: "The worker refused the message.",
    FailureReason.GROUP_NOT_FOUND: "The account is not in this group (or there is no such group).",
    FailureReason.NOT_ADMIN: "Only the group's admins may send to it.",
}


# The worker's answers, in the gateway's terms (node_worker/src/states.js; tests/unit/test_states.py holds the
# two lists together). A receipt's status -> the outbox status it moves a message to; ``played`` (a voice
# note listened to) is read. ``failed`` (the server's error ack) moves nothing: the send's own answer carries
# it (``whatsapp_rejected``) and the dispatcher retries.
WORKER_RECEIPTS: dict[str, str] = {"sent": MessageStatus.SENT, "delivered": MessageStatus.DELIVERED,
                                   "read": MessageStatus.READ, "played": MessageStatus.READ}
WORKER_RECEIPTS_IGNORED: tuple[str, ...] = ("failed",)
# A send the worker refused for good (the same request gets the same answer) -> why the message failed.
WORKER_SEND_FAILURES: dict[str, str] = {
    "not_on_whatsapp": FailureReason.NOT_ON_WHATSAPP,
    "group_not_found": FailureReason.GROUP_NOT_FOUND,
    "not_admin": FailureReason.NOT_ADMIN,
    **{code: FailureReason.REJECTED for code in ("invalid_phone_number", "invalid_message", "invalid_media",
                                                 "invalid_id", "invalid_batch", "invalid_json", "payload_too_large",
                                                 "unknown_field", "media_missing", "media_corrupt",
                                                 "invalid_group_id", "invalid_participants")},
}
# A send that did not go now but may later: the message stays queued (with its attempt given back when the
# account was not connected or not owned here, else counted towards WA_SEND_MAX_ATTEMPTS).
WORKER_SEND_RETRIES: tuple[str, ...] = (
    "not_connected", "not_owner", "not_attempted", "superseded", "whatsapp_timeout", "whatsapp_rejected",
    "whatsapp_error", "store_error", "worker_error", "store_unavailable",
)
# The codes of the worker's POST /media/download (an inbound message's file) besides its usual refusals
# (not_connected, not_owner, unknown_field, invalid_json, worker_error): ``invalid_media`` (400) and
# ``media_corrupt`` (422: a hash or the MAC did not match, also on a fresh download) fail the media;
# ``media_gone`` (410: expired and the phone did not upload it again) is worth a few more tries;
# ``media_download_failed`` (502: network, TLS, the media host's 5xx) is retried later.
WORKER_MEDIA_DOWNLOAD_ERRORS: tuple[str, ...] = (
    "invalid_media", "media_gone", "media_corrupt", "media_download_failed",
)

# The worker's answers to POST /connect {"phone_number"} when WhatsApp refused the pairing code (it stops the
# session): 429 ``pairing_rate_limited`` (too many codes for the number lately: the gateway holds the account,
# service/http/pairing_limit.py) and 422 ``pairing_code_refused`` (any other refusal, such as a number not on
# WhatsApp), each passed on to the client.
WORKER_PAIRING_ERRORS: tuple[str, ...] = ("pairing_rate_limited", "pairing_code_refused")


class WaitReason(StrEnum):
    """Why a queued message still waits (``wait_reason``)."""

    NOT_CONNECTED = "not_connected"  # the account is not connected to WhatsApp now (reconnecting, worker restarting)
    WHATSAPP_UNREACHABLE = "whatsapp_unreachable"  # the account's worker cannot reach WhatsApp (/status says why)
    NOT_LINKED = "not_linked"  # the account was unlinked (logged out) since: nothing sends until it is linked again
    RETRY_BACKOFF = "retry_backoff"  # a try failed; the next one is scheduled
    RATE_LIMITED = "rate_limited"  # the governor's per-account rate (WA_SEND_RATE_*)
    NEW_CONTACT_BUDGET = "new_contact_budget"  # the governor's daily budget of first messages to new contacts
    RESEND_AFTER_RESTART = "resend_after_restart"  # was at the worker when the gateway stopped: sent again


WAIT_REASONS: tuple[str, ...] = tuple(WaitReason)


class DeliveryStatus(StrEnum):
    """A webhook delivery's status (``GET /webhooks/deliveries``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


DELIVERY_STATUSES: tuple[str, ...] = tuple(DeliveryStatus)
