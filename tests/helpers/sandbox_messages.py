"""A sandbox stack's messages as the page tests wait for them: ours once WhatsApp took them, a contact's once the
gateway stored them (both found through the messages API, as a client would)."""

from __future__ import annotations

from tests.helpers.stack import wait_for

SENT_STATES = ("sent", "delivered", "read")


def sent(stack, body: dict, path: str = "/send") -> dict:
    """We send ``body`` (or act on a message through ``path``); the message once WhatsApp took it."""
    res = stack.post(path, body)
    assert res.status in (200, 202), res.raw
    message_id = res.json()["id"]
    return wait_for(lambda: (m := stack.get(f"/messages/{message_id}").json())["status"] in SENT_STATES and m, 60,
                    f"our {path} sent")


def received(stack, whatsapp_id: str) -> str:
    """Our id of the contact's message ``whatsapp_id``, once the gateway stored it."""
    def found():
        return next((m["id"] for m in stack.get("/messages?direction=in&limit=100").json()["messages"]
                     if m["whatsapp_id"] == whatsapp_id), None)
    return str(wait_for(found, 30, f"the contact's message {whatsapp_id} at the gateway"))
