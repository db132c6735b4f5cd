"""Group send throughput (issue 26): text to a 50-member group through a paired sandbox stack, against a bare
Baileys client sending to a 50-member group of its own in the same emulator (bench/bare-baileys-groups.mjs), in
the same run. Run with ``.venv/bin/python -m bench.groups [--members 50] [--n1 30] [--n8 60]``.

- Gateway: ``POST /groups`` with 50 emulator contacts, then ``POST /send {"group_id", "message"}``, each caller
  waiting for ``sent`` (WhatsApp's server ack) with 1 or 8 callers, from the first request to the last ``sent``.
- Bare: ``sock.groupCreate`` with 50 other contacts, then ``sock.sendMessage(group, {text})`` awaited to the
  server's ``<ack class=message>`` with 1 or 8 lanes (Baileys given the group's metadata as
  ``cachedGroupMetadata``, as the worker gives it its own cache).

The first message of each group is sent alone and timed apart (``first_ms``): it carries the sender key
distribution, one pkmsg to each of the 50 members' devices after fetching their device lists and prekeys; the
runs after it (the steady state) send one skmsg each, which the server fans out. The send governor is out of the
way (WA_SEND_* and WA_GROUP_SEND_* raised, no jitter). After each run, untimed, three members' phones are checked
to have decrypted every message of it. The figures are sends/s and the ratio gateway / bare; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.e2e import cpu_ms_per_message, cpu_seconds
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, wait_for

REPO = Path(__file__).resolve().parent.parent
BARE = REPO / "bench" / "bare-baileys-groups.mjs"
GATEWAY_PHONE = "+15550011000"
BARE_PHONE = "+15550011100"
ENV = {"WA_SEND_BURST": "100000", "WA_SEND_RATE_PER_MINUTE": "1000000", "WA_SEND_JITTER": "0",
       "WA_GROUP_SEND_BURST": "100000", "WA_GROUP_SEND_RATE_PER_MINUTE": "1000000", "WA_SEND_WAIT": "30"}
DEFAULT_RUNS = ((1, 30), (8, 60))  # (concurrency, messages): the emulator allows about 1.3 a second (docs)
SENT = ("sent", "delivered", "read")


def members(prefix: str, count: int) -> list[str]:
    """``count`` emulator contacts (any number is a phone on WhatsApp in the emulator)."""
    return [f"+1555{prefix}{i:03d}" for i in range(count)]


class BareGroups:
    """bench/bare-baileys-groups.mjs as a child: READY once its group and first message are done, RUN per run."""

    def __init__(self, stack: Stack, account: str, phones: list[str], tag: str):
        self.proc = subprocess.Popen(["node", str(BARE), stack.emulator, account, ",".join(phones), tag],
                                     cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def line(self, prefix: str) -> dict:
        skipped = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # the script gives up by itself after 180 s
            if line.startswith(prefix + " "):
                return json.loads(line[len(prefix) + 1:])
            skipped.append(line)
        raise RuntimeError(f"bare-baileys-groups.mjs exited {self.proc.wait(5)} without {prefix}: "
                           f"{''.join(skipped)[-2000:]}")

    def run(self, concurrency: int, n: int, tag: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {concurrency} {n} {tag}\n")
        self.proc.stdin.flush()
        return self.line("RUN")

    def finish(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.line("CPU")
        except (RuntimeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def decrypted(stack: Stack, phones: list[str], texts: set[str], timeout: float = 60) -> int:
    """How many of ``phones`` (the first, middle and last member) decrypted every text, waiting up to ``timeout``."""
    sample = sorted({phones[0], phones[len(phones) // 2], phones[-1]})

    def complete(phone: str) -> bool:
        got = {m["text"] for m in stack.emu("GET", f"/contacts/{phone}/messages").json() if m.get("group_id")}
        return texts <= got
    try:
        wait_for(lambda: all(complete(p) for p in sample), timeout, f"{len(texts)} group messages decrypted")
    except AssertionError:
        pass
    return sum(complete(p) for p in sample)


def send_sent(stack: Stack, group: str, text: str) -> str:
    """POST /send to the group, answered once sent (or polled to it when the answer was 202 queued)."""
    res = stack.post("/send", {"group_id": group, "message": text}, timeout=60)
    if res.status not in (200, 202):
        return str(res.status)
    body = res.json()
    if body["status"] in SENT:
        return body["status"]
    return wait_for(lambda: (s := stack.get(f"/messages/{body['id']}").json()["status"]) not in ("queued", "sending")
                    and s, 60, f"message {body['id']} sent")


def gateway_group(stack: Stack, phones: list[str], tag: str) -> dict:
    """POST /groups, then the group's first message alone: {"group_id", "create_ms", "first_ms", "first_status"}."""
    started = time.perf_counter()
    res = stack.post("/groups", {"subject": f"{tag} bench", "participants": phones}, timeout=60)
    if res.status not in (200, 201):
        raise RuntimeError(f"POST /groups: {res.status} {res.raw[:300]!r}")
    created = res.json()
    create_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    status = send_sent(stack, created["id"], f"{tag} first")
    return {"group_id": created["id"], "participants": len(created["participants"]), "create_ms": round(create_ms, 1),
            "first_ms": round((time.perf_counter() - started) * 1000, 1), "first_status": status}


