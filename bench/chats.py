"""Chats and contacts at a million messages (issue 27): a real gateway's data dir holds N messages over 5,000
contacts and 50 groups (bench/chats_build.py, through the store's own write functions), then the real gateway
(``wa-gateway run`` under supervisord, its worker not linked) answers the chats routes over HTTP with the admin key,
sequentially on one keep-alive connection. The same at a small size (10,000) gives the ratio large/small per route:
an indexed route reads one index range whatever N is, so its ratio stays near 1 (the verdict's limit: 2). A search
that finds no match reads every message of the account (a LIKE on the text: no index can serve a substring), so
its time grows with N: measured and shown as it is. Beside each figure, the EXPLAIN QUERY PLAN of every statement
the route's store function runs (recorded by running that function on the built store, the gateway stopped).

    .venv/bin/python -m bench.chats [--messages 1000000] [--small 10000] [--pg-messages 100000]

Or ``make bench BENCH_ARGS="--only chats --out bench/results-chats.json"`` (``--chats-messages``,
``--chats-pg-messages``: 0 skips PostgreSQL). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
import urllib.parse
from typing import Any

from bench import chats_build
from bench.chats_build import ACCOUNT, HIT, MISS
from service.http.views.chats import encode_cursor
from service.store import chat_index, chat_reads, contact_profiles
from service.store.engine import open_database
from tests.helpers.stack import API_KEY, Stack

LIMIT_RATIO = 2.0  # an indexed route at N against at the small size, p50
MAX_SAMPLES, MAX_SECONDS, WARM_UP = 100, 15.0, 3
INDEXED = ("chats_first", "chats_deep", "messages_busy", "messages_deep", "search_hit", "contacts", "contact",
           "read_nothing_unread", "read_unread")


def _q(chat: str) -> str:
    return urllib.parse.quote(chat, safe="@")


def routes(target: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
    """name -> (method, path, expected status). The deep cursors are what a client paging that far holds."""
    busy, deep_chat, deep_msg = target["busy_chat"], target["deep_chat"], target["deep_message"]
    return {
        "chats_first": ("GET", "/chats?limit=50", 200),
        "chats_deep": ("GET", f"/chats?limit=50&cursor={encode_cursor('c1', deep_chat[0], deep_chat[1])}", 200),
        "messages_busy": ("GET", f"/chats/{_q(busy)}/messages?limit=50", 200),
        "messages_deep": ("GET", f"/chats/{_q(busy)}/messages?limit=50&cursor="
                                 f"{encode_cursor('h1', deep_msg[0], deep_msg[1])}", 200),
        "search_hit": ("GET", f"/messages/search?q={HIT}&limit=50", 200),
        "search_miss": ("GET", f"/messages/search?q={MISS}&limit=50", 200),
        "contacts": ("GET", "/contacts?limit=50", 200),
        "contact": ("GET", f"/contacts/{_q(target['contact'])}", 200),
        "read_nothing_unread": ("POST", f"/chats/{_q(target['read_chat'])}/read", 200),
        # A chat with unread messages: found, its newest unread one found, then 409 not_linked (no linked phone
        # here to send the receipt to), so it stays unread and can be asked again.
        "read_unread": ("POST", f"/chats/{_q(target['unread_chats'][0])}/read", 409),
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    p99 = statistics.quantiles(samples, n=100)[98] if len(samples) >= 20 else max(samples)
    return {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(p99, 2), "count": len(samples)}


def timed(port: int, method: str, path: str, expected: int) -> dict[str, Any]:
    """Sequential requests on one keep-alive connection: a few warm-up ones, then up to MAX_SAMPLES or
    MAX_SECONDS, whichever comes first (at least 5)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"X-API-Key": API_KEY, **({"Content-Length": "0"} if method == "POST" else {})}
    samples: list[float] = []
    started = time.monotonic()
    size = 0
    try:
        for k in range(WARM_UP + MAX_SAMPLES):
            t0 = time.perf_counter()
            conn.request(method, path, headers=headers)
            res = conn.getresponse()
            body = res.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if res.status != expected:
                raise RuntimeError(f"{method} {path}: {res.status} {body[:300]!r}")
            size = len(body)
            if k >= WARM_UP:
                samples.append(elapsed)
            if len(samples) >= 5 and time.monotonic() - started > MAX_SECONDS:
                break
    finally:
        conn.close()
    return {**_percentiles(samples), "bytes": size}


class Recorder:
    """The store connection, recording each statement a store function runs (to EXPLAIN it)."""

    def __init__(self, conn: Any):
        self._conn, self.statements = conn, list[tuple[str, tuple[Any, ...]]]()

    def execute(self, sql: str, args: Any = ()) -> Any:
        self.statements.append((sql, tuple(args)))
        return self._conn.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _store_calls(target: dict[str, Any]) -> dict[str, Any]:
    """route -> the store function its view runs (with what the route asks), for EXPLAIN."""
    busy, deep_chat, deep_msg = target["busy_chat"], target["deep_chat"], target["deep_message"]
    return {
        "chats_first": lambda c: chat_reads.list_chats(c, ACCOUNT, limit=51),
        "chats_deep": lambda c: chat_reads.list_chats(c, ACCOUNT, limit=51, before=tuple(deep_chat)),
        "messages_busy": lambda c: chat_reads.chat_messages(c, ACCOUNT, busy, limit=51),
        "messages_deep": lambda c: chat_reads.chat_messages(c, ACCOUNT, busy, limit=51, before=tuple(deep_msg)),
        "search_hit": lambda c: chat_reads.search(c, ACCOUNT, contact_profiles.like(HIT), chat=None, limit=51),
        "search_miss": lambda c: chat_reads.search(c, ACCOUNT, contact_profiles.like(MISS), chat=None, limit=51),
        "contacts": lambda c: contact_profiles.list_contacts(c, ACCOUNT, limit=51),
        "contact": lambda c: contact_profiles.get(c, ACCOUNT, target["contact"]),
        "read_nothing_unread": lambda c: chat_index.newest_unread(c, ACCOUNT, target["read_chat"]),
        "read_unread": lambda c: chat_index.newest_unread(c, ACCOUNT, target["unread_chats"][0]),
    }


