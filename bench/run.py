"""Benchmarks: start a real stack (sandbox: emulator, worker, gateway under supervisord), measure,
print medians and ratios. Run with ``.venv/bin/python -m bench.run [--requests N]``.

Numbers are printed, never asserted: this machine's load varies, ratios between endpoints measured
in the same run are what to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tests.stack import Stack, http, wait_for


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    n = args.requests
    with Stack(sandbox=True) as stack:
        status = stack.post("/connect").json()
        stack.emu("POST", "/phone/scan", {"phone_number": "+15550001111", "qr": status["qr"]})
        stack.wait_state("connected", 30)
        print(f"wa-gateway bench: {n} sequential requests per row, one run")
        base = report("GET /health/live (gateway only)", timed(n, lambda: stack.get("/health/live")), None)
        report("GET /status (gateway -> worker)", timed(n, lambda: stack.get("/status")), base)
        report("GET /health (+ supervisord, psutil)", timed(n, lambda: stack.get("/health")), base)
        report("POST /send 400 (validation only)",
               timed(n, lambda: stack.post("/send", {"phone_number": "x", "message": "y"})), base)
        sends = max(10, n // 4)
        counter = iter(range(10**9))
        report(f"POST /send to the emulator ({sends})",
               timed(sends, lambda: stack.post("/send", {"phone_number": "+15550002222",
                                                       "message": f"bench {next(counter)}"})), base)
        wait_for(lambda: len(http("GET", stack.emulator + "/contacts/+15550002222/messages").json()) >= sends,
                 60, "every benchmark message at the contact")


if __name__ == "__main__":
    main()
