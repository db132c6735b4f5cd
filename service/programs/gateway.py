"""The gateway program (``python -m service``): settings, then logging, then the app; supervisord runs this.

A setting it cannot run with, or a port it cannot listen on, is a configuration error: it says why in one
record and exits 78 without a traceback, and the watchdog stops the stack (see ``config_error.py``).
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import structlog

from service import __version__, config_error
from service.http import server as http_server
from service.http.app import create_app
from service.logging_setup import configure_logging
from service.mcp.mount import mount as mount_mcp
from service.programs import orphans
from service.settings import Settings, SettingsError
from service.store.db import DatabaseError

PROGRAM = "gateway"
# The store's writer thread (store/db.py) hands every commit back to the event loop. With CPython's default
# 5 ms GIL switch interval a thread that wants the GIL back may wait that long behind the loop, which put
# whole milliseconds into every request's latency (bench/accept.py); 0.5 ms keeps the hand-over short.
SWITCH_INTERVAL_S = 0.0005
_BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def main() -> int:
    # Exit with supervisord: SIGTERM (the drain) when it dies, so no gateway runs on without its stack.
    parent = orphans.ParentWatch(signal.SIGTERM)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return config_error.report(PROGRAM, str(exc))
    configure_logging(program=PROGRAM, log_format=settings.log_format, log_level=settings.log_level)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    log = structlog.get_logger(PROGRAM)
    log.info("gateway.starting", version=__version__, host=settings.host, port=settings.port)
    app = create_app(settings)
    mount_mcp(app)  # /mcp (service/mcp/): above the http layer, so mounted here

    def orphaned() -> None:
        log.warning("gateway.orphaned", parent_at_start=parent.parent, parent_now=os.getppid())
        os.kill(os.getpid(), signal.SIGTERM)

    app.cleanup_ctx.append(orphans.exit_with_parent_ctx(parent, orphaned))
    try:
        http_server.run_app(  # aiohttp's run_app, but the HTTP parser's errors are JSON too
            app,
            host=settings.host,
            port=settings.port,
            shutdown_timeout=settings.shutdown_timeout,
            idle_timeout=settings.idle_timeout,
            print=None,
            access_log=None,
            handle_signals=True,
        )
    except DatabaseError as exc:
        # The store cannot be opened (PostgreSQL unreachable, a newer schema): one record, no traceback;
        # supervisord starts the gateway again. The message never holds the URL's password.
        log.error("gateway.store_unavailable", error=str(exc))
        return 1
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        return config_error.report(
            PROGRAM, f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
            settings.run_dir,
        )
    log.info("gateway.stopped")
    return 0

