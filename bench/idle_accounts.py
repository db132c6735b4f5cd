"""What many idle accounts cost: a sandbox stack with N accounts (created, not linked), then, with nothing to do,
the gateway's requests to its worker per second and the CPU of the gateway and the worker over a window.

Run with ``.venv/bin/python -m bench.idle_accounts --accounts 150``. Each ``POST /accounts`` is timed (the
gateway used to wait 33 s per account past 98, for a connection to its worker). Requests are counted as the
worker's accepted connections (``strace -e accept4`` on the worker for the window; every request is one
connection, the gateway keeps none alive); CPU comes from psutil's cpu_times over a second, untraced window.
The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time

import psutil

from tests.helpers.stack import Stack

PROGRAMS = ("gateway", "worker:worker-0")


def create_accounts(stack: Stack, n: int) -> list[float]:
    """``n`` accounts, one POST each; the seconds each took."""
    took = []
    for i in range(n):
        started = time.monotonic()
        res = stack.post("/accounts", {"name": f"idle-{i:04d}"}, timeout=60)
        took.append(time.monotonic() - started)
        assert res.status == 201, res.raw
    return took


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        out[name] = times.user + times.system
    return out


def worker_accepts(pid: int, window: float) -> int:
    """Connections the worker accepted in ``window`` seconds (strace counts its accept4 calls)."""
    proc = subprocess.run(["timeout", "-s", "INT", str(window), "strace", "-f", "-c", "-e", "trace=accept4,accept",
                           "-p", str(pid)], capture_output=True, text=True)
    calls = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?accept4?$", line)
        if m:
            calls += int(m.group(1))
    return calls


def unix_sockets(pid: int) -> int:
    return len(psutil.Process(pid).net_connections(kind="unix"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=150)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=10.0)
    args = parser.parse_args()
    with Stack(sandbox=True, extra_env={"WA_MAX_ACCOUNTS": str(args.accounts + 10)}) as stack:
        took = create_accounts(stack, args.accounts)
        pids = {name: stack.process_info(name)["pid"] for name in PROGRAMS}
        time.sleep(args.settle)
        before = cpu_seconds(pids)
        time.sleep(args.window)
        after = cpu_seconds(pids)
        accepts = worker_accepts(pids["worker:worker-0"], args.window)
        sockets = unix_sockets(pids["gateway"])
        fds = {name: psutil.Process(pid).num_fds() for name, pid in pids.items()}
        deferred = sum(1 for e in stack.log_events() if e.get("event") == "account.attach_deferred")
    took.sort()
    result = {
        "accounts": args.accounts + 1,  # default included
        "create_s": {"p50": round(took[len(took) // 2], 3), "max": round(took[-1], 3)},
        "attach_deferred": deferred,
        "worker_requests_per_s": round(accepts / args.window, 2),
        "cpu_percent_of_a_core": {k: round((after[k] - before[k]) * 100 / args.window, 2) for k in after},
        "gateway_unix_sockets": sockets,
        "open_fds": fds,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
