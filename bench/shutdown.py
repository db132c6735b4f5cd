"""How long SIGTERM takes to stop the whole stack (issue 12, item 4), on a linked sandbox stack.

    .venv/bin/python -m bench.shutdown [--reps 3]

Per case, a fresh sandbox stack with the shipped conf and default settings (WA_SHUTDOWN_TIMEOUT 5), linked to
an emulated phone; then SIGTERM to supervisord, as `docker stop` or the launcher would, timed until it exits:
- idle: nothing in flight;
- sends in flight: during a burst of 30 POST /send from threads (the gateway drains them);
- a webhook attempt hanging: an endpoint that never answers, so the gateway's drain runs to its deadline.
Prints, per run, the total and when each program was reported stopped (supervisord's log), and the gateway's
own drain (its ``gateway.drained`` record). Asserts nothing; not part of ``make test`` (tests/system/test_drain_stack.py
checks the same stops for correctness and that they stay under stopwaitsecs).
"""

from __future__ import annotations

import argparse
import re
import threading
import time
from datetime import datetime

from service.webhooks import secret as webhook_secret
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, wait_for
from tests.helpers.webhook_receiver import HANG, Receiver

FAST = {"WA_SEND_BURST": "1000", "WA_SEND_RATE_PER_MINUTE": "600000", "WA_SEND_JITTER": "0"}
STOPPED = re.compile(r"^(\S+ \S+) INFO stopped: (\S+) \(exit status (\d+)\)")


def measure(case: str) -> str:
    receiver = None
    env = dict(FAST)
    if case == "webhook attempt hanging":
        secret = webhook_secret.generate()
        receiver = Receiver(secret, lambda r: HANG).start()
        env |= {"WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}
    stack = Stack(env, sandbox=True)
    try:
        stack.start()
        pair(stack)
        answers: list = []
        threads = []
        if case == "sends in flight":
            def send(n: int) -> None:
                try:
                    res = stack.post("/send?wait=0", {"phone_number": f"+1555000{n % 5 + 51}00", "message": f"m{n}"},
                                     timeout=10)
                    answers.append(res.status)
                except OSError as exc:
                    answers.append(type(exc).__name__)
            threads = [threading.Thread(target=send, args=(n,)) for n in range(30)]
            for thread in threads:
                thread.start()
            wait_for(lambda: len(answers) >= 10, 20, "the burst under way")
        if receiver is not None:
            wait_for(receiver.snapshot, 20, "a webhook attempt")
        signalled, began = datetime.now(), time.monotonic()
        code = stack.stop()
        total = time.monotonic() - began
        for thread in threads:
            thread.join(15)
        stops = [(m.group(2), (datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") - signalled).total_seconds())
                 for m in map(STOPPED.match, stack.logs().splitlines()) if m]
        drained = [r for r in stack.log_events() if r.get("event") == "gateway.drained"][-1]
        programs = ", ".join(f"{name} {at:.2f}" for name, at in stops)
        return (f"{case:24} {total:5.2f} s (exit {code}); stopped at: {programs}; gateway drain "
                f"{drained['duration_ms']} ms, sends {drained.get('dispatch')}, webhooks {drained.get('webhooks')}")
    finally:
        stack.cleanup()
        if receiver is not None:
            receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.reps):
        for case in ("idle", "sends in flight", "webhook attempt hanging"):
            print(measure(case), flush=True)


if __name__ == "__main__":
    main()