def gateway_run(stack: Stack, group: str, n: int, concurrency: int, tag: str) -> dict:
    statuses: dict[str, int] = {}

    def send(i: int) -> None:
        status = send_sent(stack, group, f"{tag} {i}")
        statuses[status] = statuses.get(status, 0) + 1

    cpu_before = cpu_seconds(stack)
    start = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(n)))
    seconds = time.time() - start
    return {"n": n, "concurrency": concurrency, "per_s": round(n / seconds, 2), "seconds": round(seconds, 3),
            "statuses": statuses, "cpu_ms_per_message": cpu_ms_per_message(cpu_before, cpu_seconds(stack), n)}


def bare_run(stack: Stack, bare: BareGroups, n: int, concurrency: int, tag: str) -> dict:
    cpu_before = cpu_seconds(stack)
    got = bare.run(concurrency, n, tag)
    cpu = cpu_ms_per_message(cpu_before, cpu_seconds(stack), n)
    cpu["bare"] = round(got["cpu_ms"] / n, 2)
    seconds = got["send_end"] - got["send_start"]
    return {"n": n, "concurrency": concurrency, "per_s": round(n / seconds, 2), "seconds": round(seconds, 3),
            "errors": got["errors"], "cpu_ms_per_message": cpu}


def measure(runs=DEFAULT_RUNS, size: int = 50) -> dict:
    """{"members", "first": {"gateway", "bare"}, "runs": {c: {"gateway", "bare", "ratio"}}}; ratio = gateway / bare."""
    result: dict = {"members": size, "first": {}, "runs": {}}
    gw_members, bare_members = members("0012", size), members("0013", size)
    with Stack(ENV, sandbox=True) as stack:
        pair(stack, GATEWAY_PHONE)
        bare = BareGroups(stack, BARE_PHONE, bare_members, "bare-first")
        try:
            result["first"]["bare"] = bare.line("READY")
            result["first"]["gateway"] = gw = gateway_group(stack, gw_members, "gw-first")
            result["first"]["decrypted"] = {
                "bare": decrypted(stack, bare_members, {"bare-first first"}),
                "gateway": decrypted(stack, gw_members, {"gw-first first"})}
            for c, n in runs:
                b = bare_run(stack, bare, n, c, f"bare-c{c}")
                b["decrypted"] = decrypted(stack, bare_members, {f"bare-c{c} {i}" for i in range(n)})
                g = gateway_run(stack, gw["group_id"], n, c, f"gw-c{c}")
                g["decrypted"] = decrypted(stack, gw_members, {f"gw-c{c} {i}" for i in range(n)})
                result["runs"][c] = {"gateway": g, "bare": b, "ratio": round(g["per_s"] / b["per_s"], 3)}
        finally:
            bare.finish()
    return result


def print_table(result: dict) -> None:
    first = result["first"]
    print(f"groups: text to a {result['members']}-member group, each send to the server ack (sandbox stack, "
          "governors off); ratio = gateway / bare")
    print(f"  first message (sender key distribution to every member): bare {first['bare']['first_ms']:.0f} ms, "
          f"gateway {first['gateway']['first_ms']:.0f} ms; group creation: bare {first['bare']['create_ms']:.0f} ms,"
          f" gateway {first['gateway']['create_ms']:.0f} ms")
    print(f"{'concurrency':>11} {'N':>5} {'bare/s':>8} {'gw/s':>8} {'ratio':>6}  decrypted by the 3 sampled members")
    for c, row in result["runs"].items():
        gw, bare = row["gateway"], row["bare"]
        print(f"{c:>11} {gw['n']:>5} {bare['per_s']:>8.1f} {gw['per_s']:>8.1f} {row['ratio']:>6.2f}  "
              f"gw {gw['decrypted']}/3, bare {bare['decrypted']}/3; gw statuses {gw['statuses']}, bare errors "
              f"{bare['errors']}")
    print("CPU ms per message (user+system), by process:")
    for c, row in result["runs"].items():
        for label in ("bare", "gateway"):
            used = row[label]["cpu_ms_per_message"]
            print(f"  c={c:<3} {label:<7} " + "  ".join(f"{k.split(':')[0]} {v:.2f}" for k, v in used.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50, help="group members besides the account (default 50)")
    parser.add_argument("--n1", type=int, default=30, help="messages at concurrency 1 (default 30)")
    parser.add_argument("--n8", type=int, default=60, help="messages at concurrency 8 (default 60)")
    args = parser.parse_args()
    print_table(measure(((1, args.n1), (8, args.n8)), args.members))


if __name__ == "__main__":
    main()
