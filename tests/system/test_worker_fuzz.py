"""Fuzzing the worker's internal API against its own document (issue 11, item 2): no input may crash it.

The worker's API (node_worker/src/server.js) is the gateway's only way in, documented in
node_worker/api/openapi.json: the contract service/runtime/worker_client.py relies on. One sandbox stack
(supervisord, gateway, the worker with the real Baileys, the emulator) is paired, so the routes do real
work; schemathesis sends a bounded, derandomized number of generated requests (schema-valid, then
schema-violating) to every operation, through a loopback TCP -> unix socket byte proxy (schemathesis
speaks HTTP over TCP). Every answer: no 5xx (a 5xx is a crash path), a documented status, a body that
matches its schema (an error code outside the documented enum fails) and the documented content type.
Afterwards the worker is the same process (supervisord's pid, never restarted), still answers, and logged
no ``api.failed``; the account is still linked, and its session never changed state (no dropped link; a reconnect is
only a warning while ``TOLERATE_RECONNECT`` holds, see there).

What is not fuzzed blindly, and why:
- ``POST /disconnect`` and ``/accounts/{account}/disconnect`` log the account out: they run in their own
  test after everything else; then what a logged-out account answers must hold to the document too.
- ``POST /accounts/{account}/detach`` never gets ``default`` (that would log it out mid-run): a valid
  generated name becomes either an unknown one (404) or ``fuzz-spare``, an account made for it (real work).
- Account names: half of the valid generated names become ``default`` (by their length), so that the body of
  a per-account route is read by the route and not refused as an unknown account first.
- ``wait_ms`` (GET /events, POST /connect) above 200 becomes 200: the document allows a 60 s long poll.
- ``POST /media/download``: a descriptor's media host becomes a closed loopback port (``MEDIA_HOST``): real work
  up to the connection, no lookup, and its documented 502 ``media_download_failed`` the one 5xx accepted.
- The group routes: a valid participant list is cut to four numbers; they run in their own test after the rest.
What the generator never sends (not UTF-8, a body cut short, a target that is no path, a percent sign that
decodes to nothing) is sent raw by ``test_hostile_bytes_get_a_4xx``. Built on schemathesis' Python API, not
its pytest plugin, as tests/system/test_fuzz.py explains.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.fuzzing import (
    CaseLog,
    UnixProxy,
    fuzz,
    link_story,
    no_server_error_but_an_upstream_one,
    operations,
    seed,
    steer_group_lists,
    steer_media,
    tame,
)
from tests.helpers.sandbox import CONTACT
from tests.helpers.stack import REPO, Stack, wait_for

pytestmark = pytest.mark.system

DOCUMENT = REPO / "node_worker" / "api" / "openapi.json"
WORKER = "worker:worker-0"
MAX_EXAMPLES = 15  # per operation and per mode; derandomized
SPARE = "fuzz-spare"  # an account the gateway creates for the detach fuzz to remove
ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
MAX_WAIT = 200  # ms: a generated long poll is cut to this
DISCONNECT = r"/disconnect$"
GROUPS = r"/groups"  # fuzzed after the rest (below): under the suite's load their run once saw the link drop (428)
CHECKS = [no_server_error_but_an_upstream_one, status_code_conformance, content_type_conformance,
          response_schema_conformance]
SENT: dict[str, int] = {}  # generated cases that went through, by operation
STATUSES: dict[str, Counter] = {}  # their answers' status codes, by operation
CASES = CaseLog()  # every case sent, when, and its answer: told around a session's change of state
# In whole-suite runs the default session reconnected once per run (428, Connection Terminated), never with the
# fuzz alone; not explained yet: a reconnect warns with its story (the emulator now logs why it ends a connection,
# connection.closing) instead of failing. Set to False once its cause is fixed: any change of state then fails.
TOLERATE_RECONNECT = True


# --- the stack -------------------------------------------------------------------------------------

def worker_log(stack: Stack, *events: str) -> list[dict]:
    return [e for e in stack.log_events() if e.get("program") == "worker" and e.get("event") in events]


def assert_default_never_changed(stack: Stack, states_before: int) -> None:
    """The default session never changed state since the first ``states_before`` records (no dropped link); a change
    is told with the cases and the worker's and emulator's records around it. While TOLERATE_RECONNECT holds, a
    reconnect (connecting, then connected again) is a warning with that story instead of a failure."""
    changes = [e for e in worker_log(stack, "session.state")[states_before:] if e.get("account") == "default"]
    if not changes:
        return
    story = f"the default session changed state: {changes}\n{link_story(stack.log_events(), changes[0], CASES)}"
    assert TOLERATE_RECONNECT and all(e["state"] in ("connecting", "connected") for e in changes), story
    wait_for(lambda: stack.status()["state"] == "connected", 30, "the account connected again")
    warnings.warn(story, stacklevel=2)


@pytest.fixture(scope="module")
def worker():
    with Stack(sandbox=True) as stack:
        seed(stack, "worker fuzz seed")  # the worker has sent ids, statuses and an inbound message behind it
        created = stack.post("/accounts", {"name": SPARE})
        assert created.status == 201, created.raw
        socket_path = stack.run_dir / "worker-0.sock"
        info = stack.process_info(WORKER)
        proxy = UnixProxy(socket_path)
        try:
            yield {"stack": stack, "socket": socket_path, "proxy": proxy, "pid": info["pid"], "start": info["start"]}
        finally:
            proxy.close()


@pytest.fixture(scope="module")
def api_schema(worker):
    config = SchemathesisConfig.from_dict({"base-url": f"http://127.0.0.1:{worker['proxy'].port}",
                                           "request-timeout": 10})
    return schemathesis.openapi.from_path(DOCUMENT, config=config)


def assert_same_worker(worker: dict) -> None:
    """The worker never exited: supervisord shows the same pid, started at the same time, RUNNING."""
    info = worker["stack"].process_info(WORKER)
    assert (info["pid"], info["start"], info["statename"]) == (worker["pid"], worker["start"], "RUNNING"), info
    status = raw_request(worker["socket"], b"GET /status HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")
    assert status[0] == 200, status
    failed = worker_log(worker["stack"], "api.failed", "worker.crashed")
    assert not failed, failed


# --- generated cases -------------------------------------------------------------------------------

def steer(case) -> None:
    """The account a generated case addresses, and its waits (see the module's docstring)."""
    path = case.operation.path
    name = (case.path_parameters or {}).get("account")
    if isinstance(name, str) and ACCOUNT_NAME.match(name):
        if path.endswith("/detach"):
            case.path_parameters["account"] = SPARE if len(name) % 2 == 0 else "gone" if name == "default" else name
        elif len(name) % 2 == 0:
            case.path_parameters["account"] = "default"
    if isinstance(case.query, dict) and "wait_ms" in case.query:
        case.query["wait_ms"] = tame(case.query["wait_ms"], MAX_WAIT)
    if path.endswith("/connect") and isinstance(case.body, dict) and "wait_ms" in case.body:
        case.body["wait_ms"] = tame(case.body["wait_ms"], MAX_WAIT)
    steer_group_lists(case)


def send(case) -> None:
    """A generated case, steered, sent and checked; counted by operation and status."""
    steer(case)
    steer_media(case)
    label = case.operation.label
    index = CASES.sent(label, case.body)
    response = case.call_and_validate(checks=CHECKS)
    CASES.answered(index, response.status_code)
    SENT[label] = SENT.get(label, 0) + 1
    STATUSES.setdefault(label, Counter())[response.status_code] += 1


def fuzz_all(schema, examples=MAX_EXAMPLES, **select_ops) -> list[str]:
    failures = []
    for op in operations(schema, **select_ops):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exc = fuzz(op, mode, examples, send)
            if exc is not None:
                failures.append(f"{op.label} [{mode.value}]: {exc}")
    return failures


def documented(schema_doc: dict) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in schema_doc["paths"].items() for method in item}


