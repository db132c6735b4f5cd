"""The Python client (clients/python, ``wa_gateway_client``), its CLI and the self-test, against one real
sandbox stack (supervisord, gateway, worker with the real Baileys, emulator).

The module's tests run in order on one stack: the CLI links the account (``connect`` prints the QR, the
emulator's phone scans it), the clients work on the linked account, the self-test checks the deployment,
and ``logout`` comes last.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import itertools
import json
import os
import subprocess
import time
from datetime import UTC, datetime

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

import wa_gateway_client as wgc
from service.http.openapi import document
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import BIN, REPO, Stack, free_port, wait_for
from tests.helpers.webhook_receiver import Receiver
from wa_gateway_client import errors
from wa_gateway_client.client import retry_after_seconds
from wa_gateway_client.webhooks import InvalidSignature, WebhookVerifier, sign

pytestmark = pytest.mark.system

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def verified(receiver: Receiver, secret: str = SECRET) -> list[wgc.models.Event]:
    """Every delivery the receiver got, each verified with the client's verifier (raises on a bad one)."""
    return [WebhookVerifier(secret).verify(r.body, r.headers) for r in receiver.snapshot()]


@pytest.fixture(scope="module")
def stack():
    with Stack({"WA_WEBHOOK_SECRET": SECRET}, sandbox=True) as stack:
        yield stack


@pytest.fixture
def linked(stack):
    """The stack with its default account linked (the CLI's connect test links it first; run alone, a test
    pairs it here)."""
    if stack.status()["state"] != "connected":
        pair(stack)
    return stack


