"""The gateway's side of the one log stream: contract keys, level names, one write(2) per record of at
most PIPE_BUF bytes, so that several programs sharing one pipe (as under supervisord) never merge lines.

Each case runs in a subprocess: logging is process-wide configuration.

(The whole-stack part is in tests/system/test_log_contract_stack.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.helpers.stack import REPO

ALLOWED_LEVELS = {"debug", "info", "warning", "error", "critical"}


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_records_carry_the_contract_keys_and_level_names():
    out = run_python('''
        import logging, structlog
        from service.logging_setup import configure_logging
        configure_logging(program="gateway", log_format="json", log_level="debug")
        log = structlog.get_logger("x")
        log.debug("a.debug"); log.info("a.info", n=1); log.warning("a.warning"); log.error("a.error")
        log.critical("a.critical")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("a.exception")
        logging.getLogger("aiohttp.server").warning("from the standard library %s", "aiohttp")
    ''').stdout.splitlines()
    records = [json.loads(line) for line in out]
    assert [r["event"] for r in records] == ["a.debug", "a.info", "a.warning", "a.error", "a.critical",
                                             "a.exception", "aiohttp.server"]
    for record in records:
        assert list(record)[:4] == ["timestamp", "level", "event", "program"]
        assert record["program"] == "gateway"
        assert record["level"] in ALLOWED_LEVELS
        assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
    assert records[5]["level"] == "error" and "ZeroDivisionError" in records[5]["exception"]
    assert records[6]["level"] == "warning" and records[6]["message"] == "from the standard library aiohttp"


def test_a_long_record_is_cut_to_one_pipe_buffer_and_says_so():
    out = run_python('''
        import structlog
        from service.logging_setup import configure_logging
        configure_logging(program="gateway", log_format="json", log_level="info")
        structlog.get_logger().info("big.record", blob="é" * 20000, nested={"list": ["x" * 9000]}, keep="short")
    ''').stdout
    line = out.splitlines()[0]
    assert len(line.encode()) + 1 <= 4096
    record = json.loads(line)
    assert record["truncated"] is True and record["keep"] == "short" and record["event"] == "big.record"


def test_console_format_is_one_readable_line_per_record():
    out = run_python('''
        import structlog
        from service.logging_setup import configure_logging
        configure_logging(program="gateway", log_format="console", log_level="info")
        try:
            raise ValueError("boom")
        except ValueError:
            structlog.get_logger().exception("console.exception", port=3001)
        structlog.get_logger().info("console.info", port=3001)
    ''').stdout.splitlines()
    assert len(out) == 2
    assert " error    [gateway] console.exception " in out[0] and "ValueError" in out[0]
    assert out[1].endswith(" info     [gateway] console.info port=3001")
    assert out[1][:4].isdigit() and out[1].split()[0].endswith("Z")


def test_every_record_is_one_write_call():
    out = run_python('''
        import os, structlog
        from service import logging_setup
        calls = []
        real = os.write
        def counting(fd, data):
            calls.append(len(data))
            return real(fd, data)
        logging_setup.os.write = counting
        logging_setup.configure_logging(program="gateway", log_format="json", log_level="info")
        for size in (10, 1000, 4000, 50000):
            structlog.get_logger().info("sized", blob="x" * size)
        logging_setup.os.write = real
        print(calls)
    ''').stdout.splitlines()
    calls = json.loads(out[-1])
    assert len(calls) == 4 and all(n <= 4096 for n in calls)


def test_concurrent_writers_on_one_pipe_never_merge_or_split_records():
    """Six processes log records of up to 4 KB as fast as they can into one pipe, as the programs do
    into supervisord; every line read back is exactly one whole record."""
    writer = textwrap.dedent('''
        import random, sys, structlog
        from service.logging_setup import configure_logging
        configure_logging(program="gateway", log_format="json", log_level="info")
        rng = random.Random(int(sys.argv[1]))
        for i in range(400):
            structlog.get_logger().info("load.record", writer=int(sys.argv[1]), i=i, pad="y" * rng.randint(0, 6000))
    ''')
    read_fd, write_fd = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(n)], cwd=REPO, stdout=write_fd,
                              pass_fds=(write_fd,)) for n in range(6)]
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 7000):  # odd-sized reads, like supervisord's
        chunks.append(chunk)
    os.close(read_fd)
    for proc in procs:
        assert proc.wait(30) == 0
    lines = b"".join(chunks).decode().splitlines()
    seen = {(r["writer"], r["i"]) for r in map(json.loads, lines)}
    assert len(lines) == len(seen) == 6 * 400
