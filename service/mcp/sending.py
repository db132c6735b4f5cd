"""send_message: the rails around ``POST /send``.

In order: the arguments become the body ``POST /send`` takes and are checked with the same model the view uses
(``SendRequest``), so a malformed message never costs a budget unit; a dry run (the caller's argument, or the
rails') then checks that the key may act on the account and answers what would be sent; a real send takes one
unit of the key's hourly budget (durable, in the store), sends with the caller's Idempotency-Key, and gives the
unit back when the gateway refused the message (nothing was sent).
"""

from __future__ import annotations

from typing import Any

from service.errors import ApiError
from service.http.models import SendRequest, parse
from service.mcp.gateway_api import ToolError, segment
from service.mcp.tools import Call

# argument -> POST /send's field
FIELDS = {"to": "phone_number", "group_id": "group_id", "text": "message", "reply_to": "reply_to",
          "location": "location", "poll": "poll", "mentions": "mentions"}


def body_of(args: dict[str, Any]) -> dict[str, Any]:
    return {FIELDS[name]: value for name, value in args.items() if name in FIELDS}


def checked(body: dict[str, Any], max_message_chars: int) -> dict[str, Any]:
    """The body as the gateway would read it (the phone number normalized), or ToolError with its code."""
    try:
        model = parse(SendRequest, body, max_message_chars=max_message_chars)
    except ApiError as exc:
        raise ToolError(exc.status, exc.code, exc.message) from None
    return model.model_dump(exclude_none=True)


async def send_message(call: Call) -> dict[str, Any]:
    body = checked(body_of(call.args), call.max_message_chars)
    if call.args.get("dry_run") or call.caller.rails.dry_run:
        # The account must be one this key may act on: a dry run answers 403/404 as the send would.
        await call.api.call("GET", f"/accounts/{segment(call.account)}")
        return {"dry_run": True, "sent": False, "account": call.account, "would_send": body,
                "send_budget_left": await call.budget.left()}
    token, wait = await call.budget.take()
    if token is None:
        raise ToolError(429, "send_budget_exhausted",
                        f"This key's MCP send budget ({call.caller.rails.send_budget} per hour) is spent; the next "
                        f"send is possible in {int(wait)} s.")
    key = call.args.get("idempotency_key")
    try:
        answer = await call.api.call("POST", "/send", account=call.account, body=body,
                                     headers={"Idempotency-Key": key} if key else None)
    except ToolError as exc:
        if 400 <= exc.status < 500:
            await call.budget.refund(token)
        raise
    return {**answer, "send_budget_left": await call.budget.left()}
