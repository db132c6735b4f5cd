"""``python -m service``: settings, then logging, then the app; supervisord runs this."""

from __future__ import annotations

import json
import sys

import structlog
from aiohttp import web

from . import __version__
from .app import create_app
from .logging_setup import configure_logging
from .settings import Settings, SettingsError


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(json.dumps({"event": "gateway.bad_setting", "error": str(exc)}), file=sys.stderr)
        return 78  # EX_CONFIG: supervisord's retries end in FATAL with the reason in the log
    configure_logging(settings)
    log = structlog.get_logger("gateway")
    log.info("gateway.starting", version=__version__, host=settings.host, port=settings.port,
             auth="api_key" if settings.api_key else "none")
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    log.info("gateway.stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
