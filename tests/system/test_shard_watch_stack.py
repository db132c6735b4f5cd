"""Many accounts cost the gateway no request and no connection each while they are idle (issue 28): a sandbox
stack takes 150 accounts one after the other, each POST /accounts answers without waiting for a free connection to
the worker (it used to wait 33 s from the 99th on: one long-poll per account held aiohttp's 100 connections), and
the idle gateway then holds O(1) connections to its worker (one GET /changes long-poll per shard,
service/runtime/shard_watch.py), not one or more per account. The bounds are generous: they catch the 33 s hang
and a connection per account, not a slow machine.
"""

from __future__ import annotations

import time

import psutil
import pytest

from tests.helpers.stack import Stack, wait_for

pytestmark = pytest.mark.system

N = 150
HANG = 15.0  # seconds: far above a slow create (tens of ms), far below the 33 s wait for a connection


def unix_sockets(stack: Stack) -> int:
    """The gateway's unix sockets now: its requests to the worker (one connection each, none kept alive) and a
    few of its own. Linux names no peer for a connected client socket, so all of them are counted."""
    return len(psutil.Process(stack.process_info("gateway")["pid"]).net_connections(kind="unix"))


def stopped(stack: Stack) -> int:
    """Accounts the gateway's link mirror shows as stopped (created, never linked)."""
    text = stack.get("/metrics").raw.decode()
    return sum(1 for line in text.splitlines()
               if line.startswith("wa_gateway_whatsapp_connection_state{") and 'state="stopped"' in line
               and line.endswith(" 1.0"))


def test_150_accounts_are_created_at_once_and_idle_with_one_connection_to_the_worker():
    with Stack(sandbox=True, extra_env={"WA_MAX_ACCOUNTS": str(N + 10)}) as stack:
        slowest = 0.0
        for i in range(N):
            started = time.monotonic()
            res = stack.post("/accounts", {"name": f"many-{i:03d}"}, timeout=60)
            slowest = max(slowest, time.monotonic() - started)
            assert res.status == 201, res.raw
        assert slowest < HANG, f"a POST /accounts took {slowest:.1f} s"
        deferred = [e for e in stack.log_events() if e.get("event") == "account.attach_deferred"]
        assert deferred == [], deferred[:3]
        # Every account's state reached the gateway's mirror (the shard's one long-poll; /metrics shows the mirror) ...
        wait_for(lambda: stopped(stack) == N + 1, 30, "every account's state (stopped) in the gateway's mirror")
        # ... and, idle, the gateway holds a connection or two to its worker (its readers' hot seconds are over), not
        # one per account.
        time.sleep(4)
        counts = []
        for _ in range(5):
            counts.append(unix_sockets(stack))
            time.sleep(0.5)
        assert max(counts) <= 10, counts
