"""Durable acceptance: ``POST /send?wait=0`` at 16 concurrent connections against a paired sandbox
stack, and the same load against a bare aiohttp JSON echo in the same run (the framework ratio).

    .venv/bin/python -m bench.accept [--requests 2000] [--connections 16] [--max-seconds 10]

The load comes from a separate process (bench/load.py) so the client's CPU is not counted as the
gateway's. Every request carries a unique Idempotency-Key; ``wait=0`` answers 202 once the message is
committed to the outbox. The messages are then delivered to the emulator's contact in the background,
paced by the send governor (WA_SEND_*), which does not slow acceptance. Prints, never asserts.

Besides the rates, the CPU each server process spent per request (user + system, all its threads, from
/proc through psutil): on a machine shared with other work the rates move with the load, the CPU per request
much less. ``cpu_ratio`` is the echo's CPU per request over the gateway's (what the rate ratio would be with a
core to itself). The gateway's includes the dispatcher sending the accepted messages in the background.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

import psutil

from tests.helpers.sandbox import CONTACT, pair
from tests.helpers.stack import REPO, Stack, free_port, listening, wait_for

PYTHON = sys.executable


def start_load(url: str, *, requests: int = 2000, connections: int = 16, max_seconds: float = 10.0,
               api_key: str | None = None, idempotency: bool = False) -> subprocess.Popen:
    cmd = [PYTHON, "-m", "bench.load", url, "--requests", str(requests), "--connections", str(connections),
           "--max-seconds", str(max_seconds), "--phone", CONTACT]
    if api_key:
        cmd += ["--api-key", api_key]
    if idempotency:
        cmd.append("--idempotency")
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)


def finish_load(proc: subprocess.Popen, timeout: float = 60) -> dict:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": "load did not finish"}
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": f"load exited {proc.returncode}"}


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def with_cpu(pid: int, run: Callable[[], dict]) -> dict:
    """``run()``'s load result with ``cpu_ms_per_request``: the CPU process ``pid`` spent on it per request."""
    before = cpu_seconds(pid)
    result = run()
    if result.get("count"):
        result["cpu_ms_per_request"] = round((cpu_seconds(pid) - before) * 1000 / result["count"], 3)
    return result


def send_load(stack: Stack, **kw) -> subprocess.Popen:
    return start_load(stack.base + "/send?wait=0", api_key=stack.api_key, idempotency=True, **kw)


def bare_aiohttp(**kw) -> dict:
    """The same load against a bare aiohttp app echoing the JSON body, in its own process."""
    port = free_port()
    server = subprocess.Popen([PYTHON, "-m", "bench.echo_server", str(port)], cwd=REPO)
    try:
        wait_for(lambda: listening(port), 15, "the echo server")
        return with_cpu(server.pid, lambda: finish_load(start_load(f"http://127.0.0.1:{port}/", **kw)))
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure(requests: int = 2000, connections: int = 16, max_seconds: float = 10.0,
            stack: Stack | None = None) -> dict:
    """accept_per_s, accept_p50_ms, accept_p99_ms, framework_ratio (and the raw load results)."""
    own = stack is None
    if own:
        stack = Stack(sandbox=True).start()
    try:
        if own:
            pair(stack)
        kw = dict(requests=requests, connections=connections, max_seconds=max_seconds)
        # A short warm-up (connections, first imports, the outbox's first pages) not counted.
        finish_load(send_load(stack, requests=50, connections=connections, max_seconds=5))
        gateway = stack.process_info("gateway")["pid"]
        accept = with_cpu(gateway, lambda: finish_load(send_load(stack, **kw)))
    finally:
        if own:
            stack.cleanup()
    bare = bare_aiohttp(**kw)
    ratio = (accept["per_s"] / bare["per_s"]) if accept.get("per_s") and bare.get("per_s") else None
    cpu = (bare["cpu_ms_per_request"] / accept["cpu_ms_per_request"]) \
        if accept.get("cpu_ms_per_request") and bare.get("cpu_ms_per_request") else None
    return {
        "accept_per_s": accept.get("per_s"), "accept_p50_ms": accept.get("p50_ms"),
        "accept_p99_ms": accept.get("p99_ms"), "framework_ratio": round(ratio, 3) if ratio else None,
        "accept_cpu_ms": accept.get("cpu_ms_per_request"), "bare_cpu_ms": bare.get("cpu_ms_per_request"),
        "cpu_ratio": round(cpu, 3) if cpu else None,
        "bare_per_s": bare.get("per_s"), "bare_p50_ms": bare.get("p50_ms"), "bare_p99_ms": bare.get("p99_ms"),
        "accept_raw": accept, "bare_raw": bare,
    }


def print_table(result: dict) -> None:
    a, b = result["accept_raw"], result["bare_raw"]
    print(f"{'':<32} {'count':>6} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>7}  statuses")
    for name, r in (("POST /send?wait=0 (durable)", a), ("bare aiohttp JSON echo", b)):
        print(f"{name:<32} {r.get('count', 0):>6} {r.get('per_s') or 0:>8.1f} {r.get('p50_ms') or 0:>8.2f}"
              f" {r.get('p99_ms') or 0:>8.2f} {r.get('cpu_ms_per_request') or 0:>7.3f}"
              f"  {r.get('statuses', r.get('error'))}")
    print(f"framework_ratio (accept / bare): {result['framework_ratio']}; cpu_ratio (bare CPU / accept CPU per"
          f" request): {result['cpu_ratio']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    args = parser.parse_args()
    started = time.monotonic()
    result = measure(args.requests, args.connections, args.max_seconds)
    print_table(result)
    print(f"(whole measurement {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
