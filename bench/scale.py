"""Many accounts on one small machine (issue 28): one sandbox stack grown to each size, and per size what it costs
and how it behaves.

    .venv/bin/python -m bench.scale [--sizes 1,10,100,300,1000] [--cpu-seconds 30] [--budget-min 90]
    make bench BENCH_ARGS="--only scale --scale-sizes 100"

One stack (``WA_MAX_ACCOUNTS`` = the largest size + 1, 2 worker shards, the production timers: keep-alive 30 s,
reconnect backoff from 1 s, not the tests' fast ones; the send governor off as in bench/e2e.py), whose accounts
are linked through the emulator's QR scan, 8 at a time, and grown from one size to the next. At each size:

- ``footprint``: after ``--settle`` s of quiet, each program's RSS (gateway, each worker shard, emulator,
  supervisord, watchdog), the whole and per account (over the stack with no account linked), and each program's
  CPU over ``--cpu-seconds`` of idle (psutil's cpu_times), in percent of one core;
- ``latency``: 200 ``GET /health/live`` back to back (the gateway's event loop), 200 ``GET /health``, 200 of a few
  accounts' ``GET /status`` (through the gateway to a worker shard: the worker exposes no loop lag of its own);
- ``cold_start``: ``stack.stop(); stack.start()`` until every account is connected again, per account from the
  gateway's event log (the first ``session.status`` ``connected`` after the start): p50, p99, all; the
  emulator's ``GET /stats`` (its busiest second of dials, against ``WA_CONNECT_RATE``); then ``shard_kill``:
  kill -9 of worker shard 1 (supervisord starts it again) until each of its accounts is connected;
- ``sends`` (sizes of 10 and more): bench/scale_sends.py, the send latency of up to 100 accounts without and
  with one account flooding, and their fairness ratio.

Prints a table, writes bench/results-scale.json and draws docs/img/scale.svg (bench/scale_plot.py). Every wait
is bounded; a size that does not fit in ``--budget-min`` is skipped and said so. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import scale_probes, scale_sends
from bench.e2e import UNPACED
from bench.scale_plot import PLOT, RESULTS
from tests.helpers import many_accounts
from tests.helpers.stack import Stack

# The production defaults (docs/configuration.md), over the fast timers tests/helpers/stack.py gives sandbox stacks.
PRODUCTION_TIMERS = {"WA_KEEPALIVE_MS": "30000", "WA_CONNECT_TIMEOUT_MS": "20000", "WA_RECONNECT_BASE_MS": "1000",
                     "WA_RECONNECT_MAX_MS": "60000", "WA_RECONNECT_STABLE_MS": "60000", "WA_WATCHDOG_INTERVAL": "2",
                     "WA_CONNECT_QR_WAIT": "8"}
SHARDS = 2


def _with_workers(rss: dict[str, float]) -> dict[str, float]:
    return {**rss, "workers": sum(v for k, v in rss.items() if k.startswith("worker:"))}


def per_account(now: dict[str, float], base: dict[str, float], accounts: int) -> dict[str, float]:
    """MiB per linked account of each program: its growth over the stack with no account, divided."""
    return {k: (v - base.get(k, 0.0)) / accounts for k, v in now.items() if k in base}


def measure_size(stack: Stack, size: int, base_rss: dict, args: argparse.Namespace) -> dict:
    numbers = list(range(1, size + 1))
    names = [many_accounts.name(n) for n in numbers]
    storm_timeout = max(120.0, size * 0.3)
    time.sleep(args.settle)
    footprint = scale_probes.footprint(stack, args.cpu_seconds)
    footprint["rss_mb"] = _with_workers(footprint["rss_mb"])
    footprint["rss_mb_per_account"] = per_account(footprint["rss_mb"], base_rss, size)
    row: dict = {"accounts": size, "footprint": footprint, "latency": scale_probes.latencies(stack, names)}
    print(f"  {size}: footprint and latencies read", flush=True)
    row["cold_start"] = scale_probes.cold_start(stack, storm_timeout)
    print(f"  {size}: cold start read", flush=True)
    time.sleep(args.settle)
    row["shard_kill"] = scale_probes.shard_kill(stack, storm_timeout)
    print(f"  {size}: shard kill read", flush=True)
    if size >= 10 and not args.no_sends:
        time.sleep(args.settle)
        row["sends"] = scale_sends.fairness(stack, numbers, seconds=args.send_seconds, rate=args.send_rate)
    return row


def measure(sizes: tuple[int, ...] = (1, 10, 100, 300, 1000), args: argparse.Namespace | None = None) -> dict:
    args = args or parser().parse_args([])
    env = {**PRODUCTION_TIMERS, **UNPACED, "WA_MAX_ACCOUNTS": str(max(sizes) + 1), "WA_WORKER_SHARDS": str(SHARDS)}
    if args.connect_rate:
        env["WA_CONNECT_RATE"] = str(args.connect_rate)
    deadline = time.monotonic() + args.budget_min * 60
    results: dict = {"command": " ".join(["python -m bench.scale", *sys.argv[1:]]),
                     "started_at": datetime.now(UTC).isoformat(), "machine": _machine(),
                     "settings": {k: v for k, v in env.items() if k.startswith("WA_")},
                     "sizes": [], "skipped": [], "errors": []}
    stack = Stack(env, sandbox=True)
    try:
        stack.start()
        time.sleep(args.settle)
        base = _with_workers(scale_probes.rss_mb(scale_probes.program_pids(stack)))
        results["base_rss_mb"] = base
        linked = 0
        for size in sorted(sizes):
            if time.monotonic() > deadline:
                results["skipped"].append({"accounts": size, "why": f"over --budget-min {args.budget_min}"})
                continue
            link_s = many_accounts.link_many(stack, range(linked + 1, size + 1), timeout=max(120.0, size * 0.3))
            print(f"{size} accounts linked ({size - linked} in {link_s:.0f} s)", flush=True)
            try:
                row = measure_size(stack, size, base, args)
            except Exception as exc:  # the sizes measured so far are kept; a broken stack is not grown further
                results["errors"].append({"accounts": size, "error": f"{type(exc).__name__}: {exc}"})
                print(f"{size} accounts failed: {exc}", flush=True)
                break
            row["link_s"], row["linked_now"] = link_s, size - linked
            linked = size
            results["sizes"].append(row)
            _write(results, args)  # each size's figures are kept even if a later one fails
    finally:
        stack.cleanup()
    return results


def _machine() -> dict:
    from bench.run import machine

    return machine()


def _write(results: dict, args: argparse.Namespace) -> None:
    from bench.run import _plain

    Path(args.out).write_text(json.dumps(_plain(results), indent=2, sort_keys=True) + "\n")
    if results["sizes"] and not args.no_plot:
        from bench.scale_plot import plot

        plot(results, Path(args.plot))


def _fmt(value, spec: str = ".1f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def _storm(storm: dict) -> str:
    q = storm["per_account_s"]
    return "/".join(_fmt(v) for v in (q["p50"], q["p99"], storm["all_connected_s"]))


def print_table(result: dict) -> None:
    print(f"{'accts':>5} {'RSS MiB':>8} {'/acct':>6} {'wkr MiB':>8} {'gw MiB':>7} {'emu MiB':>8} {'idle CPU%':>9} "
          f"{'live p99':>8} {'/health p50/p99':>15} {'/status p99':>11} {'cold p50/p99/all s':>19} "
          f"{'emu peak/s':>10} {'kill p50/p99/all s':>19} {'send p99 ms':>12} {'flood p99':>9} {'fair':>5}")
    for r in result["sizes"]:
        f, lat, cold = r["footprint"], r["latency"], r["cold_start"]
        rss, sends = f["rss_mb"], r.get("sends") or {}
        emu = (cold.get("emulator") or {}).get("peak_connects_per_s")
        health = _fmt(lat["health_ms"]["p50"]) + "/" + _fmt(lat["health_ms"]["p99"])
        alone = (sends.get("without_flood") or {}).get("latency_ms", {}).get("p99")
        flood = (sends.get("with_flood") or {}).get("latency_ms", {}).get("p99")
        print(f"{r['accounts']:>5} {rss['total']:>8.0f} {_fmt(f['rss_mb_per_account'].get('total')):>6} "
              f"{rss['workers']:>8.0f} {rss.get('gateway', 0):>7.0f} {rss.get('emulator', 0):>8.0f} "
              f"{f['idle_cpu_pct']['total']:>9.1f} {_fmt(lat['health_live_ms']['p99']):>8} {health:>15} "
              f"{_fmt(lat['status_ms']['p99']):>11} {_storm(cold):>19} "
              f"{_fmt(emu, 'd') if emu is not None else 'absent':>10} {_storm(r['shard_kill']):>19} "
              f"{_fmt(alone):>12} {_fmt(flood):>9} {_fmt(sends.get('fairness_ratio'), '.2f'):>5}")
    for r in result["sizes"]:
        rss, cpu = r["footprint"]["rss_mb"], r["footprint"]["idle_cpu_pct"]
        print(f"{r['accounts']:>5} accounts: RSS MiB " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items()))
              + "; idle CPU % " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items())))
    for s in result.get("skipped", []):
        print(f"{s['accounts']:>5} accounts: skipped ({s['why']})")
    for e in result.get("errors", []):
        print(f"{e['accounts']:>5} accounts: failed ({e['error']})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,10,100,300,1000", help="linked accounts at each step (grown in one stack)")
    p.add_argument("--cpu-seconds", type=float, default=30.0, help="idle CPU window per size (default 30)")
    p.add_argument("--settle", type=float, default=10.0, help="quiet seconds before each reading (default 10)")
    p.add_argument("--send-seconds", type=float, default=30.0, help="each send-load window (default 30)")
    p.add_argument("--send-rate", type=float, default=10.0,
                   help="sends per second of the (up to 100) steady accounts in all (default 10)")
    p.add_argument("--no-sends", action="store_true", help="skip the send load and fairness")
    p.add_argument("--connect-rate", type=float, help="WA_CONNECT_RATE for the stack (default: the worker's own)")
    p.add_argument("--budget-min", type=float, default=90.0, help="no new size is started after this (default 90)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--plot", default=str(PLOT))
    p.add_argument("--no-plot", action="store_true")
    return p


def main() -> None:
    args = parser().parse_args()
    result = measure(tuple(int(s) for s in args.sizes.split(",")), args)
    print_table(result)
    print(f"wrote {args.out}" + ("" if args.no_plot else f" and {args.plot}"))


if __name__ == "__main__":
    main()
