"""structlog set-up: JSON lines for machines, a console renderer for a human at a TTY.

Every line is one event; request and message ids are bound through contextvars so handlers never
pass them by hand.
"""

from __future__ import annotations

import logging
import sys

import structlog

from .settings import Settings


def configure_logging(settings: Settings) -> None:
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stdout.isatty() else "json"
    renderer = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    level = getattr(logging, settings.log_level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    # aiohttp and asyncio log through the standard library; route them to the same stream.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stdout, format="%(message)s")
