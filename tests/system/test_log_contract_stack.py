"""The gateway's side of the one log stream: contract keys, level names, one write(2) per record of at
most PIPE_BUF bytes, so that several programs sharing one pipe (as under supervisord) never merge lines.

Each case runs in a subprocess: logging is process-wide configuration.

(The part without a stack is in tests/app/test_log_contract.py.)
"""

from __future__ import annotations

import json

ALLOWED_LEVELS = {"debug", "info", "warning", "error", "critical"}
SUPERVISORD_LINE = __import__("re").compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@__import__("pytest").mark.system
def test_under_load_every_line_of_the_shared_stream_is_one_whole_record(make_stack):
    """Four programs log at debug level into supervisord while the gateway is under concurrent load;
    every line of the shared stdout is either one whole contract record or one of supervisord's own."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers.sandbox import CONTACT, pair

    # The governor out of the way (every send goes out, and logs), and no waiting for server acks.
    stack = make_stack({"WA_LOG_LEVEL": "debug", "WA_BAILEYS_LOG_LEVEL": "debug", "WA_SEND_BURST": "1000",
                        "WA_SEND_RATE_PER_MINUTE": "600000", "WA_SEND_JITTER": "0"}, sandbox=True)
    pair(stack)

    def burst(n):
        for i in range(25):
            stack.get("/status")
            stack.post("/send?wait=0", {"phone_number": CONTACT, "message": f"load {n}-{i}"})
            stack.get("/nope")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(burst, range(8)))
    stack.stop()
    programs = set()
    for line in stack.logs().splitlines():
        if SUPERVISORD_LINE.match(line):
            continue
        record = json.loads(line)  # a merged or split record would not parse
        assert list(record)[:4] == ["timestamp", "level", "event", "program"], line[:200]
        assert record["level"] in ALLOWED_LEVELS, line[:200]
        assert len(line.encode()) + 1 <= 4096
        programs.add(record["program"])
    assert programs == {"gateway", "worker", "emulator", "watchdog"}
