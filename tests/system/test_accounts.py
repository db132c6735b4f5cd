"""Issue 10's acceptance for several accounts, through supervisord against the emulator, using only the
public HTTP API and the emulator's control API (no process names, no worker sockets: the worker may run
as one process or as shards). Three accounts on three emulated phones send and receive at once and
nothing crosses between them (contacts' inboxes, inbound listings, event logs, webhooks); a key scoped
to one account is refused everywhere else; bad input gets the one error shape; deleting an account
unlinks its device and leaves nothing behind; accounts survive a whole restart without a QR.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.http.routes import PER_ACCOUNT
from service.webhooks import secret as webhook_secret
from tests.helpers.accounts import account_events, base, create, devices, error_code, inbox, link, pages, state
from tests.helpers.stack import wait_for
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.system

FAST = {  # the governor out of the way: these tests are about which account, not pacing
    "WA_SEND_BURST": "1000", "WA_SEND_RATE_PER_MINUTE": "600000", "WA_SEND_JITTER": "0",
    "WA_WEBHOOK_RETRY_BASE": "0.2", "WA_WEBHOOK_RETRY_MAX": "1",
}
PHONES = {"default": "+15550101000", "sales": "+15550102000", "support": "+15550103000"}
CONTACTS = {  # two contacts per account, none shared
    "default": ["+15550101001", "+15550101002"],
    "sales": ["+15550102001", "+15550102002"],
    "support": ["+15550103001", "+15550103002"],
}
PER_PAIR = 10  # messages each way per (account, contact)


# --- 1. three accounts at once ------------------------------------------------------------------

def send_both_ways_at_once(stack) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Every account sends PER_PAIR messages to one of its contacts while the other writes PER_PAIR to it, then
    the other way round; returns (account -> outbox id -> contact, account -> whatsapp id -> contact)."""
    sent_out: dict[str, dict[str, str]] = {n: {} for n in PHONES}  # account -> outbox id -> contact
    sent_in: dict[str, dict[str, str]] = {n: {} for n in PHONES}  # account -> whatsapp id -> contact

    def send_out(name: str, contact: str) -> None:
        for n in range(PER_PAIR):
            res = stack.post(base(name) + "/send?wait=0",
                             {"phone_number": contact, "message": f"{name} to {contact} #{n}"})
            assert res.status in (200, 202), res.raw
            sent_out[name][res.json()["id"]] = contact

    def send_in(name: str, contact: str) -> None:
        for n in range(PER_PAIR):
            res = stack.emu("POST", f"/contacts/{contact}/messages",
                            {"to": PHONES[name], "text": f"{contact} to {name} #{n}"})
            assert res.status == 200, res.raw
            assert res.json()["delivered_to"], res.raw  # the account's device was online
            sent_in[name][res.json()["id"]] = contact

    # Two rounds, six client threads each: every account sends to one of its contacts while the
    # other writes to it, then the other way round. Never both ways on one pair at the same moment:
    # that leaves a message undecryptable at the emulated phone (see the report of issue 10).
    with ThreadPoolExecutor(6) as pool:
        for out_i, in_i in ((0, 1), (1, 0)):
            futures = []
            for name, contacts in CONTACTS.items():
                futures += [pool.submit(send_out, name, contacts[out_i]),
                            pool.submit(send_in, name, contacts[in_i])]
            for f in futures:
                f.result(120)
            for contacts in CONTACTS.values():  # this round's messages are at the contacts
                contact = contacts[out_i]
                wait_for(lambda contact=contact: len(inbox(stack, contact)) >= PER_PAIR, 60,
                         f"{PER_PAIR} messages at {contact}")
    return sent_out, sent_in


