"""The launcher's own lines as log records, in the stack's log format (``WA_LOG_FORMAT``, resolved once by the
launcher for every program), so a JSON log stream holds nothing but records: ``timestamp``, ``level``,
``event``, ``program`` ("launcher") and context, like the gateway's, the worker's and the watchdog's.

They go to stderr (supervisord's own stdout is the programs' stream; a container log and ``make run``'s
terminal show both). Each record carries a ``message``: the one sentence a person reads (in the console
format it is the line). Never a key or a secret: where the key file is and the command that prints it.
"""

from __future__ import annotations

import sys
from typing import Any

import structlog

from service.logging_setup import configure_logging

PROGRAM = "launcher"
log = structlog.get_logger(PROGRAM)


def setup(log_format: str) -> None:
    """Records from now on, in ``log_format`` (json or console; anything else is refused later, as JSON)."""
    configure_logging(program=PROGRAM, log_format=log_format if log_format == "console" else "json",
                      log_level="info", fd=sys.stderr.fileno())


def info(event: str, message: str, **context: Any) -> None:
    log.info(event, message=message, **context)


def error(event: str, message: str, **context: Any) -> None:
    log.error(event, message=message, **context)
