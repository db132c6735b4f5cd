"""An unreachable WhatsApp is a named state with its cause, everywhere a user looks, and sends on an account
that cannot send are refused or queued exactly as documented, each with the reason it waits.

- ``whatsapp_unreachable`` (cause ``dns``, ``refused``, ...) on ``/status``, ``/health`` (the cause only
  without a key: the detail can name a host), ``/health/ready`` (503 ``whatsapp_unreachable``) and the
  ``session.status`` event; the worker keeps retrying.
- Never linked (a first connect that cannot reach WhatsApp): ``POST /send`` is 409 ``not_linked`` and
  nothing is stored (it used to queue for 24 h with no reason).
- Linked: the message is accepted and waits with ``wait_reason`` ``whatsapp_unreachable`` (from the first
  answer on), ``not_connected`` while reconnecting, ``not_linked`` once the device is unlinked; it goes out
  once WhatsApp is back.
"""

from __future__ import annotations

import pytest

from tests.helpers.sandbox import CONTACT, pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system


@pytest.mark.parametrize(("server", "cause", "detail"), [
    (None, "refused", "ECONNREFUSED"),  # the test stack's default: a closed port on loopback
    ("ws://wa-gateway-test.invalid/ws/chat", "dns", "wa-gateway-test.invalid"),
], ids=["refused", "dns"])
def test_a_stack_that_cannot_reach_whatsapp_says_so_with_the_cause(make_stack, server, cause, detail):
    stack = make_stack({"WA_SERVER_URL": server} if server else None)
    connect = stack.post("/connect")
    assert connect.status == 200, connect.raw
    status = wait_for(lambda: (s := stack.status())["state"] == "whatsapp_unreachable" and s, 15,
                      "whatsapp_unreachable")
    assert status["unreachable"]["cause"] == cause, status
    assert detail in status["unreachable"]["detail"], status
    assert status["unreachable"]["hint"]
    assert status["registered"] is False
    assert status["last_error"].startswith(f"WhatsApp is unreachable ({cause})")
    assert "(408)" not in status["last_error"]  # the old message read like an HTTP timeout

    # /health: the cause for anyone, the detail (it can name a host) with a key only.
    open_health = stack.get("/health", headers={"X-API-Key": None}).json()
    assert open_health["whatsapp"]["state"] == "whatsapp_unreachable"
    assert open_health["whatsapp"]["unreachable"] == {"cause": cause}
    assert f"whatsapp is whatsapp_unreachable ({cause})" in open_health["reasons"]
    assert detail not in str(open_health)
    keyed = stack.health()["whatsapp"]["unreachable"]
    assert keyed["cause"] == cause and detail in keyed["detail"]
    ready = stack.get("/health/ready", headers={"X-API-Key": None})
    assert ready.status == 503 and ready.json()["error"]["code"] == "whatsapp_unreachable", ready.raw
    assert cause in ready.json()["error"]["message"]

    # Never linked: a send is refused, and nothing is stored.
    res = stack.post("/send", {"phone_number": CONTACT, "message": "into the void"})
    assert res.status == 409 and res.json()["error"]["code"] == "not_linked", res.raw
    assert stack.get("/messages?direction=out").json()["messages"] == []

    # The event says it too (a webhook or SSE consumer learns the cause without polling).
    event = stack.wait_event(lambda e: e["type"] == "session.status" and e["state"] == "whatsapp_unreachable",
                             10, "the whatsapp_unreachable event")
    assert event["unreachable"]["cause"] == cause


def test_a_linked_account_queues_with_the_reason_it_waits(make_stack):
    stack = make_stack({"WA_RECONNECT_MAX_MS": "1000"}, sandbox=True)
    pair(stack)

    # WhatsApp goes away: the linked account queues, saying why from its first answer.
    assert stack.ctl("stop", "emulator").returncode == 0
    unreachable = wait_for(lambda: (s := stack.status())["state"] == "whatsapp_unreachable" and s, 20,
                           "whatsapp_unreachable after the server went away")
    assert unreachable["unreachable"]["cause"] == "refused"
    assert unreachable["registered"] is True
    res = stack.post("/send?wait=0", {"phone_number": CONTACT, "message": "when you are back"})
    assert res.status == 202, res.raw
    first = res.json()
    assert first["status"] == "queued" and first["wait_reason"] == "whatsapp_unreachable", first

    # It comes back: the message goes out, once.
    assert stack.ctl("start", "emulator").returncode == 0
    stack.wait_state("connected", 30)
    sent = wait_for(lambda: (m := stack.get(f"/messages/{first['id']}").json())["status"] not in ("queued", "sending")
                    and m, 30, "the queued message to go out")  # (sending: on its way, not yet acked)
    assert sent["status"] in ("sent", "delivered", "read"), sent
    assert sent["wait_reason"] is None

    # Away again, then unlinked while it waits: the queued message says it will not go until linked again,
    # and new sends are refused.
    assert stack.ctl("stop", "emulator").returncode == 0
    stack.wait_state("whatsapp_unreachable", 20)
    waiting = stack.post("/send?wait=0", {"phone_number": CONTACT, "message": "stuck"}).json()
    assert waiting["wait_reason"] == "whatsapp_unreachable", waiting
    assert stack.post("/disconnect").status == 200
    stack.wait_state("logged_out", 30)
    wait_for(lambda: stack.get(f"/messages/{waiting['id']}").json()["wait_reason"] == "not_linked", 10,
             "the waiting message to say not_linked")
    res = stack.post("/send", {"phone_number": CONTACT, "message": "after the logout"})
    assert res.status == 409 and res.json()["error"]["code"] == "not_linked", res.raw
