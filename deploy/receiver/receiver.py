"""An example webhook receiver for wa-gateway: verifies each delivery's Standard Webhooks signature with
the ``standardwebhooks`` package, skips repeats, and logs the event's type and id (never the body).

    WA_WEBHOOK_SECRET=whsec_... python receiver.py      # listens on RECEIVER_PORT (8080)

The gateway POSTs every event to WA_WEBHOOK_URL (here http://receiver:8080/webhooks) with the headers
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 of id.timestamp.body under
the shared secret). Answers: 204 for a verified delivery (also for a repeat: delivery is at least once,
a retry keeps its webhook-id), 401 when the signature does not match or the timestamp is more than five
minutes off (the gateway dead-letters 4xx answers, so a misconfigured secret shows up in
``GET /webhooks/deliveries`` as ``failed``), 400 for a verified body that is not a JSON event, 413 for
a body over 1 MiB. Replace ``handle()`` with your own processing; answer 2xx only once it is stored.

Standard library plus ``standardwebhooks``; one JSON object per log line on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1024 * 1024
SEEN_MAX = 10_000  # webhook-ids remembered for deduplication (a real backend keeps them in its database)


class Rejected(Exception):
    """Not a genuine, recent delivery from our gateway: answer 401 and drop it."""


def log(level: str, event: str, **fields) -> None:
    record = {"timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "level": level, "event": event, "program": "receiver", **fields}
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def verifiers(raw: str | None) -> list[Webhook]:
    """One verifier per secret; WA_WEBHOOK_SECRET may list several, comma-separated, while rotating."""
    secrets = [s.strip() for s in (raw or "").split(",") if s.strip()]
    if not secrets:
        raise SystemExit("receiver: WA_WEBHOOK_SECRET is not set (the gateway's whsec_... secret)")
    return [Webhook(s) for s in secrets]


def verify(hooks: list[Webhook], body: bytes, headers: Mapping[str, str]) -> dict:
    """The event of a genuine delivery; :class:`Rejected` when no secret's signature matches."""
    reason = "no secret configured"
    for hook in hooks:
        try:
            hook.verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as exc:
            reason = str(exc)
            continue
        except ValueError:  # a malformed header or a body that is not UTF-8
            reason = "malformed webhook headers or body"
            continue
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError("the body is not a JSON event")
        return event
    raise Rejected(reason)


class Seen:
    """The last SEEN_MAX webhook-ids, to skip retries of a delivery that was already handled."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, webhook_id: str) -> bool:
        """True the first time an id is seen."""
        with self._lock:
            if webhook_id in self._ids:
                return False
            self._ids[webhook_id] = None
            if len(self._ids) > SEEN_MAX:
                self._ids.popitem(last=False)
            return True


def handle(event: dict) -> None:
    """Your processing goes here (store it, enqueue a job). The example only logs what arrived."""


class Handler(BaseHTTPRequestHandler):
    server_version = "wa-gateway-example-receiver"
    hooks: list[Webhook] = []
    seen = Seen()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(200 if self.path == "/health" else 404)

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0] != "/webhooks":
            return self._answer(404)
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._answer(411)
        if not 0 <= length <= MAX_BODY:
            return self._answer(413)
        body = self.rfile.read(length)
        webhook_id = self.headers.get("webhook-id", "")
        try:
            event = verify(self.hooks, body, self.headers)
        except Rejected as exc:
            log("warning", "webhook.rejected", reason=str(exc), client=self.client_address[0])
            return self._answer(401)
        except ValueError as exc:
            log("warning", "webhook.invalid", reason=str(exc), webhook_id=webhook_id)
            return self._answer(400)
        if not self.seen.add(webhook_id):
            log("info", "webhook.duplicate", webhook_id=webhook_id, type=event["type"])
            return self._answer(204)
        handle(event)
        log("info", "webhook.received", webhook_id=webhook_id, type=event["type"], id=event.get("id"),
            account=event.get("account"))
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # one record per delivery above, not http.server's access lines on stderr


def make_server(host: str, port: int, secrets: str | None) -> ThreadingHTTPServer:
    handler = type("ConfiguredHandler", (Handler,), {"hooks": verifiers(secrets), "seen": Seen()})
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    port = int(os.environ.get("RECEIVER_PORT", "8080"))
    server = make_server(os.environ.get("RECEIVER_HOST", "0.0.0.0"), port, os.environ.get("WA_WEBHOOK_SECRET"))
    # PID 1 in a container ignores SIGTERM unless it handles it: stop at once instead of being killed later.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log("info", "receiver.listening", port=port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
