"""Cluster failover (issue 28 item 4): two instances on a throwaway PostgreSQL (tests/helpers/postgres.py) and
one emulator, four linked accounts two and two (tests/helpers/cluster.py). Each repetition loses instance B
and times, from the signal, until A serves every account and B's share reports ``connected`` through A:

- ``kill -9`` of the whole instance (supervisord and its programs): its PostgreSQL session and advisory
  lock end at once, so its accounts should move in seconds (goal: < 3 s);
- ``SIGSTOP`` of the whole instance: it keeps its session, so its accounts wait out ``WA_LEASE_TTL``
  (the figure must not be below the TTL: a paused machine is not taken over early).

B is started again (same instance id) between repetitions and takes its share back. Prints, never asserts.

    .venv/bin/python -m bench.failover [--reps 3] [--ttl 10]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import time

from tests.helpers.cluster import ACCOUNTS, connected, freeze, serving, start_cluster, wait_spread
from tests.helpers.postgres import PostgresServer, PostgresUnavailable
from tests.helpers.stack import Stack, wait_for


def _lose(a: Stack, b: Stack, sig: int, ttl: float) -> float:
    """Signal every process of B; seconds until A serves every account and B's share is connected."""
    on_b = serving(b)
    started = time.monotonic()
    freeze(b, sig)
    wait_for(lambda: serving(a) == set(ACCOUNTS), ttl * 3 + 20, "A serves every account", interval=0.05)
    for name in on_b:
        wait_for(lambda name=name: connected(a, name), 40, f"{name} connected on A", interval=0.05)
    return time.monotonic() - started


def _summary(samples: list[float]) -> dict:
    return {"runs_s": [round(s, 2) for s in samples], "median_s": round(statistics.median(samples), 2),
            "max_s": round(max(samples), 2)} if samples else {}


def measure(reps: int = 3, ttl: float = 10.0) -> dict:
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        return {"error": str(exc)}
    stacks: list[Stack] = []

    def make_stack(extra_env=None, *, sandbox=False, start=True) -> Stack:
        stack = Stack(extra_env, sandbox=sandbox)
        stacks.append(stack)
        return stack.start() if start else stack

    server.start()
    kills: list[float] = []
    stops: list[float] = []
    try:
        cluster = start_cluster(make_stack, server.create_database(), ttl)
        a, b = cluster["a"], cluster["b"]
        for sig, samples in [(signal.SIGKILL, kills)] * reps + [(signal.SIGSTOP, stops)] * reps:
            samples.append(_lose(a, b, sig, ttl))
            print(f"  {signal.Signals(sig).name}: {samples[-1]:.2f} s", flush=True)
            freeze(b, signal.SIGKILL)  # a stopped B goes too (it would be fenced), before another B starts
            b.cleanup()
            b = cluster["make_b"]()
            wait_spread(a, b)
    finally:
        for stack in stacks:
            stack.cleanup()
        server.stop()
    return {"ttl_s": ttl, "accounts": len(ACCOUNTS), "moved_per_loss": len(ACCOUNTS) // 2,
            "kill9_to_connected_elsewhere": _summary(kills), "sigstop_to_connected_elsewhere": _summary(stops)}


def print_table(result: dict) -> None:
    if "error" in result:
        print(f"failover: {result['error']}")
        return
    print(f"cluster failover: 2 instances, {result['accounts']} accounts, {result['moved_per_loss']} move per loss,"
          f" WA_LEASE_TTL={result['ttl_s']:.0f} s")
    print(f"{'loss of B':<12} {'median s':>9} {'max s':>7}  runs")
    for label, key in (("kill -9", "kill9_to_connected_elsewhere"), ("SIGSTOP", "sigstop_to_connected_elsewhere")):
        r = result.get(key) or {}
        print(f"{label:<12} {r.get('median_s', 0):>9.2f} {r.get('max_s', 0):>7.2f}  {r.get('runs_s')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ttl", type=float, default=10.0)
    args = parser.parse_args()
    print_table(measure(args.reps, args.ttl))


if __name__ == "__main__":
    main()
