"""Accepts per second into the outbox, with and without group commit (synchronous=FULL: a commit is
durable, one fsync each). Run with ``.venv/bin/python -m bench.outbox [--messages N] [--clients C]``.

Each client is a coroutine that accepts messages one after another, as concurrent POST /send requests
do; the numbers are printed, never asserted (this machine's disk and load vary).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from service.store import outbox
from service.store.db import Database


async def run(path: Path, grouped: bool, messages: int, clients: int) -> tuple[float, int]:
    db = Database(path, group_commit=grouped).open()
    per_client = messages // clients

    async def client(c: int) -> None:
        for n in range(per_client):
            await db.run(outbox.accept, account="default", phone_number=f"+1555000{c:04d}", body=f"bench {n}",
                         idempotency_key=f"{c}-{n}", now=time.time(), ttl=86400.0, max_outbox=10**9)

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - start
    commits = db.commits
    db.close()
    return per_client * clients / elapsed, commits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--dir", default=None, help="where to put the database (default: a temp dir; "
                        "use a directory on the data dir's disk, tmpfs makes fsync free)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"outbox accepts: {args.messages} messages from {args.clients} concurrent clients, synchronous=FULL, WAL")
        for grouped in (False, True):
            rate, commits = asyncio.run(run(Path(tmp) / f"g{grouped}.db", grouped, args.messages, args.clients))
            label = "group commit" if grouped else "one commit per accept"
            print(f"{label:<24} {rate:9.0f} accepts/s   {commits:6d} commits")


if __name__ == "__main__":
    main()
