"""``make bench``: every benchmark against real sandbox stacks, one after the other; a table on stdout and
every figure in ``bench/results.json`` (with the machine and the command).

Numbers are printed, never asserted: this machine's load varies, so each headline figure is a ratio against
a limit measured in the same run (a bare Baileys client, a bare aiohttp endpoint, /health/live). Each
benchmark starts and stops its own stack and is bounded in count and time; ``--only`` runs some of them.
Run with ``.venv/bin/python -m bench.run [--only e2e,accept] [--requests N]`` (``make bench BENCH_ARGS="..."``);
``--media-size-mb``, ``--media-n`` and ``--document-sizes-mb`` make the media benchmarks quick; ``--scale-sizes 100``
runs bench/scale.py at one size (it also writes bench/results-scale.json and docs/img/scale.svg).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from tests.helpers.stack import Stack, http, wait_for


def timed(n: int, call) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, samples: list[float], baseline: float | None) -> float:
    med = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) >= 10 else max(samples)
    ratio = f"{med / baseline:6.2f}x" if baseline else "  1.00x"
    print(f"{name:<34} median {med:8.2f} ms   p90 {p90:8.2f} ms   {ratio} of /health/live")
    return med


def latencies(n: int) -> dict:
    """Sequential request latencies per endpoint, as ratios of GET /health/live's."""
    rows: dict[str, float] = {}
    with Stack(sandbox=True) as stack:
        status = stack.post("/connect").json()
        stack.emu("POST", "/phone/scan", {"phone_number": "+15550001111", "qr": status["qr"]})
        stack.wait_state("connected", 30)
        print(f"latencies: {n} sequential requests per row")
        base = report("GET /health/live (gateway only)", timed(n, lambda: stack.get("/health/live")), None)
        rows["health_live_ms"] = base
        rows["status_ms"] = report("GET /status (gateway -> worker)", timed(n, lambda: stack.get("/status")), base)
        rows["health_ms"] = report("GET /health (+ supervisord, psutil)", timed(n, lambda: stack.get("/health")), base)
        rows["send_400_ms"] = report("POST /send 400 (validation only)",
                                     timed(n, lambda: stack.post("/send", {"phone_number": "x", "message": "y"})), base)
        sends = max(10, n // 4)
        counter = iter(range(10**9))
        rows["send_acked_ms"] = report(
            f"POST /send to the emulator ({sends})",
            timed(sends, lambda: stack.post("/send", {"phone_number": "+15550002222",
                                                      "message": f"bench {next(counter)}"})), base)
        wait_for(lambda: len(http("GET", stack.emulator + "/contacts/+15550002222/messages").json()) >= sends,
                 60, "every benchmark message at the contact")
    return rows


def _benchmarks(args: argparse.Namespace) -> dict:
    """name -> (measure, print_table); imported here so that one failing to import says which."""
    from bench import (
        accept,
        accounts,
        chats,
        e2e,
        failover,
        groups,
        inbound,
        media,
        media_memory,
        postgresql,
        recovery,
        scale,
    )

    documents = tuple(float(s) for s in args.document_sizes_mb.split(","))
    return {
        "latency": (lambda: latencies(args.requests), lambda r: None),
        "e2e": (e2e.measure, e2e.print_table),
        "accept": (accept.measure, accept.print_table),
        "inbound": (inbound.measure, inbound.print_table),
        "recovery": (recovery.measure, recovery.print_table),
        "accounts": (accounts.measure, accounts.print_table),
        "postgresql": (postgresql.measure, postgresql.print_table),
        "failover": (failover.measure, failover.print_table),
        "media": (lambda: media.measure(size=int(args.media_size_mb * media.MIB), n=args.media_n), media.print_table),
        "media_memory": (lambda: media_memory.measure(documents), media_memory.print_table),
        "groups": (groups.measure, groups.print_table),
        "chats": (lambda: chats.measure(args.chats_messages, args.chats_small, args.chats_pg_messages),
                  chats.print_table),
        "scale": (lambda: scale.measure(tuple(int(s) for s in args.scale_sizes.split(",")),
                                        scale.parser().parse_args(["--budget-min", str(args.scale_budget_min)])),
                  scale.print_table),
    }


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": sys.version.split()[0],
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def _plain(value):
    """What json can write: drop raw sample lists and other large detail."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not (isinstance(v, list) and len(v) > 20)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value if isinstance(value, (int, str, bool, type(None))) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmarks; write bench/results.json.")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per latency row")
    parser.add_argument("--only", help="comma-separated: latency, e2e, accept, inbound, recovery, accounts, "
                                       "postgresql, media, media_memory, groups, chats, scale")
    parser.add_argument("--media-size-mb", type=float, default=1.0, help="media: image size in MiB (default 1)")
    parser.add_argument("--media-n", type=int, default=20, help="media: images per row (default 20)")
    parser.add_argument("--document-sizes-mb", default="20,100",
                        help="media_memory: document sizes in MiB (default 20,100; 2,10 for a quick run)")
    parser.add_argument("--chats-messages", type=int, default=1_000_000, help="chats: messages (default 1,000,000)")
    parser.add_argument("--chats-small", type=int, default=10_000, help="chats: the small size (default 10,000)")
    parser.add_argument("--chats-pg-messages", type=int, default=100_000,
                        help="chats: messages on PostgreSQL (default 100,000; 0: SQLite only)")
    parser.add_argument("--scale-sizes", default="1,10,100,300,1000",
                        help="scale: linked accounts at each step, grown in one stack (default 1,10,100,300,1000)")
    parser.add_argument("--scale-budget-min", type=float, default=90.0,
                        help="scale: no new size is started after this many minutes (default 90)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args()
    chosen = _benchmarks(args)
    if args.only:
        unknown = set(args.only.split(",")) - set(chosen)
        if unknown:
            parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    results = {"command": " ".join(["python -m bench.run", *sys.argv[1:]]), "machine": machine(),
               "started_at": datetime.now(UTC).isoformat(), "results": {}, "errors": {}}
    for name, (measure, print_table) in chosen.items():
        print(f"\n== {name} ==", flush=True)
        started = time.monotonic()
        try:
            result = measure()
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(f"{name} failed: {exc}", flush=True)
            continue
        print_table(result)
        results["results"][name] = _plain(result)
        print(f"({name}: {time.monotonic() - started:.0f} s)", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
