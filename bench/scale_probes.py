"""What bench/scale.py reads of a sandbox stack at each size (issue 28): each program's RSS and idle CPU, the
connect storms after a cold start and after a kill -9 of one worker shard, the emulator's connection statistics,
and request latencies (the gateway's event loop, the hop to a worker, ``/health``). Reads only; asserts nothing.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable

import psutil

from bench.recovery import program_pids
from tests.helpers import many_accounts
from tests.helpers.stack import Stack, http, wait_for


def quantiles(values: list[float]) -> dict:
    """min, p50, p99 and max of ``values`` (None each when there are none)."""
    if not values:
        return {"n": 0, "min": None, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {"n": len(ordered), "min": ordered[0], "p50": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "max": ordered[-1]}


def _tree(name: str, pid: int) -> list[psutil.Process]:
    """The program's process and its children; supervisord alone (its children are the other programs, each
    counted under its own name)."""
    try:
        proc = psutil.Process(pid)
        return [proc] if name == "supervisord" else [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """Each program's resident memory in MiB (with its children, if it has any), and their ``total``."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        total = 0
        for proc in _tree(name, pid):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        out[name] = total / 2**20
    out["total"] = sum(out.values())
    return out


def _cpu_seconds(name: str, pid: int) -> float:
    total = 0.0
    for proc in _tree(name, pid):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each program's CPU over ``seconds`` of quiet, in percent of one core (psutil cpu_times deltas), and ``total``."""
    before = {name: _cpu_seconds(name, pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    out = {name: 100 * (_cpu_seconds(name, pid) - before[name]) / elapsed for name, pid in pids.items()}
    out["total"] = sum(out.values())
    return out


def timed_ms(call: Callable[[], object], n: int) -> dict:
    """``n`` sequential calls: quantiles of their latency in ms."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return quantiles(samples)


def latencies(stack: Stack, names: list[str], n: int = 200) -> dict:
    """``/health/live`` back to back (the gateway's event loop: it answers from the loop with no I/O, so what it
    takes beyond a bare request is the loop's lag), ``/health`` (supervisord, psutil, a store probe) and an
    account's ``/status`` (the gateway's hop to a worker shard: the worker exposes no loop-lag figure of its
    own, so this stands for its loop's lag), ``n`` each."""
    def live() -> None:
        assert stack.get("/health/live", timeout=30).status == 200

    def health() -> None:
        assert stack.get("/health", timeout=30).status in (200, 503)

    sample = names[:: max(1, len(names) // 5)][:5] or ["default"]
    turn = iter(range(10**9))

    def status() -> None:
        assert stack.get(f"/accounts/{sample[next(turn) % len(sample)]}/status", timeout=30).status == 200

    return {"health_live_ms": timed_ms(live, n), "health_ms": timed_ms(health, n),
            "status_ms": timed_ms(status, n)}


def emulator_stats(stack: Stack, reset: bool = False) -> dict | None:
    """The emulator's ``GET /stats`` (its connection counts and busiest second), or None when it has none;
    ``reset``: ``POST /stats/reset`` first, so that the figures are the coming storm's alone."""
    try:
        if reset:
            http("POST", f"{stack.emulator}/stats/reset", {}, timeout=10)
        res = http("GET", f"{stack.emulator}/stats", timeout=10)
    except OSError:
        return None
    return res.json() if res.status == 200 else None


def _storm(stack: Stack, names: list[str], since: float, timeout: float) -> dict:
    """Wait (up to ``timeout``) until the event log holds a ``connected`` of every account of ``names`` recorded
    after ``since``: the seconds each took, their quantiles, the most in one second. ``GET /accounts`` is only the
    cheap first wait: just after a kill it may still say connected (the gateway has not noticed yet)."""
    deadline = time.monotonic() + timeout

    def listed_connected() -> bool:
        listed = many_accounts.accounts(stack)
        return all(listed.get(a) == "connected" for a in names)

    try:
        wait_for(listed_connected, timeout, "every account connected", interval=1.0)
    except AssertionError:
        pass
    at: dict[str, float] = {}
    missing = set(names)
    while missing and time.monotonic() < deadline:
        at.update(many_accounts.connected_since(stack, sorted(missing), since))
        missing -= at.keys()
        if missing:
            time.sleep(2)
    seconds = [t - since for t in at.values()]
    busiest = Counter(int(t) for t in at.values()).most_common(1)
    return {"accounts": len(names), "connected": len(at), "all_connected_s": max(seconds) if not missing else None,
            "per_account_s": quantiles(seconds), "peak_connected_per_s_in_log": busiest[0][1] if busiest else 0}


def cold_start(stack: Stack, timeout: float) -> dict:
    """``stack.stop(); stack.start()``: from starting the launcher until each account is connected again."""
    names = list(many_accounts.accounts(stack))
    assert stack.stop() == 0
    since = time.time()
    stack.start(wait=False)
    # Stack.start's own wait is 30 s; with hundreds of accounts on a loaded machine the start takes longer.
    wait_for(stack._up, timeout, "gateway /health and the worker RUNNING after the cold start")
    up_s = time.time() - since
    storm = _storm(stack, names, since, timeout)
    return {**storm, "up_s": up_s, "emulator": emulator_stats(stack)}


def shard_kill(stack: Stack, timeout: float, shard: str = "worker:worker-1") -> dict:
    """kill -9 of one worker shard (supervisord starts it again): until each of its accounts is connected again."""
    names = many_accounts.shard_accounts(stack)[shard]
    pid = wait_for(lambda: (i := stack.process_info(shard))["statename"] == "RUNNING" and i["pid"], 60,
                   f"{shard} RUNNING")
    emulator_stats(stack, reset=True)
    since = time.time()
    os.kill(pid, signal.SIGKILL)
    storm = _storm(stack, names, since, timeout)
    return {**storm, "shard": shard, "emulator": emulator_stats(stack)}


def footprint(stack: Stack, cpu_seconds: float) -> dict:
    """Each program's RSS and idle CPU now (the caller lets the stack settle first)."""
    pids = program_pids(stack)
    return {"rss_mb": rss_mb(pids), "idle_cpu_pct": idle_cpu(pids, cpu_seconds)}
