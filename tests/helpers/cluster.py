"""Two gateway instances (each a whole supervisord stack: gateway and worker) on one PostgreSQL and one
emulator, four linked accounts spread two and two: tests/system/test_cluster.py and bench/failover.py.

Instance A runs the emulator (a sandbox stack); instance B is a sandbox stack pointed at A's emulator (its
own idles), so both share one WhatsApp network. The instance ids are chosen so that rendezvous hashing gives
each two of the four accounts.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import Any

from service.cluster.lease_keeper import preferred
from tests.helpers.stack import REPO, Stack, session_processes, wait_for

ACCOUNTS = {"default": "+15550031001", "sales": "+15550031002", "support": "+15550031003",
            "billing": "+15550031004"}
CONTACT = "+15550031099"


def instance_ids() -> tuple[str, str]:
    """Two ids that split the four accounts two and two (so both instances serve some)."""
    for n in range(100):
        a, b = f"gw-a{n}", f"gw-b{n}"
        if Counter(preferred(x, [a, b]) for x in ACCOUNTS) == Counter({a: 2, b: 2}):
            return a, b
    raise AssertionError("no split found")


def path(name: str, route: str) -> str:
    return route if name == "default" else f"/accounts/{name}{route}"


def serving(stack: Stack) -> set[str]:
    try:
        return set(stack.get("/health").json().get("instance", {}).get("accounts", []))
    except OSError:
        return set()


def connected(stack: Stack, name: str) -> bool:
    try:
        return stack.get(path(name, "/status")).json().get("state") == "connected"
    except (OSError, ValueError):
        return False


def devices(emu_stack: Stack) -> dict[str, int]:
    """Linked devices per account phone at the emulator: a new pairing (a QR scanned) would add one."""
    return {acc["phone_number"]: len(acc["devices"]) for acc in emu_stack.emu("GET", "/").json()["accounts"]
            if acc["phone_number"] in ACCOUNTS.values()}


def freeze(stack: Stack, sig: int) -> list[int]:
    """Send ``sig`` to every process of the stack (kill -9 or SIGSTOP of a whole instance)."""
    pids = session_processes(stack.proc.pid)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def _emulator_secret(a: Stack, command: str, env_name: str, path_in_data: str) -> str:
    return subprocess.run(
        ["node", str(REPO / "node_worker" / "emulator" / "main.js"), command], check=True, text=True,
        capture_output=True, env={**os.environ, env_name: str(a.data_dir / path_in_data)},
    ).stdout.strip()


def start_cluster(make_stack: Callable[..., Stack], url: str, ttl: float) -> dict[str, Any]:
    """A alone pairs every account, then B starts and takes its share; both answer for every account.
    Returns ``{"a", "b", "make_b", "ids"}``; ``make_b()`` starts another B (same id) pointed at A."""
    a_id, b_id = instance_ids()
    # Media in PostgreSQL too (WA_MEDIA_STORE): any instance serves and sends any account's media.
    common = {"WA_DATABASE_URL": url, "WA_LEASE_TTL": str(ttl), "WA_KEEPALIVE_MS": "1000",
              "WA_MEDIA_STORE": "postgres"}
    a = make_stack({**common, "WA_INSTANCE_ID": a_id}, sandbox=True, start=False)
    a.env["WA_INSTANCE_URL"] = a.base
    a.start()
    root_key = _emulator_secret(a, "root-key", "WA_EMULATOR_ROOT_KEY_FILE", "emulator/root-key.json")
    # A's emulator's media host (its own test CA): B's worker must trust it to download and upload media there.
    media_ca = _emulator_secret(a, "media-ca", "WA_EMULATOR_MEDIA_DIR", "emulator/wa-emulator-media")

    def make_b() -> Stack:
        # a sandbox too: the worker refuses WA_SANDBOX_ROOT_KEY outside one (issue 21)
        b = make_stack({**common, "WA_INSTANCE_ID": b_id, "WA_SANDBOX_ROOT_KEY": root_key}, sandbox=True, start=False)
        b.env["WA_SERVER_URL"] = f"ws://127.0.0.1:{a.emulator_port}/ws/chat"
        b.env["WA_SANDBOX_MEDIA_CA"] = media_ca
        b.env["WA_INSTANCE_URL"] = b.base
        return b.start()

    # A alone: it takes every account; each is paired once, through A.
    for name in ACCOUNTS:
        if name != "default":
            assert a.post("/accounts", {"name": name}).status == 201
    wait_for(lambda: serving(a) == set(ACCOUNTS), 20, "A serves every account")
    for name, phone in ACCOUNTS.items():
        status = a.post(path(name, "/connect")).json()
        if status["state"] != "qr":
            status = wait_for(lambda name=name: (s := a.get(path(name, "/status")).json())["state"] == "qr" and s, 20,
                              "QR")
        assert a.emu("POST", "/phone/scan", {"phone_number": phone, "qr": status["qr"]}).status == 200
        wait_for(lambda name=name: connected(a, name), 30, f"{name} connected")
    assert devices(a) == {phone: 1 for phone in ACCOUNTS.values()}
    b = make_b()
    wait_spread(a, b)
    return {"a": a, "b": b, "make_b": make_b, "ids": (a_id, b_id)}


def wait_spread(a: Stack, b: Stack) -> None:
    """Until the accounts are spread over A and B, each held once, and every one connected."""
    wait_for(lambda: serving(a) and serving(b) and serving(a) | serving(b) == set(ACCOUNTS)
             and not serving(a) & serving(b), 40, "the accounts spread over A and B")
    for name in ACCOUNTS:
        wait_for(lambda name=name: connected(b, name), 40, f"{name} connected (asked through B)")