def check_nothing_crossed_in_the_api(stack, sent_out: dict[str, dict[str, str]],
                                     sent_in: dict[str, dict[str, str]]) -> None:
    # Each contact sees its 10 messages, every one from the account that sent it and no other.
    for name, contacts in CONTACTS.items():
        for contact in contacts:
            got = inbox(stack, contact)
            assert Counter(m["from"] for m in got) == {PHONES[name]: PER_PAIR}, got
            assert sorted(str(m["text"]) for m in got) == sorted(
                f"{name} to {contact} #{n}" for n in range(PER_PAIR)), got

    # Inbound: each message only in the addressed account's listing and event log.
    for name in PHONES:
        wanted = set(sent_in[name])
        listed = wait_for(lambda name=name, wanted=wanted:
                          (ms := pages(stack, base(name) + "/messages?direction=in", "messages"))
                          and {m["whatsapp_id"] for m in ms} >= wanted and ms, 60, f"{name}'s inbound")
        assert sorted(m["whatsapp_id"] for m in listed) == sorted(wanted)
        assert {m["phone_number"] for m in listed} == set(CONTACTS[name])
        evs = account_events(stack, name)
        assert {e["account"] for e in evs} == {name}
        received = [e["data"]["whatsapp_id"] for e in evs if e["type"] == "message.received"]
        assert sorted(received) == sorted(wanted)
        # The outbox listing holds exactly this account's sends, all sent.
        out = pages(stack, base(name) + "/messages?direction=out", "messages")
        assert {m["id"] for m in out} == set(sent_out[name])
    # The original route is the default account's, and only its.
    assert {m["whatsapp_id"] for m in pages(stack, "/messages?direction=in", "messages")} == set(sent_in["default"])


def check_nothing_crossed_in_the_webhooks(receiver, sent_out: dict[str, dict[str, str]],
                                          sent_in: dict[str, dict[str, str]]) -> None:
    # Webhooks (one receiver): every event names its account; each inbound message arrives once,
    # under one webhook-id, with the account it was addressed to.
    owner_in = {wid: name for name, ids in sent_in.items() for wid in ids}
    owner_out = {mid: name for name, ids in sent_out.items() for mid in ids}

    def delivered_in():
        got = {r.event["data"]["whatsapp_id"] for r in receiver.delivered()
               if r.event and r.event["type"] == "message.received"}
        return got >= set(owner_in)
    wait_for(delivered_in, 60, "every inbound message at the webhook receiver")
    records = receiver.snapshot()
    assert all(r.event is not None for r in records), [r.error for r in records if r.event is None]
    assert all(r.event["account"] in PHONES for r in records), {r.event["account"] for r in records}
    delivered = [r for r in records if r.status == 200]
    per_id = Counter(r.id for r in delivered)
    assert max(per_id.values()) == 1, [i for i, n in per_id.items() if n > 1][:5]
    hooks_of: dict[str, set[str]] = defaultdict(set)
    for r in delivered:
        ev = r.event
        if ev["type"] == "message.received":
            assert ev["account"] == owner_in[ev["data"]["whatsapp_id"]], ev
            hooks_of[ev["data"]["whatsapp_id"]].add(r.id)
        elif ev["type"] == "message.status" and ev["data"].get("id") in owner_out:
            assert ev["account"] == owner_out[ev["data"]["id"]], ev
        elif ev["type"] == "session.status" and ev["data"].get("phone_number"):
            assert PHONES[ev["account"]] == ev["data"]["phone_number"], ev
    assert {w: len(ids) for w, ids in hooks_of.items()} == {w: 1 for w in owner_in}


