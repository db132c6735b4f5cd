"""Memory per linked idle account and the start-up time of many accounts, on one sandbox stack (issue 10).

    .venv/bin/python -m bench.accounts [--levels 1,10,30] [--idle 10]

Creates accounts through the API and links each to its own emulated phone, up to each level; after
``--idle`` seconds of quiet reads the RSS of the worker process(es) (``/health``: ``worker.pid``, or
every shard's pid when the health lists ``shards``) and of the gateway (the process listening on the
API port). Then ``stack.stop(); stack.start()`` and the time until every account is connected again
(polling ``GET /accounts``; ``default`` stays unlinked and is not counted). Prints a table; asserts nothing; not
part of ``make test``.
"""

from __future__ import annotations

import argparse
import time

import psutil

from tests.helpers.stack import Stack, wait_for


def link(stack: Stack, name: str, phone: str) -> None:
    res = stack.post(f"/accounts/{name}/connect")
    assert res.status == 200, res.raw
    status = res.json()
    if status["state"] != "qr":
        status = wait_for(lambda: (s := stack.get(f"/accounts/{name}/status").json())["state"] == "qr" and s,
                          20, f"{name}'s QR")
    res = stack.emu("POST", "/phone/scan", {"phone_number": phone, "qr": status["qr"]})
    assert res.status == 200, res.raw
    wait_for(lambda: stack.get(f"/accounts/{name}/status").json()["state"] == "connected", 30, f"{name} connected")


def worker_pids(stack: Stack) -> list[int]:
    health = stack.health()
    shards = health.get("shards")
    if isinstance(shards, list) and shards:
        return [s["pid"] for s in shards if s.get("pid")]
    return [health["worker"]["pid"]]


def gateway_pid(stack: Stack) -> int:
    for conn in psutil.net_connections("inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == stack.port and conn.pid:
            return conn.pid
    raise RuntimeError("no process listens on the API port")


def rss_mb(pids: list[int]) -> float:
    return sum(psutil.Process(p).memory_info().rss for p in pids) / 2**20


def connected(stack: Stack) -> tuple[int, int]:
    accounts = [a for a in stack.get("/accounts", timeout=10).json()["accounts"] if a["name"] != "default"]
    return sum(a["state"] == "connected" for a in accounts), len(accounts)


def measure(levels: tuple[int, ...] = (1, 10, 30), idle: float = 10.0) -> dict:
    """Worker and gateway RSS with 0 and then ``levels`` linked accounts, and a whole restart to every
    account connected again."""
    stack = Stack({"WA_MAX_ACCOUNTS": str(max(levels) + 1)}, sandbox=True)
    rows = []
    try:
        stack.start()
        time.sleep(idle)
        base_worker, base_gateway = rss_mb(worker_pids(stack)), rss_mb([gateway_pid(stack)])
        rows.append({"accounts": 0, "worker_mb": base_worker, "gateway_mb": base_gateway})
        made = 0
        for level in levels:
            link_started = time.monotonic()
            while made < level:
                made += 1
                name = f"acct-{made:03d}"
                res = stack.post("/accounts", {"name": name})
                assert res.status == 201, res.raw
                link(stack, name, f"+1555077{made:04d}")
            link_s = time.monotonic() - link_started
            time.sleep(idle)
            worker, gateway = rss_mb(worker_pids(stack)), rss_mb([gateway_pid(stack)])
            rows.append({"accounts": level, "worker_mb": worker, "gateway_mb": gateway,
                         "worker_mb_per_account": (worker - base_worker) / level,
                         "gateway_mb_per_account": (gateway - base_gateway) / level, "link_s": link_s})
        # A whole restart: supervisord start to every account connected again.
        assert stack.stop() == 0
        started = time.monotonic()
        stack.start()
        up = time.monotonic() - started
        first_all = wait_for(lambda: (c := connected(stack))[0] == c[1] and c, 120, "every account connected")
        all_s = time.monotonic() - started
    finally:
        stack.cleanup()
    return {"levels": rows, "restart_up_s": up, "restart_all_connected_s": all_s, "accounts_restarted": first_all[1]}


def print_table(result: dict) -> None:
    def fmt(v):
        return (f"{v:.1f}" if v is not None else "-")
    print(f"{'linked':>6} {'worker MB':>10} {'gateway MB':>11} {'worker MB/acct':>15} {'gateway MB/acct':>16}"
          f" {'link s':>7}")
    for row in result["levels"]:
        print(f"{row['accounts']:>6} {row['worker_mb']:>10.1f} {row['gateway_mb']:>11.1f} "
              f"{fmt(row.get('worker_mb_per_account')):>15} {fmt(row.get('gateway_mb_per_account')):>16} "
              f"{fmt(row.get('link_s')):>7}")
    print(f"restart (stack.stop(); stack.start()): supervisord start -> /health up {result['restart_up_s']:.1f} s; "
          f"-> all {result['accounts_restarted']} created accounts connected {result['restart_all_connected_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,10,30")
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    print_table(measure(tuple(int(x) for x in args.levels.split(",")), args.idle))


if __name__ == "__main__":
    main()
