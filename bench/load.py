"""A bounded HTTP POST load, run in its own process so the client's CPU is not the measured server's:

    .venv/bin/python -m bench.load URL [--requests 2000] [--connections 16] [--max-seconds 10]
                                       [--api-key KEY] [--idempotency]

Sends ``--requests`` POSTs (or stops at ``--max-seconds``) over ``--connections`` keep-alive connections,
each with a small JSON body (a unique message to ``--phone``) and, with ``--idempotency``, a unique
``Idempotency-Key``; prints one JSON object: count, rate per second, latency p50/p99 in ms, statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import aiohttp


def percentile(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def run(args) -> dict:
    prefix = f"bench-{os.getpid()}-{time.time_ns()}"
    counter = iter(range(args.requests))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    deadline = time.monotonic() + args.max_seconds
    base_headers = {"X-API-Key": args.api_key} if args.api_key else {}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for n in counter:
            if time.monotonic() >= deadline:
                return
            headers = dict(base_headers)
            if args.idempotency:
                headers["Idempotency-Key"] = f"{prefix}-{n}"
            body = {"phone_number": args.phone, "message": f"bench {prefix} {n}"}
            started = time.perf_counter()
            try:
                async with session.post(args.url, json=body, headers=headers) as res:
                    await res.read()
                    statuses[str(res.status)] = statuses.get(str(res.status), 0) + 1
            except (TimeoutError, aiohttp.ClientError):
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(args.connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "count": len(latencies), "errors": errors, "elapsed_s": round(elapsed, 3),
        "per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
        "p50_ms": round(percentile(latencies, 0.50), 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--phone", default="+15550002222")
    parser.add_argument("--idempotency", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
