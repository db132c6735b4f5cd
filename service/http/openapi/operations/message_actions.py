"""The documentation of the actions on a message and on a chat (issue 25): reaction, edit, revoke, read, presence."""

from __future__ import annotations

from service.http import models
from service.http.models import conversation
from service.http.openapi.spec import DEFAULT_NOTE, FAILED_SEND, Op, Param
from service.http.route_table import Handler
from service.http.views import message_actions

_SEND_LIKE = {200: models.MessageOut, 202: models.MessageOut}
_PARAMS = (Param("wait", "query", {"type": "number", "minimum": 0},
                 "Seconds to wait for the send (default WA_SEND_WAIT, at most WA_SEND_WAIT_MAX)."),
           Param("Idempotency-Key", "header", {"type": "string", "pattern": "^[!-~]{1,255}$"},
                 "The same key within 24 h returns the original action and never sends it again."))
_HEADERS = {200: ("Location", "Idempotent-Replayed"), 202: ("Location", "Idempotent-Replayed"), 503: ("Retry-After",)}
_COMMON = {400: ("invalid_idempotency_key", "invalid_wait"),
           409: ("not_linked", "idempotency_key_reused", "message_failed", "chat_unresolved"),
           422: FAILED_SEND, 503: ("outbox_full",)}
_NOTE = ("Stored in the outbox before the answer and sent in order with the chat's messages; answered like "
         "`POST /send` (200 once sent, 202 while queued) with the action's own `id`. " + DEFAULT_NOTE)


def _errors(**more: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    extra = {int(status[1:]): codes for status, codes in more.items()}
    return {status: (*_COMMON.get(status, ()), *extra.get(status, ()))
            for status in sorted({*_COMMON, *extra, 404})} | {404: ("message_not_found",)}


OPERATIONS: dict[Handler, Op] = {
    message_actions.react: Op(
        "React to a message", "Messages", _SEND_LIKE, body=conversation.ReactionRequest, params=_PARAMS,
        headers=_HEADERS, writes=True,
        errors=_errors(s400=("invalid_emoji",), s409=("message_revoked", "not_a_message")),
        description="One emoji on a message of the account (a contact's or ours); `\"\"` removes our reaction. "
                    + _NOTE),
    message_actions.edit: Op(
        "Edit our text message", "Messages", _SEND_LIKE, body=conversation.EditRequest, params=_PARAMS,
        headers=_HEADERS, writes=True,
        errors=_errors(s400=("invalid_message", "message_too_long"),
                       s409=("not_own_message", "not_editable", "not_sent", "edit_window_expired", "message_revoked",
                             "not_a_message")),
        description="The contact sees the new text (marked edited); only our own sent text message, within "
                    "WA_EDIT_WINDOW_SECONDS (WhatsApp: 15 minutes) of its sending. " + _NOTE),
    message_actions.revoke: Op(
        "Delete our message for everyone", "Messages", _SEND_LIKE, body=conversation.NoFieldsRequest,
        body_optional=True, params=_PARAMS, headers=_HEADERS, writes=True,
        errors=_errors(s409=("not_own_message", "not_sent", "revoke_window_expired", "message_revoked",
                             "not_a_message")),
        description="Our own sent message, within WA_REVOKE_WINDOW_SECONDS; a queued one is cancelled instead "
                    "(`DELETE /messages/{id}`). " + _NOTE),
    message_actions.read: Op(
        "Mark a contact's message read", "Messages", _SEND_LIKE, body=conversation.NoFieldsRequest,
        body_optional=True, params=_PARAMS, headers=_HEADERS, writes=True,
        errors=_errors(s409=("not_inbound",)),
        description="Sends read receipts (blue ticks) for this message and every earlier unread one of its chat. "
                    + _NOTE),
    message_actions.presence: Op(
        "Show typing, recording or online in a chat", "Messages", _SEND_LIKE, body=conversation.PresenceRequest,
        params=(*_PARAMS[:2],), headers=_HEADERS, writes=True,
        errors={400: ("invalid_phone_number", "invalid_state", "invalid_idempotency_key", "invalid_wait"),
                409: ("not_linked", "idempotency_key_reused"), 422: FAILED_SEND, 503: ("outbox_full",)},
        description="`composing`, `recording`, `paused`, `available` or `unavailable`; it expires after a minute "
                    "when it could not be sent by then. `available`/`unavailable` name the account's push name: "
                    "until WhatsApp has given it to this device they fail (422 `rejected`). " + _NOTE),
}
