"""structlog set-up shared by the gateway and the watchdog listener: the one log contract of wa-gateway.

Every record is one line with ``timestamp`` (ISO-8601 UTC), ``level``, ``event`` (dotted), ``program`` and
context, as JSON for machines or as a readable line for a human (``WA_LOG_FORMAT``).

Why one ``write(2)`` per record of at most ``PIPE_BUF`` bytes: supervisord reads each program's output pipe
in chunks and forwards whatever it got to its own stdout. A write of up to ``PIPE_BUF`` (4096) bytes to a
pipe is atomic on Linux, so supervisord can never read half a record, and records of different programs
can never be merged on the shared stream. Longer records are cut (their longest strings first) and say so
with ``"truncated": true``; a log line is the wrong place for a 5 KB value anyway.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MAX_RECORD_BYTES = 4096  # PIPE_BUF on Linux, newline included
LEVELS = ("debug", "info", "warning", "error", "critical")
_ELLIPSIS = "…"


class AtomicLineWriter:
    """A structlog logger that writes each rendered record with one ``os.write`` on a file descriptor."""

    def __init__(self, fd: int):
        self._fd = fd

    def msg(self, message: str) -> None:
        data = (message + "\n").encode("utf-8", "backslashreplace")
        while data:  # a blocking pipe takes <= PIPE_BUF bytes whole; the loop only guards odd fds
            try:
                written = os.write(self._fd, data)
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF):
                    return  # nobody reads any more (supervisord died): drop it, as the worker does
                raise
            data = data[written:]

    debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg


def _longest_string(value: Any, path: tuple[Any, ...] = ()) -> tuple[int, tuple[Any, ...]] | None:
    """The path to the longest string inside ``value`` (dicts and lists are searched)."""
    best: tuple[int, tuple[Any, ...]] | None = None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = (len(item), (*path, key)) if isinstance(item, str) else _longest_string(item, (*path, key))
        if found and (best is None or found[0] > best[0]):
            best = found
    return best


def fit_record(event_dict: EventDict, render: Callable[[EventDict], str], limit: int = MAX_RECORD_BYTES) -> str:
    """Render ``event_dict``; while the line is over ``limit`` bytes, halve its longest string."""
    line = render(event_dict)
    for _ in range(64):
        if len(line.encode("utf-8", "backslashreplace")) + 1 <= limit:
            return line
        found = _longest_string(event_dict)
        if found is None or found[0] <= 16:
            break
        length, path = found
        parent = event_dict
        for key in path[:-1]:
            parent = parent[key]
        excess = len(line.encode("utf-8", "backslashreplace")) + 1 - limit
        keep = max(8, min(length // 2, length - excess - 8))
        parent[path[-1]] = parent[path[-1]][:keep] + _ELLIPSIS
        event_dict["truncated"] = True
        line = render(event_dict)
    # Nothing left to cut (thousands of small fields): keep only the contract keys.
    minimal = {k: event_dict.get(k) for k in ("timestamp", "level", "event", "program")}
    minimal["truncated"] = True
    return render(minimal)


class _Fitting:
    """The final processor: render and cut to one PIPE_BUF-sized line."""

    def __init__(self, renderer: Callable[[WrappedLogger, str, EventDict], str]):
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        return fit_record(event_dict, lambda d: self._renderer(logger, method_name, dict(d)))


def _console_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\n", " | ")
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


def console_line(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    """``<timestamp> <level> [<program>] <event> key=value ...``: the same line shape in every program."""
    fields = dict(event_dict)
    head = (f"{fields.pop('timestamp', '')} {fields.pop('level', ''):<8} [{fields.pop('program', '')}] "
            f"{fields.pop('event', '')}")
    tail = " ".join(f"{key}={_console_value(value)}" for key, value in fields.items())
    return f"{head} {tail}".rstrip()


def _normalise_level(_: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    level = event_dict.get("level", method_name)
    event_dict["level"] = {"warn": "warning", "exception": "error", "fatal": "critical",
                           "notset": "info"}.get(level, level)
    return event_dict


def _ordered(program: str) -> Processor:
    def processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        head = {
            "timestamp": event_dict.pop("timestamp", None),
            "level": event_dict.pop("level", "info"),
            "event": event_dict.pop("event", ""),
            "program": program,
        }
        event_dict.pop("program", None)
        return {**head, **event_dict}
    return processor


def _stdlib_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Records from the standard library (aiohttp, asyncio): their logger name is the dotted event."""
    record = event_dict.get("_record")
    if record is not None:
        event_dict["message"] = event_dict.pop("event", "")
        event_dict["event"] = record.name
    return event_dict


def resolve_format(fmt: str, fd: int) -> str:
    """``auto`` means console on a terminal, JSON otherwise (the launcher decides for all programs)."""
    if fmt == "auto":
        try:
            return "console" if os.isatty(fd) else "json"
        except OSError:
            return "json"
    return fmt


def configure_logging(*, program: str, log_format: str, log_level: str, fd: int | None = None) -> None:
    """Route structlog and the standard library into one stream of contract records on ``fd``."""
    fd = sys.stdout.fileno() if fd is None else fd
    fmt = resolve_format(log_format, fd)
    # JSONRenderer's default serializer is json.dumps: it renders str (its type says str | bytes for orjson).
    renderer = console_line if fmt == "console" else cast(
        Callable[[WrappedLogger, str, EventDict], str], structlog.processors.JSONRenderer(ensure_ascii=False))
    level = getattr(logging, log_level.upper())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _normalise_level,
        structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%S.%fZ", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, _ordered(program), _Fitting(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: AtomicLineWriter(fd),
        cache_logger_on_first_use=True,
    )
    # aiohttp and asyncio log through the standard library: the same processors, the same writer.
    writer = AtomicLineWriter(fd)

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                writer.msg(self.format(record))
            except Exception:  # a log line must never take the program down
                self.handleError(record)

    handler = _Handler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared[:-1], _stdlib_event],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _ordered(program),
            _Fitting(renderer),
        ],
    ))
    logging.raiseExceptions = False  # never a traceback on the stream because a record failed
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.INFO))
