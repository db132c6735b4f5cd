"""Running the client's CLI against the in-process gateway (tests/app): parsed and run as ``wa-gateway`` would, on
the test's own event loop, with only the CLI's output lines kept (the in-process gateway logs to the same stdout)."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers.fake_worker import KEY
from wa_gateway_client import cli

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


async def run_cli(wa: Any, capsys: Any, *argv: str) -> tuple[int, str]:
    """``wa-gateway ARGV`` against ``wa``'s gateway with the test key: (exit code, what it printed)."""
    args = cli.parse(["--url", wa.url, "--api-key", KEY, *argv])
    code = await cli.run(args, cli.Out(args.json))
    return code, "".join(line for line in capsys.readouterr().out.splitlines(keepends=True)
                         if not LOG_LINE.match(line))