def test_three_accounts_send_and_receive_concurrently_and_nothing_crosses_between_them(make_stack):
    secret = webhook_secret.generate()
    receiver = Receiver(secret).start()
    try:
        stack = make_stack({**FAST, "WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}, sandbox=True)
        for name in ("sales", "support"):
            create(stack, name)
        for name, phone in PHONES.items():
            assert link(stack, name, phone)["phone_number"] == phone
        sent_out, sent_in = send_both_ways_at_once(stack)
        check_nothing_crossed_in_the_api(stack, sent_out, sent_in)
        check_nothing_crossed_in_the_webhooks(receiver, sent_out, sent_in)
    finally:
        receiver.stop()


# --- 2. scoped keys -----------------------------------------------------------------------------

def test_a_scoped_key_works_only_on_its_account_until_revoked_and_the_admin_key_works_everywhere(make_stack):
    stack = make_stack(FAST, sandbox=True)
    for name in ("sales", "support"):
        create(stack, name)
    link(stack, "sales", PHONES["sales"])
    link(stack, "support", PHONES["support"])
    issued = stack.post("/accounts/sales/keys", {"label": "crm"})
    assert issued.status == 201, issued.raw
    sales_key = {"X-API-Key": issued.json()["key"]}
    contact = CONTACTS["support"][0]
    support_in = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONES["support"], "text": "private"})
    assert support_in.status == 200, support_in.raw
    wait_for(lambda: pages(stack, "/accounts/support/messages?direction=in", "messages"), 30, "support's inbound")
    support_sent = stack.post("/accounts/support/send", {"phone_number": contact, "message": "from support"})
    assert support_sent.status in (200, 202), support_sent.raw

    refused = []
    for prefix in ("/accounts/support", ""):  # another account, and the original routes (default's)
        refused += [
            ("GET", prefix + "/status", None), ("GET", prefix + "/messages", None),
            ("GET", prefix + "/messages?direction=in", None), ("GET", prefix + "/events", None),
            ("GET", prefix + "/events/stream", None), ("GET", prefix + "/messages/" + support_sent.json()["id"], None),
            ("POST", prefix + "/send", {"phone_number": contact, "message": "not yours"}),
            ("POST", prefix + "/connect", None), ("POST", prefix + "/disconnect", None),
        ]
    refused += [("GET", "/accounts/support", None), ("GET", "/accounts", None),
                ("POST", "/accounts", {"name": "mine"}), ("POST", "/accounts/sales/keys", None),
                ("DELETE", "/accounts/support", None), ("DELETE", "/accounts/sales", None)]
    for method, path, body in refused:
        res = (stack.post(path, body, headers=sales_key) if method == "POST"
               else stack.delete(path, headers=sales_key) if method == "DELETE"
               else stack.get(path, headers=sales_key, timeout=5))
        assert res.status == 403 and error_code(res) == "forbidden", (method, path, res.status, res.raw)
    # None of it happened: support is still linked, sent nothing more, and no account was made.
    assert state(stack, "support")["state"] == "connected"
    assert len(pages(stack, "/accounts/support/messages", "messages")) == 1
    assert [a["name"] for a in stack.get("/accounts").json()["accounts"]] == ["default", "sales", "support"]
    assert len(devices(stack, PHONES["support"])) == 1

    # Everything on its own account.
    for path in ("/status", "/messages", "/messages?direction=in", "/events"):
        res = stack.get("/accounts/sales" + path, headers=sales_key)
        assert res.status == 200, (path, res.raw)
    sent = stack.post("/accounts/sales/send", {"phone_number": CONTACTS["sales"][0], "message": "mine"},
                      headers=sales_key)
    assert sent.status in (200, 202), sent.raw
    assert stack.get("/accounts/sales/messages/" + sent.json()["id"], headers=sales_key).status == 200
    wait_for(lambda: [m for m in inbox(stack, CONTACTS["sales"][0]) if m["text"] == "mine"], 30, "sales' message")
    assert stack.post("/accounts/sales/connect", headers=sales_key).json()["state"] == "connected"
    res = stack.post("/accounts/sales/disconnect", headers=sales_key)
    assert res.status == 200, res.raw
    wait_for(lambda: not devices(stack, PHONES["sales"]), 30, "sales unlinked at the emulator")
    res = stack.post("/accounts/sales/connect", headers=sales_key)
    assert res.status == 200 and res.json()["state"] in ("qr", "connecting"), res.raw

    # Revoked: 401 on its own routes too.
    key_id = issued.json()["id"]
    assert stack.delete(f"/accounts/sales/keys/{key_id}").status == 200
    for method, path in (("GET", "/accounts/sales/status"), ("GET", "/accounts/sales/messages"),
                         ("POST", "/accounts/sales/connect")):
        res = stack.post(path, headers=sales_key) if method == "POST" else stack.get(path, headers=sales_key)
        assert res.status == 401 and error_code(res) == "unauthorized", (path, res.raw)

    # The admin key: every account and the original routes.
    for prefix in ("/accounts/support", "/accounts/sales", ""):
        for path in ("/status", "/messages", "/messages?direction=in", "/events"):
            assert stack.get(prefix + path).status == 200, prefix + path
        res = stack.post(prefix + "/send?wait=0", {"phone_number": CONTACTS["default"][0], "message": "admin"})
        if prefix == "/accounts/support":
            assert res.status in (200, 202), res.raw
        else:  # through the key check; refused only because these two are not linked (now)
            assert res.status == 409 and error_code(res) == "not_linked", res.raw
        assert stack.post(prefix + "/connect").status == 200
    assert stack.post("/accounts/support/disconnect").status == 200
    wait_for(lambda: not devices(stack, PHONES["support"]), 30, "support unlinked by the admin key")
    assert stack.get("/accounts").status == 200


