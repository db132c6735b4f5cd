"""What the gateway program loads before it serves: not the MCP SDK, which is a third of its start-up time and is
loaded by the first /mcp request (service/mcp/mount.py). Every start and every restart after a crash pays what is
imported here, so a new top-level import of the SDK fails this test rather than slowing recovery unnoticed."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.stack import REPO


def test_the_gateway_program_starts_without_the_mcp_sdk():
    probe = ("import sys, service.programs.gateway, service.http.app, service.http.openapi.document; "
             "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'starlette'))))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
