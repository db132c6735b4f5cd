"""Every documented operation, by handler: one module per resource, merged here in the order the document
lists its tags (Health, Session, Messages, Groups, Events, Accounts, Keys, Webhooks, Docs, Operations).

A route whose handler has no ``Op`` is left out of the document, and tests/app/test_openapi.py fails:
document a route when you add it.
"""

from __future__ import annotations

from service.http.openapi.operations import (
    accounts,
    chats,
    docs,
    events,
    groups,
    health,
    mcp,
    media,
    message_actions,
    messages,
    session,
    webhooks,
)
from service.http.openapi.spec import Op
from service.http.route_table import Handler

OPERATIONS: dict[Handler, Op] = {
    **health.OPERATIONS,
    **session.OPERATIONS,
    **messages.OPERATIONS,
    **message_actions.OPERATIONS,
    **chats.OPERATIONS,
    **media.OPERATIONS,
    **groups.OPERATIONS,
    **events.OPERATIONS,
    **accounts.OPERATIONS,
    **webhooks.OPERATIONS,
    **docs.OPERATIONS,
    **mcp.OPERATIONS,
}