# --- 3. bad input, delete, re-create -------------------------------------------------------------

def test_bad_names_unknown_accounts_limits_and_a_delete_that_leaves_nothing_behind(make_stack):
    stack = make_stack({**FAST, "WA_MAX_ACCOUNTS": "3"}, sandbox=True)
    for body, code in [({"name": "Sales"}, "invalid_account_name"), ({"name": "a"}, "invalid_account_name"),
                       ({"name": "-x"}, "invalid_account_name"), ({"name": "x-"}, "invalid_account_name"),
                       ({"name": "x" * 33}, "invalid_account_name"), ({"name": "a/b"}, "invalid_account_name"),
                       ({"name": 7}, "invalid_account_name"), ({"name": "admin"}, "reserved_account_name"),
                       ({"name": "accounts"}, "reserved_account_name"), ({"name": "keys"}, "reserved_account_name")]:
        res = stack.post("/accounts", body)
        assert res.status == 400 and error_code(res) == code, (body, res.raw)
    for raw in (b"", b"[]", b"{", b'{"label": "x"}'):
        res = stack.post("/accounts", raw=raw)
        assert res.status == 400, (raw, res.raw)
        error_code(res)
    assert [a["name"] for a in stack.get("/accounts").json()["accounts"]] == ["default"]

    # Unknown account: 404 on every per-account route, the account itself and its keys.
    ghost = "/accounts/ghost"
    routes = [(m, ghost + p.replace("{id}", "msg_x").replace("{phone}", "+15550001111")
              .replace("{chat}", "+15550001111")) for m, p, _ in PER_ACCOUNT]
    routes += [("GET", ghost), ("DELETE", ghost), ("GET", ghost + "/keys"), ("POST", ghost + "/keys"),
               ("DELETE", ghost + "/keys/key_x")]
    for method, path in routes:
        body = {"phone_number": CONTACTS["sales"][0], "message": "x"} if path.endswith("/send") else None
        res = (stack.post(path, body) if method == "POST" else stack.delete(path) if method == "DELETE"
               else stack.get(path, timeout=5))
        assert res.status == 404 and error_code(res) == "account_not_found", (method, path, res.raw)

    res = stack.delete("/accounts/default")
    assert res.status == 409 and error_code(res) == "default_account", res.raw
    assert state(stack, "default")["state"] is not None

    create(stack, "sales")
    res = stack.post("/accounts", {"name": "sales"})
    assert res.status == 409 and error_code(res) == "account_exists", res.raw
    res = stack.post("/accounts", {"name": "default"})
    assert res.status == 409 and error_code(res) == "account_exists", res.raw
    create(stack, "support")
    res = stack.post("/accounts", {"name": "third"})  # default + 2 = WA_MAX_ACCOUNTS
    assert res.status == 409 and error_code(res) == "too_many_accounts", res.raw
    assert [a["name"] for a in stack.get("/accounts").json()["accounts"]] == ["default", "sales", "support"]

    # A linked account with messages both ways, then deleted.
    link(stack, "sales", PHONES["sales"])
    link(stack, "support", PHONES["support"])
    contact = CONTACTS["sales"][0]
    out = stack.post("/accounts/sales/send", {"phone_number": contact, "message": "before delete"})
    assert out.status in (200, 202), out.raw
    wait_for(lambda: inbox(stack, contact), 30, "the sales message at the contact")
    stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONES["sales"], "text": "to sales"})
    [inbound] = wait_for(lambda: pages(stack, "/accounts/sales/messages?direction=in", "messages"), 30,
                         "sales' inbound message")
    data = stack.data_dir / "accounts" / "sales"
    assert (data / "session").is_dir() and devices(stack, PHONES["sales"])
    key = stack.post("/accounts/sales/keys").json()["key"]

    res = stack.delete("/accounts/sales")
    assert res.status == 200, res.raw
    assert res.json() == {"name": "sales", "deleted": True, "unlinked": True}
    assert devices(stack, PHONES["sales"]) == []  # logged out at WhatsApp, not just forgotten here
    assert not data.exists()
    res = stack.get("/accounts/sales")
    assert res.status == 404 and error_code(res) == "account_not_found"
    assert stack.get("/accounts/sales/status", headers={"X-API-Key": key}).status == 401
    assert [a["name"] for a in stack.get("/accounts").json()["accounts"]] == ["default", "support"]
    assert state(stack, "support")["state"] == "connected" and len(devices(stack, PHONES["support"])) == 1
    assert not data.exists()  # still: nothing reopened it meanwhile (the gateway's event reader once did)

    # The same name again starts clean: no link, no messages, no events, no keys.
    fresh = create(stack, "sales")
    assert fresh["state"] in ("stopped", "qr", None) and not fresh["connected"] and fresh["phone_number"] is None
    assert state(stack, "sales")["state"] in ("stopped", "qr")
    assert pages(stack, "/accounts/sales/messages", "messages") == []
    assert pages(stack, "/accounts/sales/messages?direction=in", "messages") == []
    assert account_events(stack, "sales") == []
    assert stack.get("/accounts/sales/keys").json()["keys"] == []
    for mid in (out.json()["id"], inbound["id"]):
        res = stack.get(f"/accounts/sales/messages/{mid}")
        assert res.status == 404 and error_code(res) == "message_not_found", res.raw
    # Nothing from the old account reached the default account either.
    assert pages(stack, "/messages?direction=in", "messages") == []


