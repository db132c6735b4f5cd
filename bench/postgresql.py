"""Durable acceptance on PostgreSQL against SQLite, in the same run: ``POST /send?wait=0`` at 16 connections
(the load from a separate process, bench/load.py) on a paired sandbox stack whose store is SQLite in its data
dir, then on one whose store is a throwaway PostgreSQL on this machine (tests/helpers/postgres.py: Debian's
binaries, a temp dir, fsync on, over TCP on 127.0.0.1). The PostgreSQL stack runs in cluster mode (one
instance holding every lease), as it would in production. Prints, never asserts.

    .venv/bin/python -m bench.postgresql [--requests 2000]
"""

from __future__ import annotations

import argparse

from bench.accept import finish_load, send_load
from tests.helpers.postgres import PostgresServer, PostgresUnavailable
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack


def _accept(stack: Stack, requests: int) -> dict:
    pair(stack)
    finish_load(send_load(stack, requests=50, connections=16, max_seconds=5))  # warm-up, not counted
    return finish_load(send_load(stack, requests=requests, connections=16, max_seconds=15))


def measure(requests: int = 2000) -> dict:
    result: dict = {}
    with Stack(sandbox=True) as stack:
        result["sqlite"] = _accept(stack, requests)
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        result["postgresql"] = {"error": str(exc)}
        return result
    server.start()
    try:
        with Stack({"WA_DATABASE_URL": server.create_database()}, sandbox=True) as stack:
            result["postgresql"] = _accept(stack, requests)
    finally:
        server.stop()
    sqlite, pg = result["sqlite"].get("per_s"), result["postgresql"].get("per_s")
    result["pg_over_sqlite"] = round(pg / sqlite, 3) if sqlite and pg else None
    return result


def print_table(result: dict) -> None:
    print("durable acceptance, POST /send?wait=0, 16 connections: PostgreSQL against SQLite")
    print(f"{'store':<12} {'count':>6} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name in ("sqlite", "postgresql"):
        r = result.get(name, {})
        print(f"{name:<12} {r.get('count', 0):>6} {r.get('per_s') or 0:>8.1f} {r.get('p50_ms') or 0:>8.2f}"
              f" {r.get('p99_ms') or 0:>8.2f}  {r.get('error', '')}")
    print(f"PostgreSQL / SQLite: {result.get('pg_over_sqlite')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    print_table(measure(parser.parse_args().requests))


if __name__ == "__main__":
    main()
