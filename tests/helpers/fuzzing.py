"""What both fuzz tests (the gateway's contract, tests/system/test_fuzz.py, and the worker's,
tests/system/test_worker_fuzz.py) share: picking operations from a loaded schema and running a bounded,
derandomized number of generated cases of one mode against one, through schemathesis' Python API with
hypothesis (its pytest plugin does not work with pytest 9.2)."""

from __future__ import annotations

import json
import math
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.helpers.sandbox import CONTACT, PHONE, pair


# schemathesis speaks HTTP over TCP; the worker listens on a unix socket (tests/system/test_worker_fuzz.py)
class UnixProxy:
    """Bytes from 127.0.0.1:<port> to a unix socket and back, one thread pair per connection; a
    half-close is passed on, so HTTP framing is the worker's alone."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.path)
        except OSError:
            client.close()
            upstream.close()
            return
        open_ends = {client: upstream, upstream: client}
        try:
            while open_ends and not self.stopping.is_set():
                readable, _, _ = select.select(list(open_ends), [], [], 0.2)
                for src in readable:
                    try:
                        data = src.recv(65536)
                    except OSError:
                        data = b""
                    dst = open_ends[src]
                    if data:
                        dst.sendall(data)
                        continue
                    del open_ends[src]  # EOF: pass the half-close on
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(2)


def operations(schema, *, only: str | None = None, skip: str | None = None) -> Iterator[Any]:
    """The schema's operations whose path matches ``only`` and not ``skip`` (regular expressions)."""
    for result in schema.get_all_operations():
        op = result.ok()
        if only and not re.search(only, op.path):
            continue
        if skip and re.search(skip, op.path):
            continue
        yield op


def fuzz(op, mode: GenerationMode, examples: int, call: Callable[[Any], None]) -> BaseException | None:
    """Run ``examples`` generated cases of ``mode`` against ``op``, each through ``call(case)``; the failure
    (shrunk by hypothesis) or None. An operation with nothing to violate passes its negative mode."""
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case):
        call(case)
    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE:
            return None  # no parameters and no body: nothing to violate
        raise
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup: reported with the operation
        return exc
    return None


def seed(stack, text: str) -> None:
    """Pair the sandbox stack and put one message each way behind it, so that listings, replays and the
    worker's bookkeeping have something real to work on."""
    pair(stack)
    sent = stack.post("/send", {"phone_number": CONTACT, "message": text})
    assert sent.status in (200, 202), sent.raw
    inbound = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "seed back"})
    assert inbound.status == 200, inbound.raw
    stack.wait_event(lambda e: e["type"] == "message.received", 15, "the inbound seed")


# The worker's POST /media/download (tests/system/test_worker_fuzz.py): a descriptor's media host becomes a closed
# loopback port, and the route's documented upstream failure is the one 5xx accepted there.
MEDIA_HOST = "https://127.0.0.1:9/v/t62.7118-24/fuzz.enc"  # discard port: nothing listens, refused at once


def steer_media(case) -> None:
    """A download's descriptor pointed at loopback (see the module's docstring)."""
    descriptor = case.body.get("descriptor") if isinstance(case.body, dict) else None
    if case.operation.path.endswith("/media/download") and isinstance(descriptor, dict):
        descriptor["url"] = MEDIA_HOST


@schemathesis.check
def no_server_error_but_an_upstream_one(ctx, response, case):
    """not_a_server_error, except the media download's documented 502 media_download_failed (the media host
    could not be reached: a closed port here)."""
    if case.operation.path.endswith("/media/download") and response.status_code == 502:
        code = json.loads(response.content)["error"]["code"]
        if code != "media_download_failed":
            raise AssertionError(f"502 with code {code!r}")
        return None
    return not_a_server_error(ctx, response, case)


def tame(value, most: float):
    """A generated wait longer than ``most`` ms (a number, a numeric string, a one-element list: what the
    worker's Number() reads as one), cut to ``most``; anything else as it is."""
    if isinstance(value, list) and len(value) == 1:
        return [tame(value[0], most)]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return value
    if math.isnan(number) or number <= most:
        return value
    return str(most) if isinstance(value, str) else most


PARTICIPANT_LISTS = ("participants", "add", "remove", "promote", "demote")  # a group route's lists of numbers
FEW_PARTICIPANTS = 4


def steer_group_lists(case) -> None:
    """A group route's valid list of numbers cut to a few: the emulator makes up an account (its keys) for every
    number it has not seen, and a list of hundreds per case took its CPU from the linked session (a keepalive
    missed, the link dropped). A list over the bound (1,024) stays as it is, to be refused."""
    if "/groups" not in case.operation.path or not isinstance(case.body, dict):
        return
    for field in PARTICIPANT_LISTS:
        listed = case.body.get(field)
        if isinstance(listed, list) and FEW_PARTICIPANTS < len(listed) <= 1024:
            case.body[field] = listed[:FEW_PARTICIPANTS]


# What was going on when a session changed state: the generated cases sent around it and the worker's and the
# emulator's log lines of those seconds (their own redacted records; a case shows its body's field names only).
STORY_PROGRAMS = ("worker", "emulator")


class CaseLog:
    """Every generated case as sent: (wall time, operation, body field names, answer status or None)."""

    def __init__(self) -> None:
        self.cases: list[tuple[float, str, list[str], int | None]] = []

    def sent(self, label: str, body: Any) -> int:
        self.cases.append((time.time(), label, sorted(body) if isinstance(body, dict) else [], None))
        return len(self.cases) - 1

    def answered(self, index: int, status: int) -> None:
        at, label, fields, _ = self.cases[index]
        self.cases[index] = (at, label, fields, status)

    def between(self, start: float, end: float) -> list[str]:
        return [f"{datetime.fromtimestamp(at, UTC):%H:%M:%S.%f} {label} {fields} -> {status}"
                for at, label, fields, status in self.cases if start <= at <= end]


def event_time(event: dict) -> float | None:
    try:
        return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return None


def link_story(events: list[dict], change: dict, cases: CaseLog, before: float = 6, after: float = 2) -> str:
    """The cases and the worker's and emulator's log records from ``before`` s ahead of ``change`` (a
    session.state record) to ``after`` s past it, in time order."""
    at = event_time(change)
    if at is None:
        return "(the change has no timestamp)"
    told = ("timestamp", "program", "level", "event", "msg")
    lines = [f"{e['timestamp'][11:23]} {e.get('program')} {e.get('level')} {e.get('event')} "
             + json.dumps({k: v for k, v in e.items() if k not in told})[:300]
             for e in events if e.get("program") in STORY_PROGRAMS
             and (t := event_time(e)) is not None and at - before <= t <= at + after]
    return "\n".join(["cases sent:", *cases.between(at - before, at + after), "worker and emulator:", *lines[-200:]])
