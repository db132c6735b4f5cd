"""One typed, frozen settings object read from ``WA_*`` environment variables once at start-up.

Everything that differs between a laptop, the container and a test lives here, so that no module
reads the environment on its own and a bad value fails loudly before anything starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A ``WA_*`` variable has a value the gateway cannot run with."""


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0, cast=float):
    """A number from the environment; ``cast=int`` for whole numbers."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    run_dir: Path
    api_key: str | None
    log_format: str  # "json" or "console"
    log_level: str
    worker_program: str
    worker_request_timeout: float
    connect_qr_wait: float
    watchdog_interval: float
    watchdog_initial_delay: float
    watchdog_max_delay: float
    shutdown_timeout: float
    max_body_bytes: int
    max_message_chars: int

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def worker_socket(self) -> Path:
        return self.run_dir / "worker.sock"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("WA_DATA_DIR") or REPO_ROOT / "data").resolve()
        run_dir = Path(env.get("WA_RUN_DIR") or data_dir / "run").resolve()
        log_format = env.get("WA_LOG_FORMAT", "").strip().lower() or "auto"
        if log_format not in {"auto", "json", "console"}:
            raise SettingsError(f"WA_LOG_FORMAT must be auto, json or console, got {log_format!r}")
        log_level = (env.get("WA_LOG_LEVEL") or "info").strip().lower()
        if log_level not in {"debug", "info", "warning", "error"}:
            raise SettingsError(f"WA_LOG_LEVEL must be debug, info, warning or error, got {log_level!r}")
        port = _number(env, "WA_PORT", 3001, cast=int)
        if port > 65535:
            raise SettingsError(f"WA_PORT must be <= 65535, got {port}")
        return cls(
            host=env.get("WA_HOST", "").strip() or "0.0.0.0",
            port=port,
            data_dir=data_dir,
            run_dir=run_dir,
            api_key=env.get("WA_API_KEY") or None,
            log_format=log_format,
            log_level=log_level,
            worker_program=env.get("WA_WORKER_PROGRAM", "").strip() or "worker",
            worker_request_timeout=_number(env, "WA_WORKER_TIMEOUT", 30.0, minimum=0.1),
            connect_qr_wait=_number(env, "WA_CONNECT_QR_WAIT", 8.0),
            watchdog_interval=_number(env, "WA_WATCHDOG_INTERVAL", 2.0, minimum=0.1),
            watchdog_initial_delay=_number(env, "WA_WATCHDOG_INITIAL_DELAY", 10.0, minimum=0.1),
            watchdog_max_delay=_number(env, "WA_WATCHDOG_MAX_DELAY", 300.0, minimum=0.1),
            shutdown_timeout=_number(env, "WA_SHUTDOWN_TIMEOUT", 5.0),
            max_body_bytes=_number(env, "WA_MAX_BODY_BYTES", 512 * 1024, minimum=1024, cast=int),
            max_message_chars=_number(env, "WA_MAX_MESSAGE_CHARS", 65536, minimum=1, cast=int),
        )
