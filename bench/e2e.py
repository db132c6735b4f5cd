"""End-to-end sends per second: ``POST /send`` on a paired sandbox stack to decrypted at an emulator
contact, against a bare Baileys client sending straight into the same emulator (bench/bare-baileys.mjs),
at concurrency 1 and 16, measured in the same run. Run with ``.venv/bin/python -m bench.e2e``.

The gateway's send governor and jitter are turned off (WA_SEND_BURST, WA_SEND_RATE_PER_MINUTE,
WA_SEND_JITTER) so that the pipeline is measured, not the pacing meant for the real WhatsApp. Every
load is bounded (N messages, a deadline per wait); the numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, wait_for

REPO = Path(__file__).resolve().parent.parent
BARE = REPO / "bench" / "bare-baileys.mjs"
GATEWAY_PHONE = "+15550007000"
BARE_PHONE = "+15550007100"
UNPACED = {"WA_SEND_BURST": "100000", "WA_SEND_RATE_PER_MINUTE": "1000000", "WA_SEND_JITTER": "0"}
DEFAULT_RUNS = ((1, 200), (16, 400))  # (concurrency, messages)


PROGRAMS = ("gateway", "worker:worker-0", "emulator")


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) each program of the stack has used so far, and supervisord's: it reads every
    log line of every program from a pipe and writes it out again, on the same two cores."""
    out = {}
    for name in PROGRAMS:
        process = psutil.Process(stack.process_info(name)["pid"])
        times = process.cpu_times()
        out[name] = times.user + times.system
        if name == "gateway" and (parent := process.parent()) is not None:
            out["supervisord"] = sum(parent.cpu_times()[:2])
    return out


def cpu_ms_per_message(before: dict, after: dict, n: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) * 1000 / n, 2) for name in after if name in before}


def wait_decrypted(stack: Stack, contact: str, texts: set[str], timeout: float) -> float:
    """Polls the contact's inbox until every text arrived decrypted; the time it saw the last one."""
    def done() -> bool:
        got = {m["text"] for m in stack.emu("GET", f"/contacts/{contact}/messages").json()}
        return texts <= got
    wait_for(done, timeout, f"{len(texts)} messages decrypted at {contact}", interval=0.02)
    return time.time()


def gateway_rate(stack: Stack, contact: str, n: int, concurrency: int, timeout: float = 120, wait: str = "") -> dict:
    """``wait=""``: POST /send as is (answers once the message is sent, or 202 after a short wait);
    ``wait="0"``: durable acceptance (202 once committed), the dispatcher sends behind it."""
    tag = f"gw-c{concurrency}{'-w' + wait if wait else ''}"
    path = f"/send?wait={wait}" if wait else "/send"
    stack.post("/send", {"phone_number": contact, "message": f"{tag} warm-up"})
    wait_decrypted(stack, contact, {f"{tag} warm-up"}, 15)
    texts = [f"{tag} {i}" for i in range(n)]
    statuses: dict[int, int] = {}

    def send(text: str) -> None:
        res = stack.post(path, {"phone_number": contact, "message": text}, timeout=30)
        statuses[res.status] = statuses.get(res.status, 0) + 1

    cpu_before = cpu_seconds(stack)
    start = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, texts))
    accepted = time.time()
    end = wait_decrypted(stack, contact, set(texts), timeout)
    return {"n": n, "concurrency": concurrency, "per_s": n / (end - start), "seconds": end - start,
            "api_seconds": accepted - start, "http_statuses": statuses,
            "cpu_ms_per_message": cpu_ms_per_message(cpu_before, cpu_seconds(stack), n)}