def cli(stack: Stack, *args: str, timeout: float = 90, via_gateway: bool = True,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """``wa-gateway <command>`` as an operator runs it on the host (URL, key and secret found from the
    stack's settings), or ``wa-gateway-client`` with explicit flags."""
    program = "wa-gateway" if via_gateway else "wa-gateway-client"
    return subprocess.run([str(BIN / program), *args], env={**stack.env, **(env or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def error_codes(doc: dict) -> set[str]:
    """Every error code the document lists (each response's ``x-error-codes``)."""
    return {code for item in doc["paths"].values() for op in item.values()
            for response in op.get("responses", {}).values() for code in response.get("x-error-codes", [])}


def test_every_documented_error_code_has_its_own_exception_class():
    codes = error_codes(document())
    assert len(codes) > 40
    missing = sorted(c for c in codes if c not in errors.BY_CODE)
    assert not missing, f"no exception class for {missing} in clients/python/.../errors.py"
    assert issubclass(errors.BY_CODE["not_linked"], errors.ConflictError)
    assert issubclass(errors.BY_CODE["outbox_full"], errors.ServiceUnavailableError)


def test_cli_connect_prints_the_qr_in_the_terminal_and_returns_once_linked(stack):
    proc = subprocess.Popen([str(BIN / "wa-gateway"), "connect", "--timeout", "60"], env=stack.env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        for line in proc.stdout:  # the QR first, then the hint
            lines.append(line)
            if line.startswith("Scan with WhatsApp"):
                break
        picture = "".join(lines[:-1])
        assert "█" in picture or "▀" in picture or "▄" in picture, "".join(lines)
        qr = stack.status()["qr"]
        assert stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": qr}).status == 200
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, (rest, err)
    assert f"connected as {PHONE}" in rest
    assert qr not in "".join(lines) + rest + err  # the payload is drawn, never printed


async def test_async_client_sends_with_one_idempotency_key_per_call_and_raises_typed_errors(linked):
    stack = linked
    async with wgc.AsyncClient(stack.base, api_key=stack.api_key) as wa:
        status = await wa.status()
        assert status.connected and status.phone_number == PHONE
        sent = await wa.send(CONTACT, "hello from the async client")
        assert sent.status in ("sent", "delivered") and not sent.replayed
        again = await wa.send(CONTACT, "same", idempotency_key="fixed-key-1")
        replay = await wa.send(CONTACT, "same", idempotency_key="fixed-key-1")
        assert replay.id == again.id and replay.replayed
        with pytest.raises(errors.IdempotencyKeyReused):
            await wa.send(CONTACT, "different text", idempotency_key="fixed-key-1")
        with pytest.raises(errors.InvalidPhoneNumber) as bad:
            await wa.send("12", "x")
        assert bad.value.status == 400 and "phone" in bad.value.message.lower()
        assert isinstance(bad.value, errors.BadRequestError) and isinstance(bad.value, errors.GatewayError)
        with pytest.raises(errors.MessageNotFound):
            await wa.message("msg_nonexistent")
        with pytest.raises(errors.AccountNotFound):
            await wa.account("nobody").status()
        fetched = await wa.message(sent.id)
        assert isinstance(fetched, wgc.models.Message) and fetched.message == "hello from the async client"
        ids = [m.id async for m in wa.iter_messages(limit=1)]
        assert ids[:3] == [again.id, sent.id] or sent.id in ids, ids  # newest first, page after page
        assert len(ids) == len(set(ids)) >= 2
    async with wgc.AsyncClient(stack.base, api_key="wrong") as wa:
        with pytest.raises(errors.Unauthorized):
            await wa.status()


async def test_the_stream_resumes_by_itself_across_a_gateway_restart_missing_nothing(linked):
    stack = linked
    async with wgc.AsyncClient(stack.base, api_key=stack.api_key, retry=wgc.Retry(base=0.2, cap=1)) as wa:
        start = (await wa.events(0, limit=500)).next_after
        got: list[wgc.models.Event] = []
        texts = [f"stream {n}" for n in range(4)]

        async def read():
            async for event in wa.stream(after=start, types=["message.received"]):
                got.append(event)
                if len(got) == len(texts):
                    return

        reader = asyncio.create_task(read())
        for n, text in enumerate(texts):
            if n == 2:  # the gateway goes away under the open stream and comes back
                restarted = await asyncio.to_thread(stack.ctl, "restart", "gateway")
                assert "started" in restarted.stdout, restarted.stdout + restarted.stderr
            res = await asyncio.to_thread(stack.emu, "POST", f"/contacts/{CONTACT}/messages",
                                          {"to": PHONE, "text": text})
            assert res.status == 200, res.raw
            await asyncio.sleep(0.3)
        await asyncio.wait_for(reader, 60)
        assert [e.message.text for e in got] == texts  # each once, in order, none lost at the restart
        assert all(e.message.phone_number == CONTACT for e in got)
        assert [e.seq for e in got] == sorted({e.seq for e in got})


def test_sync_client_covers_accounts_keys_and_webhooks(linked):
    stack = linked
    receiver = Receiver(SECRET).start()
    try:
        with wgc.Client(stack.base, api_key=stack.api_key) as wa:
            assert wa.live() and wa.health().status == "ok"
            assert wa.ready().ready
            created = wa.create_account("clientacct")
            assert created.name == "clientacct"
            assert "clientacct" in [a.name for a in wa.accounts()]
            with pytest.raises(errors.AccountExists):
                wa.create_account("clientacct")
            sales = wa.account("clientacct")
            assert sales.status().state in ("stopped", "connecting", "qr", "logged_out")
            with pytest.raises(errors.NotLinked):
                sales.send(CONTACT, "not linked yet")
            key = sales.create_key("ci")
            assert key.account == "clientacct" and key.key
            with wgc.Client(stack.base, api_key=key.key) as scoped:
                assert scoped.account("clientacct").status().state
                with pytest.raises(errors.Forbidden):
                    scoped.status()  # default is another account
            assert [k.id for k in sales.keys()] == [key.id]
            assert sales.revoke_key(key.id).revoked_at
            with wgc.Client(stack.base, api_key=key.key) as revoked, pytest.raises(errors.Unauthorized):
                revoked.account("clientacct").status()

            hook = wa.add_webhook(receiver.url, events=["message.received"])  # loopback: the sandbox allows it
            assert [h.id for h in wa.webhooks()] == [hook.id] and hook.secret.startswith("whsec_")
            assert wa.webhooks()[0].secret is None  # shown once
            rotated = wa.rotate_webhook_secret(hook.id, overlap=600)
            assert rotated.id == hook.id and rotated.secret != hook.secret and rotated.previous_valid_until
            receiver.trust(rotated.secret)
            res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "to the webhook"})
            assert res.status == 200, res.raw
            event = wait_for(lambda: next((e for e in verified(receiver, rotated.secret)
                                           if e.type == "message.received"), None), 20, "a verified delivery")
            assert verified(receiver, hook.secret)  # the old secret verifies too during the overlap
            with pytest.raises(InvalidSignature):
                verified(receiver, SECRET)  # the global secret signs only WA_WEBHOOK_URL's
            assert event.message.text == "to the webhook"
            page = wait_for(lambda: (p := wa.deliveries(status="delivered")).items and p, 10, "a delivered delivery")
            assert page.items[0].event_type == "message.received"
            assert wa.delivery(page.items[0].id).event["data"]["text"] == "to the webhook"
            # the blocking iterators: pages, and the stream (left by a break, which closes it)
            assert any(m.text == "to the webhook" for m in itertools.islice(wa.iter_messages(direction="in"), 50))
            first = next(e for e in wa.stream(after=0) if e.type == "message.received")
            assert first.seq and first.message.phone_number
            assert wa.remove_webhook(hook.id).deleted
            assert wa.delete_account("clientacct").deleted
            with pytest.raises(errors.AccountNotFound):
                wa.get_account("clientacct")
            assert all(r.event is not None for r in receiver.snapshot())  # the reference package agrees
    finally:
        receiver.stop()


def test_webhook_verifier_agrees_with_the_standard_webhooks_reference():
    body = json.dumps({"id": "evt_1", "type": "message.received", "data": {"text": "hi"}})
    now = int(time.time())
    reference = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(now, tz=UTC), body)
    assert sign(SECRET, "msg_1", now, body) == reference
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": reference}
    assert WebhookVerifier(SECRET).verify(body, headers).type == "message.received"
    assert WebhookVerifier([OTHER_SECRET, SECRET]).verify(body.encode(), headers).id == "evt_1"  # rotation
    # ...and what it accepts the reference accepts: rotated header, our signature
    Webhook(SECRET).verify(body, {**headers, "webhook-signature": f"v1,AAAA {sign(SECRET, 'msg_1', now, body)}"})
    old = now - 3600  # genuinely signed, but an hour old: a replay
    replayed = {"webhook-id": "msg_1", "webhook-timestamp": str(old),
                "webhook-signature": sign(SECRET, "msg_1", old, body)}
    assert WebhookVerifier(SECRET).verify(body, replayed, now=old + 60).id == "evt_1"
    for bad in ({**headers, "webhook-id": "msg_2"}, {**headers, "webhook-signature": "v1,AAAA"}, replayed,
                {"webhook-id": "msg_1"}):
        with pytest.raises(InvalidSignature):
            WebhookVerifier(SECRET).verify(body, bad)
    with pytest.raises(InvalidSignature):
        WebhookVerifier(OTHER_SECRET).verify(body, headers)
    with pytest.raises(InvalidSignature):
        WebhookVerifier(SECRET).verify(body.replace("hi", "ho"), headers)


async def test_retries_honour_retry_after_and_never_repeat_a_send_under_another_key():
    """A real HTTP server answering 503/429 first: the client waits what Retry-After says, then repeats the
    very same request (the same Idempotency-Key)."""
    seen: list[tuple[float, str | None]] = []

    async def send(request: web.Request) -> web.Response:
        seen.append((time.monotonic(), request.headers.get("Idempotency-Key")))
        if len(seen) == 1:
            return web.json_response({"error": {"code": "outbox_full", "message": "full"}}, status=503,
                                     headers={"Retry-After": "1"})
        if len(seen) == 2:
            return web.json_response({"error": {"code": "rate_limited", "message": "slow"}}, status=429,
                                     headers={"Retry-After": "0"})
        return web.json_response({"id": "msg_1", "phone_number": CONTACT, "status": "queued",
                                  "whatsapp_id": "W1", "created_at": "2026-01-01T00:00:00Z"}, status=202)

    app = web.Application()
    app.router.add_post("/send", send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with wgc.AsyncClient(f"http://127.0.0.1:{port}", api_key="k") as wa:
            message = await wa.send(CONTACT, "x")
        assert message.id == "msg_1" and len(seen) == 3
        assert seen[1][0] - seen[0][0] >= 0.95  # Retry-After: 1
        assert len({key for _, key in seen}) == 1 and seen[0][1]
        seen.clear()
        async with wgc.AsyncClient(f"http://127.0.0.1:{port}", api_key="k", retry=wgc.Retry(attempts=1)) as wa:
            with pytest.raises(errors.OutboxFull) as full:
                await wa.send(CONTACT, "x")
        assert full.value.retry_after == 1.0 and len(seen) == 1
    finally:
        await runner.cleanup()
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10.0
    assert retry_after_seconds("soon") is None


def test_cli_commands_human_json_and_exit_codes(linked):
    stack = linked
    sent = cli(stack, "send", CONTACT, "from the cli", "--wait-delivered", "--json")
    assert sent.returncode == 0, sent.stderr
    message = json.loads(sent.stdout)
    assert message["status"] in ("delivered", "read") and message["phone_number"] == CONTACT

    listed = cli(stack, "messages", "--limit", "3")
    assert listed.returncode == 0 and message["id"] in listed.stdout and "STATUS" in listed.stdout
    for text in ("in one", "in two"):
        assert stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": text}).status == 200
    wait_for(lambda: len(stack.get("/messages?direction=in&limit=2").json()["messages"]) == 2, 20, "two inbound")
    inbound = cli(stack, "messages", "--direction", "in", "--json", "--limit", "2")
    assert [m["direction"] for m in json.loads(inbound.stdout)] == ["in", "in"]
    status = cli(stack, "status")
    assert status.returncode == 0 and "connected" in status.stdout and PHONE in status.stdout
    assert json.loads(cli(stack, "health", "--json").stdout)["status"] == "ok"
    accounts = cli(stack, "accounts")
    assert accounts.returncode == 0 and "default" in accounts.stdout

    # explicit flags, no help from the gateway's settings
    flags = ["--url", stack.base, "--api-key", stack.api_key]
    shown = cli(stack, "api-key", *flags, via_gateway=False, env={"WA_API_KEY": ""})
    assert shown.stdout.strip() == stack.api_key
    created = cli(stack, "api-key", "create", "--account", "default", "--label", "cli", "--json", *flags,
                  via_gateway=False)
    key = json.loads(created.stdout)
    assert created.returncode == 0 and key["account"] == "default"
    assert cli(stack, "api-key", "revoke", key["id"], *flags, via_gateway=False).returncode == 0

    codes = {
        "unreachable": cli(stack, "status", "--url", f"http://127.0.0.1:{free_port()}", via_gateway=False),
        "wrong key": cli(stack, "status", "--url", stack.base, "--api-key", "nope", via_gateway=False,
                         env={"WA_API_KEY": ""}),
        "not found": cli(stack, "status", "--account", "ghost"),
        "bad number": cli(stack, "send", "12", "x", "--json"),
    }
    assert {k: v.returncode for k, v in codes.items()} == {"unreachable": 3, "wrong key": 4, "not found": 5,
                                                           "bad number": 5}
    assert json.loads(codes["bad number"].stdout)["error"]["code"] == "invalid_phone_number"
    assert "account_not_found" in codes["not found"].stderr
    usage = cli(stack, "send")
    assert usage.returncode == 2


def test_selftest_passes_on_a_healthy_sandbox_and_names_what_fails(linked):
    stack = linked
    emulator = {"WA_EMULATOR_URL": stack.emulator}
    good = cli(stack, "selftest", "--to", CONTACT, env=emulator)
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    for check in ("reachable", "key accepted", "programs running", "store writable", "account linked",
                  "webhook signature round-trip", "send to --to delivered", "sandbox round trip"):
        assert any(line.startswith("PASS") and check in line for line in lines), good.stdout
    assert SECRET not in good.stdout + good.stderr and stack.api_key not in good.stdout

    wrong_secret = cli(stack, "selftest", "--webhook-secret", OTHER_SECRET)
    assert wrong_secret.returncode == 1
    assert any(line.startswith("FAIL") and "signature" in line for line in wrong_secret.stdout.splitlines())

    down = cli(stack, "selftest", "--json", "--url", f"http://127.0.0.1:{free_port()}")
    report = json.loads(down.stdout)
    assert down.returncode == 1 and not report["ok"]
    assert [(c["name"], c["outcome"]) for c in report["checks"]] == [("reachable", "FAIL")]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "clients" / "python" / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_aiohttp_backend_example_serves_a_frontend(linked, aiohttp_client):
    stack = linked
    example = load_example("aiohttp_backend")
    backend = await aiohttp_client(example.create_app(stack.base, stack.api_key, SECRET))
    async with wgc.AsyncClient(stack.base, api_key=stack.api_key) as wa:
        hook = await wa.add_webhook(str(backend.make_url("/webhooks/whatsapp")), events=["message.received"])
        backend.server.app[example.VERIFIER].add(hook.secret)  # its own secret, shown once
        try:
            assert (await (await backend.get("/api/whatsapp/status")).json())["state"] == "connected"
            res = await backend.post("/api/whatsapp/send", json={"phone_number": CONTACT, "message": "via backend"},
                                     headers={"Idempotency-Key": "form-42"})
            assert res.status == 202, await res.text()
            again = await backend.post("/api/whatsapp/send", json={"phone_number": CONTACT, "message": "via backend"},
                                       headers={"Idempotency-Key": "form-42"})
            assert (await again.json())["id"] == (await res.json())["id"]  # a double click sends once
            bad = await backend.post("/api/whatsapp/send", json={"phone_number": "12", "message": "x"})
            assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_phone_number"
            await asyncio.to_thread(wait_for, lambda: [
                m for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json() if m["text"] == "via backend"],
                20, "the contact to get it")
            sent = await asyncio.to_thread(stack.emu, "POST", f"/contacts/{CONTACT}/messages",
                                           {"to": PHONE, "text": "to the backend"})
            assert sent.status == 200
            for _ in range(100):
                texts = [m["text"] for m in await (await backend.get("/api/whatsapp/inbox")).json()]
                if "to the backend" in texts:
                    break
                await asyncio.sleep(0.2)
            assert texts.count("to the backend") == 1
            forged = await backend.post("/webhooks/whatsapp", data=b"{}", headers={
                "webhook-id": "x", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"})
            assert forged.status == 401
        finally:
            await wa.remove_webhook(hook.id)


def test_cli_logout_last(linked):
    stack = linked
    out = cli(stack, "logout")
    assert out.returncode == 0 and "logged out" in out.stdout
    assert stack.status()["state"] != "connected"
    after = cli(stack, "send", CONTACT, "nobody home")
    assert after.returncode == 5 and "not_linked" in after.stderr
