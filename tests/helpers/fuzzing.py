"""What both fuzz tests (the gateway's contract, tests/system/test_fuzz.py, and the worker's,
tests/system/test_worker_fuzz.py) share: picking operations from a loaded schema and running a bounded,
derandomized number of generated cases of one mode against one, through schemathesis' Python API with
hypothesis (its pytest plugin does not work with pytest 9.2)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.helpers.sandbox import CONTACT, PHONE, pair


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