def bare_rate(stack: Stack, phone: str, contact: str, n: int, concurrency: int, timeout: float = 120) -> dict:
    tag = f"bare-c{concurrency}"
    proc = subprocess.Popen(
        ["node", str(BARE), stack.emulator, phone, contact, str(n), str(concurrency), tag],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        cpu_before = cpu_seconds(stack)
        # the script gives up by itself after 60 s; anything Baileys prints before the result is skipped
        skipped = []
        for line in proc.stdout:
            if line.startswith("BENCH "):
                timing = json.loads(line[6:])
                break
            skipped.append(line)
        else:
            raise RuntimeError(f"bare-baileys.mjs exited {proc.wait(5)} without a result: {''.join(skipped)[-2000:]}")
        end = wait_decrypted(stack, contact, {f"{tag} {i}" for i in range(n)}, timeout)
        start = timing["send_start"]
        cpu = cpu_ms_per_message(cpu_before, cpu_seconds(stack), n)
        proc.stdin.close()  # the script reports its own CPU from its first send to now, then ends
        for line in proc.stdout:
            if line.startswith("CPU "):
                cpu["bare"] = round(json.loads(line[4:])["cpu_ms"] / n, 2)
                break
        return {"n": n, "concurrency": concurrency, "per_s": n / (end - start), "seconds": end - start,
                "api_seconds": timing["send_end"] - start, "pair_seconds": timing["paired_s"],
                "errors": timing["errors"], "cpu_ms_per_message": cpu}
    finally:
        if not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(runs=DEFAULT_RUNS) -> dict:
    """Per concurrency: the bare Baileys rate, the gateway's rate with durable acceptance (``wait=0``, the
    e2e figure) and with POST /send's default wait for ``sent`` (each caller waits for its message's round
    trip), all in one run on one emulator.
    {"e2e_per_s": {c: rate}, "bare_per_s": {c: rate}, "e2e_ratio": {c: ratio}, "e2e_wait_per_s": ..., "detail": ...}"""
    stack = Stack(UNPACED, sandbox=True).start()
    try:
        pair(stack, GATEWAY_PHONE)
        result: dict = {"e2e_per_s": {}, "bare_per_s": {}, "e2e_ratio": {}, "e2e_wait_per_s": {},
                        "e2e_wait_ratio": {}, "detail": {}}
        for k, (concurrency, n) in enumerate(runs):
            bare = bare_rate(stack, f"{BARE_PHONE[:-1]}{k}", f"+1555000810{k}", n, concurrency)
            gw = gateway_rate(stack, f"+1555000800{k}", n, concurrency, wait="0")
            waited = gateway_rate(stack, f"+1555000820{k}", n, concurrency)
            result["e2e_per_s"][concurrency] = round(gw["per_s"], 1)
            result["bare_per_s"][concurrency] = round(bare["per_s"], 1)
            result["e2e_ratio"][concurrency] = round(gw["per_s"] / bare["per_s"], 3)
            result["e2e_wait_per_s"][concurrency] = round(waited["per_s"], 1)
            result["e2e_wait_ratio"][concurrency] = round(waited["per_s"] / bare["per_s"], 3)
            result["detail"][concurrency] = {"gateway": gw, "gateway_wait": waited, "bare": bare}
        return result
    finally:
        stack.stop()
        stack.cleanup()


def print_table(result: dict) -> None:
    print("end to end: send -> decrypted at an emulator contact (sandbox stack, governor off)")
    print(f"{'concurrency':>11} {'N':>5} {'bare/s':>8} {'wait=0/s':>9} {'ratio':>6} {'waited/s':>9} {'ratio':>6}"
          f" {'wait=0 API s':>12}")
    for c, d in result["detail"].items():
        print(f"{c:>11} {d['gateway']['n']:>5} {d['bare']['per_s']:>8.1f} {d['gateway']['per_s']:>9.1f} "
              f"{result['e2e_ratio'][c]:>6.2f} {d['gateway_wait']['per_s']:>9.1f} {result['e2e_wait_ratio'][c]:>6.2f}"
              f" {d['gateway']['api_seconds']:>12.2f}")
    print("CPU ms per message (user+system), by process:")
    for c, d in result["detail"].items():
        for label, key in (("bare", "bare"), ("wait=0", "gateway"), ("waited", "gateway_wait")):
            cpu = d[key].get("cpu_ms_per_message", {})
            print(f"  c={c:<3} {label:<7} " + "  ".join(f"{k.split(':')[0]} {v:.2f}" for k, v in cpu.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n1", type=int, default=200, help="messages at concurrency 1")
    parser.add_argument("--n16", type=int, default=400, help="messages at concurrency 16")
    args = parser.parse_args()
    print_table(measure(((1, args.n1), (16, args.n16))))


if __name__ == "__main__":
    main()