# --- raw bytes on the socket -----------------------------------------------------------------------

def raw_request(path: Path, data: bytes, *, half_close: bool = False, timeout: float = 10):
    """Send ``data`` as it is; (status, headers, body) of the answer, status None if there was none."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1.1 "):
        return None, {}, answer
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def req(method: str, target: str, body: bytes | None = None, *, extra: tuple[bytes, ...] = ()) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: worker", b"Connection: close", *extra]
    if body is not None:
        lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked(method: str, target: str, chunks: list[bytes], *, end: bool = True) -> bytes:
    head = req(method, target, extra=(b"Content-Type: application/json", b"Transfer-Encoding: chunked"))
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return head + body + (b"0\r\n\r\n" if end else b"")


MIB = 1024 * 1024
SEND_LATIN1 = b'{"phone_number": "%s", "text": "caf\xe9"}' % CONTACT.encode()  # "é" in latin-1: not UTF-8
HOSTILE = [
    # (what, bytes, half-close after sending, status, error code)
    ("body not UTF-8", req("POST", "/send", SEND_LATIN1), False, 400, "invalid_json"),
    ("body a JSON array", req("POST", "/events/ack", b"[1, 2]"), False, 400, "invalid_json"),
    ("body a JSON string", req("POST", "/connect", b'"x"'), False, 400, "invalid_json"),
    ("huge number", req("POST", "/events/ack", b'{"upto": 1e400}'), False, 400, "invalid_upto"),
    ("huge integer", req("POST", "/events/ack", b'{"upto": 123456789012345678901234567890}'), False, 400,
     "invalid_upto"),
    ("huge number as phone", req("POST", "/send", b'{"phone_number": 1e400, "text": "x"}'), False, 400,
     "invalid_phone_number"),
    ("deep array", req("POST", "/events/ack", b"[" * 100_000 + b"]" * 100_000), False, 400, "invalid_json"),
    *[(f"unknown field or parameter: {r.split(b' ')[1].decode()} {n}", r, False, 400, "unknown_field")
      for n, r in enumerate((req("POST", "/send", b'{"phone_number": "+15550001111", "text": "x", "group": "1@g.us"}'),
                             req("POST", "/send/batch", b'{"messages": [{"phone_number": "+15550001111", "text": "x", '
                                                        b'"id": "ABCD1234", "q": 1}]}'),
                             req("GET", "/status?verbose=1"), req("GET", "/events?after=0&wait_ms=0&x=1")))],
    ("deep object", req("POST", "/events/ack", b'{"a":' * 50_000 + b"1" + b"}" * 50_000), False, 400,
     "unknown_field"),  # read whole, then refused by its first field ("a" is none of /events/ack's)
    ("body over 1 MiB", req("POST", "/send", b'{"text": "' + b"a" * MIB + b'"}'), False, 413, "payload_too_large"),
    ("chunked body over 1 MiB", chunked("POST", "/connect", [b"[" + b" " * 65536] * 20), False, 413,
     "payload_too_large"),
    ("chunked body cut short", chunked("POST", "/events/ack", [b'{"upto"'], end=False), True, 400, "bad_request"),
    ("length body cut short", req("POST", "/send", b'{"phone_number"' + b" " * 100)[:-50], True, 400, "bad_request"),
    ("bad chunk size", req("POST", "/send", extra=(b"Transfer-Encoding: chunked",)) + b"zz\r\n{}\r\n0\r\n\r\n",
     False, 400, "bad_request"),
    ("NUL in a header", req("GET", "/status", extra=(b"X-Bad: a\x00b",)), False, 400, "bad_request"),
    ("headers over 16 KiB", req("GET", "/status", extra=(b"X-Big: " + b"a" * 20_000,)), False, 431,
     "headers_too_large"),
    ("account %00", req("GET", "/accounts/%00/status"), False, 400, "invalid_account_name"),
    ("account %2F", req("POST", "/accounts/a%2Fb/send", b"{}"), False, 400, "invalid_account_name"),
    ("account a lone %", req("GET", "/accounts/%/status"), False, 400, "invalid_account_name"),
    ("account %E0%A4%A", req("GET", "/accounts/%E0%A4%A/events"), False, 400, "invalid_account_name"),
    ("account overlong", req("GET", "/accounts/" + "a" * 4000 + "/status"), False, 400, "invalid_account_name"),
    ("account ..", req("POST", "/accounts/../detach", b"{}"), False, 400, "invalid_account_name"),
    ("account unknown", req("POST", "/accounts/nobody-here/send", b"{}"), False, 404, "account_not_found"),
    ("attach an unassigned account", req("POST", "/accounts/nobody-here/attach", b"{}"), False, 409, "not_assigned"),
    ("detach unprefixed", req("POST", "/detach", b"{}"), False, 404, "not_found"),
    ("backslash path", req("GET", "/accounts\\default/status"), False, 404, "not_found"),
    ("absolute target", req("GET", "http://[bad/status"), False, 400, "invalid_path"),
    ("absolute target, good url", req("GET", "http://worker/status"), False, 400, "invalid_path"),
    ("asterisk target", req("OPTIONS", "*"), False, 400, "invalid_path"),
    ("unknown method", req("BREW", "/status"), False, 400, "bad_request"),
    ("unknown route", req("DELETE", "/status"), False, 404, "not_found"),
    ("query that decodes to nothing", req("GET", "/events?after=%&wait_ms=%zz&boot_id=%E0"), False, 200, None),
]


# --- the tests -------------------------------------------------------------------------------------

def test_every_worker_route_is_documented():
    """The document is valid OpenAPI 3.1; every route of server.js (routeList, derived from its route tables)
    is a path of it, and it has no path the worker does not serve."""
    out = subprocess.run(
        ["node", "--input-type=module", "-e",
         "import { routeList } from './src/server.js'; console.log(JSON.stringify(routeList()))"],
        cwd=REPO / "node_worker", capture_output=True, text=True, timeout=60, check=True,
    )
    routes = set(json.loads(out.stdout))
    raw = json.loads(DOCUMENT.read_text())
    validate(raw)  # a valid OpenAPI 3.1 document (openapi-spec-validator)
    doc = documented(raw)
    # with POST /media/download twice, the 9 group routes twice (issue 26), GET /contacts/{phone} twice (issue 27)
    # and the shard's GET /changes (issue 28)
    assert len(routes) == 41, routes
    assert routes - doc == set(), f"worker routes missing from {DOCUMENT.name}: {sorted(routes - doc)}"
    assert doc - routes == set(), f"documented paths the worker does not serve: {sorted(doc - routes)}"


def test_every_operation_holds_to_the_document(api_schema, worker):
    stack = worker["stack"]
    started = time.monotonic()
    states_before = len(worker_log(stack, "session.state"))
    failures = fuzz_all(api_schema, skip=f"{DISCONNECT}|{GROUPS}")
    # A repeated attach of a running account leaves its session alone (it used to reconnect it).
    again = raw_request(worker["socket"], req("POST", "/accounts/default/attach", b"{}"))
    assert again[0] == 200 and json.loads(again[2])["state"] == "connected", again
    expected = {op for op in documented(api_schema.raw_schema) if not re.search(f"{DISCONNECT}|{GROUPS}", op)}
    print(f"fuzzed {len(SENT)} of {len(expected)} operations, {sum(SENT.values())} cases in "
          f"{time.monotonic() - started:.1f}s:", {k: dict(v) for k, v in sorted(STATUSES.items())})
    assert not failures, "\n\n".join(failures)
    assert expected == set(SENT), f"no case went through: {expected - set(SENT)}"
    assert_same_worker(worker)
    assert_default_never_changed(stack, states_before)
    assert stack.status()["state"] == "connected"  # nothing above unlinked the account


def test_the_group_routes_hold_to_the_document(api_schema, worker):
    """The group routes the same way, the default session never changing state either."""
    states_before = len(worker_log(worker["stack"], "session.state"))
    failures = fuzz_all(api_schema, only=GROUPS)
    assert not failures, "\n\n".join(failures)
    assert {op for op in documented(api_schema.raw_schema) if re.search(GROUPS, op)} <= set(SENT)
    assert_same_worker(worker)
    assert_default_never_changed(worker["stack"], states_before)
    assert worker["stack"].status()["state"] == "connected"


def test_hostile_bytes_get_a_4xx(worker):
    """What no generator sends, raw on the socket: each gets its JSON error (4xx; a query that decodes to
    nothing is read leniently, 200), and the worker lives on, still linked."""
    wrong = []
    for what, data, half_close, status, code in HOSTILE:
        try:
            got_status, headers, body = raw_request(worker["socket"], data, half_close=half_close)
        except OSError as exc:  # the socket is gone: the row before killed the worker
            wrong.append(f"{what}: no worker to answer ({exc!r})")
            continue
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        got_code = parsed["error"]["code"] if isinstance(parsed, dict) and "error" in parsed else None
        if (got_status, got_code) != (status, code) or headers.get("content-type") != "application/json":
            wrong.append(f"{what}: {got_status} {headers.get('content-type')} {body[:200]!r}")
    assert not wrong, "\n".join(wrong)
    assert_same_worker(worker)
    assert worker["stack"].status()["state"] == "connected"


def test_disconnect_last_then_the_logged_out_answers_hold_too(api_schema, worker):
    """Logging out runs after everything else; then what a logged-out account answers is documented too."""
    stack = worker["stack"]
    started = time.monotonic()
    failures = fuzz_all(api_schema, only=DISCONNECT)
    if stack.status()["state"] == "connected":  # the generator may not have picked `default`
        res = stack.post("/disconnect")
        assert res.status == 200, res.raw
    wait_for(lambda: stack.status()["state"] != "connected", 10, "the account logged out")
    failures += fuzz_all(api_schema, examples=5, only=r"^(/accounts/\{account\})?/(status|send|connect|events)$")
    print(f"disconnect and after: {time.monotonic() - started:.1f}s")
    assert not failures, "\n\n".join(failures)
    assert {"POST /disconnect", "POST /accounts/{account}/disconnect"} <= set(SENT)
    assert_same_worker(worker)