# --- 4. a whole restart -----------------------------------------------------------------------------

def test_accounts_come_back_connected_without_a_qr_after_a_whole_restart(make_stack):
    stack = make_stack(FAST, sandbox=True)
    for name in ("sales", "support"):
        create(stack, name)
        link(stack, name, PHONES[name])
    marks = {n: max([e["seq"] for e in account_events(stack, n)], default=0) for n in ("sales", "support")}
    assert stack.stop() == 0
    stack.start()
    seen: dict[str, set] = defaultdict(set)

    def all_connected():
        accounts = {a["name"]: a for a in stack.get("/accounts").json()["accounts"]}
        for name in ("sales", "support"):
            seen[name].add(accounts[name]["state"])
        return all(accounts[n]["state"] == "connected" for n in ("sales", "support")) and accounts
    accounts = wait_for(all_connected, 60, "sales and support connected after the restart")
    for name in ("sales", "support"):
        assert accounts[name]["phone_number"] == PHONES[name]
        assert "qr" not in seen[name], seen
        after = [e for e in account_events(stack, name) if e["seq"] > marks[name]]
        assert not [e for e in after if e["type"] == "session.status" and e["data"].get("state") == "qr"], after
        assert len(devices(stack, PHONES[name])) == 1  # the same device, not a new link
    res = stack.post("/accounts/support/send", {"phone_number": CONTACTS["support"][0], "message": "after restart"})
    assert res.status == 200, res.raw
