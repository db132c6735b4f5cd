"""Recovery and footprint of a sandbox stack (issue 13):

    .venv/bin/python -m bench.recovery [--kills 5] [--restarts 3] [--cold 2]

- ``recovery_s``: ``kill -9`` of worker shard 0 (its pid from supervisord) until ``GET /status`` says
  connected again, polled every 20 ms; median of ``--kills`` runs (each waits for the new shard to be
  RUNNING in supervisord's eyes, startsecs, before the next kill). The gateway proxies /status to the
  worker and its call waits for the worker's socket, so the first answer after the kill is often
  already the new shard's "connected".
- ``recovery_ready_s``: the same runs, until ``/health/ready`` is 200. It also wants the shard RUNNING in
  the gateway's last supervisord poll: about 0.4 s when that poll missed the restart, 3+ s when it saw
  STARTING and waits for startsecs=3, so its runs are bimodal.
- ``restart_ready_s``: ``supervisorctl restart worker:*`` (which returns once the shards are RUNNING, after
  startsecs) until ``/health/ready`` answers 200; median of ``--restarts``.
- ``cold_start_s``: a stopped stack with a paired data dir, from starting the launcher until
  ``/health/ready`` answers 200; median of ``--cold``.
- ``rss_mb``: RSS of every program (supervisord, and each process in getAllProcessInfo: gateway,
  worker shards, watchdog, emulator) idle, and the peak sampled under the accept load of bench/accept.py.

The per-account memory is bench/accounts.py's (``python -m bench.accounts``; it has no function to
call and its 1/10/30 levels take minutes). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import threading
import time

import psutil

from bench.accept import finish_load, send_load
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, wait_for

POLL = 0.02


def supervisor(stack: Stack):
    from service.programs.running import rpc

    return rpc(stack.run_dir / "supervisor.sock").supervisor


def program_pids(stack: Stack) -> dict[str, int]:
    sup = supervisor(stack)
    pids = {"supervisord": sup.getPID()}
    for info in sup.getAllProcessInfo():
        if info["pid"]:
            name = info["name"] if info["group"] == info["name"] else f"{info['group']}:{info['name']}"
            pids[name] = info["pid"]
    return pids


def rss(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
        except psutil.NoSuchProcess:
            out[name] = None
    out["total"] = round(sum(v for v in out.values() if v), 1)
    return out


def state(stack: Stack) -> str | None:
    try:
        res = stack.get("/status", timeout=2)
    except OSError:
        return None
    return res.json().get("state") if res.status == 200 else None


def ready(stack: Stack) -> bool:
    try:
        return stack.get("/health/ready", timeout=2).status == 200
    except OSError:
        return False


def recovery_once(stack: Stack) -> tuple[float, float]:
    info = stack.process_info("worker:worker-0")
    old = info["pid"]
    started = time.monotonic()
    os.kill(old, signal.SIGKILL)
    # /status is proxied to the worker (no cache in the gateway), and the gateway's call waits for the
    # worker's socket, so once the old process is gone a "connected" can only come from the new one.
    wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE,
             10, "the killed worker gone", interval=0.001)
    wait_for(lambda: state(stack) == "connected", 60, "the account connected again", interval=POLL)
    elapsed = time.monotonic() - started
    # /health/ready also wants supervisord to count the shard RUNNING (startsecs) and the gateway to see it.
    wait_for(lambda: ready(stack), 60, "/health/ready 200 after the kill", interval=POLL)
    ready_s = time.monotonic() - started
    # The next kill only once supervisord counts the new shard as started (startsecs), as in production.
    wait_for(lambda: (i := stack.process_info("worker:worker-0"))["statename"] == "RUNNING" and i["pid"] != old,
             30, "worker-0 RUNNING again")
    return elapsed, ready_s


def restart_once(stack: Stack) -> tuple[float, float]:
    started = time.monotonic()
    res = stack.ctl("restart", "worker:*")
    if res.returncode != 0:
        raise RuntimeError(f"supervisorctl restart failed: {res.stdout} {res.stderr}")
    ctl_s = time.monotonic() - started
    wait_for(lambda: ready(stack), 60, "/health/ready 200", interval=POLL)
    return time.monotonic() - started, ctl_s


def rss_under_load(stack: Stack, requests: int = 4000, max_seconds: float = 10.0) -> tuple[dict, dict]:
    pids = program_pids(stack)
    peak: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for name, value in rss(pids).items():
                if value is not None and value > peak.get(name, 0):
                    peak[name] = value
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    load = send_load(stack, requests=requests, max_seconds=max_seconds)
    sampler.start()
    try:
        result = finish_load(load)
    finally:
        stop.set()
        sampler.join()
    return peak, result


def measure(kills: int = 5, restarts: int = 3, cold: int = 2) -> dict:
    result: dict = {}
    stack = Stack(sandbox=True).start()
    try:
        pair(stack)
        wait_for(lambda: ready(stack), 30, "/health/ready 200")
        time.sleep(2)  # let the post-pairing work settle before the idle sample
        result["rss_idle_mb"] = rss(program_pids(stack))
        result["rss_load_mb"], result["load"] = rss_under_load(stack)
        result["rss_load_mb"]["total"] = round(sum(v for k, v in result["rss_load_mb"].items() if k != "total"), 1)

        runs = [recovery_once(stack) for _ in range(kills)]
        result["recovery_runs_s"] = [round(r, 3) for r, _ in runs]
        result["recovery_s"] = round(statistics.median(r for r, _ in runs), 3)
        result["recovery_ready_runs_s"] = [round(r, 3) for _, r in runs]
        result["recovery_ready_s"] = round(statistics.median(r for _, r in runs), 3)

        restarts_ = [restart_once(stack) for _ in range(restarts)]
        result["restart_runs_s"] = [round(r, 3) for r, _ in restarts_]
        result["restart_ctl_s"] = [round(c, 3) for _, c in restarts_]
        result["restart_ready_s"] = round(statistics.median(r for r, _ in restarts_), 3)

        colds = []
        for _ in range(cold):
            stack.stop()
            started = time.monotonic()
            stack.start(wait=False)
            wait_for(lambda: ready(stack), 60, "/health/ready 200 after a cold start", interval=POLL)
            colds.append(time.monotonic() - started)
        result["cold_runs_s"] = [round(c, 3) for c in colds]
        result["cold_start_s"] = round(statistics.median(colds), 3)
    finally:
        stack.cleanup()
    return result


def print_table(r: dict) -> None:
    print(f"recovery_s (kill -9 worker-0 -> connected, median of {len(r['recovery_runs_s'])}): "
          f"{r['recovery_s']:.3f}   runs {r['recovery_runs_s']}")
    print(f"recovery_ready_s (kill -9 worker-0 -> /health/ready 200, same runs): "
          f"{r['recovery_ready_s']:.3f}   runs {r['recovery_ready_runs_s']}")
    print(f"restart_ready_s (supervisorctl restart worker:* -> /health/ready 200, median of "
          f"{len(r['restart_runs_s'])}): {r['restart_ready_s']:.3f}   runs {r['restart_runs_s']} "
          f"(supervisorctl itself {r['restart_ctl_s']})")
    print(f"cold_start_s (launcher start, paired data dir -> /health/ready 200, median of "
          f"{len(r['cold_runs_s'])}): {r['cold_start_s']:.3f}   runs {r['cold_runs_s']}")
    idle, load = r["rss_idle_mb"], r["rss_load_mb"]
    print(f"{'RSS MB':<22} {'idle':>8} {'accept load (peak)':>19}")
    for name in idle:
        print(f"{name:<22} {idle[name] or 0:>8.1f} {load.get(name) or 0:>19.1f}")
    print(f"(load: {r['load'].get('count')} accepts at {r['load'].get('per_s')}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--cold", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    result = measure(args.kills, args.restarts, args.cold)
    print_table(result)
    print(f"(whole measurement {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