def _explain_one(conn: Any, sql: str, args: tuple[Any, ...]) -> list[str]:
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        return [str(r[0]) for r in conn.execute("EXPLAIN " + sql, args).fetchall()]
    return [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()]


def explain(db: Any, target: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """route -> [{"sql", "plan"}] for each SELECT its store function ran."""
    def run(conn: Any) -> dict[str, list[dict[str, Any]]]:
        plans: dict[str, list[dict[str, Any]]] = {}
        for name, call in _store_calls(target).items():
            recorder = Recorder(conn)
            call(recorder)
            # At most 20 lines a plan: bench/run.py leaves longer lists out of the results file.
            plans[name] = [{"sql": " ".join(sql.split())[:400], "plan": _explain_one(conn, sql, args)[:20]}
                           for sql, args in recorder.statements if sql.lstrip().upper().startswith("SELECT")]
        return plans
    return db.call(run)


def one_size(n: int, database_url: str | None = None) -> dict[str, Any]:
    """Build ``n`` messages into a fresh data dir (or PostgreSQL database), EXPLAIN the routes' statements on it,
    then measure the routes on a real gateway."""
    env = {"WA_DATABASE_URL": database_url} if database_url else {}
    stack = Stack(env)
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(database_url or "", stack.data_dir / "gateway.db",
                       **({} if database_url else {"synchronous": "NORMAL"})).open()
    try:
        print(f"building {n:,} messages ({'PostgreSQL' if database_url else 'SQLite'})", flush=True)
        built = chats_build.build(db, n)
        target = chats_build.busiest(db)
        if database_url:  # the statistics autovacuum would gather within a minute, before the plans
            db.call(lambda conn: conn.execute("ANALYZE"))
        plans = explain(db, target)  # on the built store (the data dir goes with the stack, below)
    finally:
        db.close()
    print(f"built in {built['build_s']} s: {target['rows']}", flush=True)
    if not database_url:
        built["db_mb"] = round(sum(p.stat().st_size for p in stack.data_dir.glob("gateway.db*")) / 2**20, 1)
    result: dict[str, Any] = {"build": built, "target": {k: v for k, v in target.items() if k != "unread_chats"},
                              "routes": {}, "plans": plans}
    stack.start()
    try:
        for name, (method, path, expected) in routes(target).items():
            result["routes"][name] = timed(stack.port, method, path, expected)
            r = result["routes"][name]
            print(f"  {name:<20} p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms  ({r['count']})", flush=True)
    finally:
        stack.cleanup()
    return result


def verdicts(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """route -> p50 ratio large/small, and whether it is within LIMIT_RATIO (search_miss is measured, not held)."""
    out = {}
    for name, big in large["routes"].items():
        base = small["routes"][name]["p50_ms"]
        ratio = round(big["p50_ms"] / base, 2) if base else None
        out[name] = {"ratio": ratio, "limit": LIMIT_RATIO,
                     "within": ratio is not None and ratio <= LIMIT_RATIO, "indexed": name in INDEXED}
    return out


def measure(messages: int = 1_000_000, small: int = 10_000, pg_messages: int = 100_000) -> dict[str, Any]:
    result: dict[str, Any] = {"sqlite": {"small": one_size(small), "large": one_size(messages)}}
    result["sqlite"]["verdict"] = verdicts(result["sqlite"]["small"], result["sqlite"]["large"])
    if pg_messages:
        from tests.helpers.postgres import PostgresServer, PostgresUnavailable
        try:
            server = PostgresServer()
        except PostgresUnavailable as exc:
            result["postgresql"] = {"error": str(exc)}
            return result
        server.start()
        try:
            pg = {"small": one_size(small, server.create_database()),
                  "large": one_size(pg_messages, server.create_database())}
            pg["verdict"] = verdicts(pg["small"], pg["large"])
            result["postgresql"] = pg
        except Exception as exc:  # SQLite's figures are kept whatever PostgreSQL does
            result["postgresql"] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            server.stop()
    return result


def print_table(result: dict[str, Any]) -> None:
    for engine in ("sqlite", "postgresql"):
        r = result.get(engine)
        if not r or "error" in r:
            print(f"{engine}: {r.get('error') if r else 'not run'}")
            continue
        small, large = r["small"], r["large"]
        print(f"\n{engine}: {small['build']['n']:,} messages (built in {small['build']['build_s']} s) against "
              f"{large['build']['n']:,} (built in {large['build']['build_s']} s)")
        print(f"{'route':<22} {'p50 small':>10} {'p99 small':>10} {'p50 large':>10} {'p99 large':>10} "
              f"{'ratio':>6} {'limit':>6}")
        for name, v in r["verdict"].items():
            s, b = small["routes"][name], large["routes"][name]
            mark = "ok" if v["within"] else "OVER"
            print(f"{name:<22} {s['p50_ms']:>10.2f} {s['p99_ms']:>10.2f} {b['p50_ms']:>10.2f} {b['p99_ms']:>10.2f} "
                  f"{v['ratio']:>6} {v['limit']:>6} {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--pg-messages", type=int, default=100_000, help="0: no PostgreSQL")
    args = parser.parse_args()
    print_table(measure(args.messages, args.small, args.pg_messages))


if __name__ == "__main__":
    main()
