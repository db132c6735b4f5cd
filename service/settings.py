"""One typed, frozen settings object read from ``WA_*`` environment variables once at start-up.

Everything that differs between a laptop, the container and a test lives here, so that no module
reads the environment on its own and a bad value fails loudly before anything starts.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from service import proxy_url
from service.auth.admin_key import ApiKeyError, parse_keys
from service.mcp_names import ALL_TOOLS
from service.media.config import MediaSettings, read_media_settings
from service.runtime.governor import GovernorPolicy
from service.settings_env import SettingsError as SettingsError  # re-exported: the programs catch it from here
from service.settings_env import allowlist as _allowlist
from service.settings_env import flag as _flag
from service.settings_env import number as _number
from service.store.event_log import TYPES as EVENT_TYPES
from service.store.pg_url import redact_url
from service.webhooks import secret as webhook_secret

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 3001  # the public API (WA_PORT)


def _api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return parse_keys(env.get("WA_API_KEY"))
    except ApiKeyError as exc:
        raise SettingsError(str(exc)) from None


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """WA_CORS_ORIGINS: exact origins (scheme://host[:port]), comma-separated; none by default."""
    origins = tuple(o.strip() for o in env.get("WA_CORS_ORIGINS", "").split(",") if o.strip())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise SettingsError(
                f"WA_CORS_ORIGINS must list exact origins like https://app.example.com, got {origin!r}"
            )
    return origins


def _shards(env: Mapping[str, str]) -> int:
    shards = _number(env, "WA_WORKER_SHARDS", 1, minimum=1, cast=int)
    if shards > 64:
        raise SettingsError(f"WA_WORKER_SHARDS must be <= 64, got {shards}")
    return shards


def _governor(env: Mapping[str, str]) -> GovernorPolicy:
    """The send governor's policy (service/runtime/governor.py): WA_SEND_* and WA_NEW_CONTACTS_PER_DAY."""
    budget_raw = env.get("WA_NEW_CONTACTS_PER_DAY", "").strip()
    return GovernorPolicy(
        burst=_number(env, "WA_SEND_BURST", 10, minimum=1, cast=int),
        rate_per_minute=_number(env, "WA_SEND_RATE_PER_MINUTE", 30.0, minimum=0.01),
        jitter=_number(env, "WA_SEND_JITTER", 1.0),
        new_contacts_per_day=_number(env, "WA_NEW_CONTACTS_PER_DAY", 0, cast=int) if budget_raw else None,
        group_burst=_number(env, "WA_GROUP_SEND_BURST", 5, minimum=1, cast=int),
        group_rate_per_minute=_number(env, "WA_GROUP_SEND_RATE_PER_MINUTE", 10.0, minimum=0.01),
    )


def _mcp_tools(env: Mapping[str, str]) -> tuple[str, ...]:
    """WA_MCP_TOOLS: the MCP tools an admin key's session may use (a scoped key's own list replaces it); all by
    default. A destructive tool is there only while WA_MCP_DESTRUCTIVE=true, whatever this lists."""
    chosen = tuple(dict.fromkeys(t.strip() for t in env.get("WA_MCP_TOOLS", "").split(",") if t.strip()))
    for name in chosen:
        if name not in ALL_TOOLS:
            raise SettingsError(f"WA_MCP_TOOLS may list {', '.join(ALL_TOOLS)}; got {name!r}")
    return chosen or ALL_TOOLS


def is_webhook_url(url: str) -> bool:
    """An http(s) URL with a host, no fragment, no whitespace (WA_WEBHOOK_URL entries, account webhooks)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and not parts.fragment \
        and not any(c.isspace() for c in url)


def _webhook_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """WA_WEBHOOK_URL: one or more http(s) URLs, comma-separated; none by default (no webhooks)."""
    urls: list[str] = []
    for raw in env.get("WA_WEBHOOK_URL", "").split(","):
        url = raw.strip()
        if not url:
            continue
        if not is_webhook_url(url):
            # Never echo the value: a URL may carry credentials.
            raise SettingsError(f"WA_WEBHOOK_URL must list http:// or https:// URLs, comma-separated; "
                                f"entry {len(urls) + 1} is not one")
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def _webhook_events(env: Mapping[str, str]) -> tuple[str, ...]:
    """WA_WEBHOOK_EVENTS: the event types sent to the endpoints, comma-separated; all by default."""
    chosen = tuple(dict.fromkeys(t.strip() for t in env.get("WA_WEBHOOK_EVENTS", "").split(",") if t.strip()))
    for type_ in chosen:
        if type_ not in EVENT_TYPES:
            raise SettingsError(f"WA_WEBHOOK_EVENTS may list {', '.join(EVENT_TYPES)}; got {type_!r}")
    return chosen or EVENT_TYPES


_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _instance_id(env: Mapping[str, str]) -> str:
    """WA_INSTANCE_ID: unique per instance of a cluster; the host name by default."""
    value = env.get("WA_INSTANCE_ID", "").strip() or socket.gethostname()
    if not _INSTANCE_ID.fullmatch(value):
        raise SettingsError("WA_INSTANCE_ID must be 1-63 letters, digits, '.', '_' or '-'")
    return value


def _instance_url(env: Mapping[str, str]) -> str:
    """WA_INSTANCE_URL: http(s)://host:port where the other instances reach this one's API (optional)."""
    value = env.get("WA_INSTANCE_URL", "").strip().rstrip("/")
    if value:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.password:
            raise SettingsError("WA_INSTANCE_URL must be http(s)://host[:port], without credentials")
    return value


def _database_url(env: Mapping[str, str]) -> str:
    """WA_DATABASE_URL: ``postgresql://user:password@host:port/db`` puts the store on PostgreSQL; empty
    keeps it in SQLite in the data dir. The value is never echoed (it carries a password)."""
    url = env.get("WA_DATABASE_URL", "").strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(
            "WA_DATABASE_URL is not a valid URL (expected postgresql://user:password@host/db)") from None
    if parts.scheme not in {"postgresql", "postgres"}:
        raise SettingsError("WA_DATABASE_URL must start with postgresql:// (or be empty for SQLite in the data dir)")
    return url


def _proxy(env: Mapping[str, str]) -> proxy_url.ProxyUrl | None:
    """WA_PROXY_URL: the proxy of every WhatsApp connection (the worker's), unless an account has its own."""
    raw = env.get("WA_PROXY_URL", "").strip()
    try:
        return proxy_url.parse(raw) if raw else None
    except proxy_url.ProxyUrlError as exc:
        raise SettingsError(f"WA_PROXY_URL is {exc}") from None


def _webhook_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return webhook_secret.parse(env.get("WA_WEBHOOK_SECRET"))
    except webhook_secret.SecretError as exc:
        raise SettingsError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    run_dir: Path
    api_keys: tuple[str, ...]  # WA_API_KEY, comma-separated; empty: the data dir's key file
    log_format: str  # "json" or "console"
    log_level: str
    worker_program: str
    worker_request_timeout: float
    worker_start_wait: float
    connect_qr_wait: float
    watchdog_interval: float
    watchdog_initial_delay: float
    watchdog_max_delay: float
    shutdown_timeout: float
    max_body_bytes: int
    max_message_chars: int
    body_timeout: float
    cors_origins: tuple[str, ...]
    governor: GovernorPolicy
    # The outbox (service/store, service/runtime/dispatch.py)
    send_wait: float  # WA_SEND_WAIT: how long POST /send waits for the server ack before answering 202
    send_wait_max: float  # WA_SEND_WAIT_MAX: the largest ?wait= a caller may ask for
    outbox_max: int  # WA_OUTBOX_MAX: messages waiting (queued/sending) before 503 outbox_full
    message_ttl: float  # WA_MESSAGE_TTL: seconds a message may wait before it fails as expired
    send_max_attempts: int  # WA_SEND_MAX_ATTEMPTS: failed tries before too_many_attempts
    send_retry_base: float  # WA_SEND_RETRY_BASE / WA_SEND_RETRY_MAX: the retry backoff, capped
    send_retry_max: float
    dispatch_concurrency: int  # WA_DISPATCH_CONCURRENCY: recipients sent to in parallel
    dispatch_batch: int  # WA_DISPATCH_BATCH: a recipient's messages handed to the worker in one request
    # WA_DELIVERY_RECEIPT_BOUND: seconds after `sent` without a delivery receipt before a message is flagged
    delivery_receipt_bound: float = 600.0
    # WA_EDIT_WINDOW_SECONDS / WA_REVOKE_WINDOW_SECONDS: how long after it was sent our message may be edited
    # (WhatsApp: 15 minutes) or deleted for everyone (WhatsApp: about two and a half days)
    edit_window: float = 900.0
    revoke_window: float = 216000.0
    max_accounts: int = 100  # WA_MAX_ACCOUNTS: registered accounts, default included
    worker_shards: int = 1  # WA_WORKER_SHARDS: worker processes (the launcher defaults it to the cores)
    sse_max: int = 100  # WA_SSE_MAX: event streams (GET /events/stream) open at once, all keys together
    sse_max_per_key: int = 5  # WA_SSE_MAX_PER_KEY: event streams one API key may hold open
    # Linking by code (POST /connect {"phone_number"}), per account: WhatsApp locks out a number that asks too often
    pairing_code_interval: float = 20.0  # WA_PAIRING_CODE_INTERVAL: seconds at least between two codes
    pairing_codes_per_hour: int = 5  # WA_PAIRING_CODES_PER_HOUR: codes at most in any hour
    event_retention: float = 30 * 86400.0  # WA_EVENT_RETENTION_DAYS (seconds): the event log's age limit
    # Webhooks (service/webhooks/): none unless WA_WEBHOOK_URL is set
    webhook_urls: tuple[str, ...] = ()  # WA_WEBHOOK_URL, comma-separated
    webhook_events: tuple[str, ...] = EVENT_TYPES  # WA_WEBHOOK_EVENTS: the types sent (default all)
    webhook_secrets: tuple[str, ...] = ()  # WA_WEBHOOK_SECRET; empty: the data dir's webhook-secret file
    webhook_timeout: float = 10.0  # WA_WEBHOOK_TIMEOUT: seconds per attempt
    webhook_max_attempts: int = 12  # WA_WEBHOOK_MAX_ATTEMPTS: attempts before a delivery is dead-lettered
    webhook_max_age: float = 86400.0  # WA_WEBHOOK_MAX_AGE: seconds a delivery is retried before dead-lettering
    webhook_retry_base: float = 5.0  # WA_WEBHOOK_RETRY_BASE / _MAX: the backoff, doubled per attempt, capped
    webhook_retry_max: float = 3600.0
    webhook_concurrency: int = 4  # WA_WEBHOOK_CONCURRENCY: requests in flight per endpoint
    webhook_keep: float = 7 * 86400.0  # WA_WEBHOOK_KEEP: seconds a delivered delivery stays listed
    webhook_max_per_account: int = 10  # WA_WEBHOOK_MAX_PER_ACCOUNT: endpoints one account may add by API
    # WA_WEBHOOK_ALLOW_PRIVATE: CIDRs and host names an API-made webhook may reach though internal (none)
    webhook_allow_private: tuple[str, ...] = ()
    metrics_public: bool = False  # WA_METRICS_PUBLIC: GET /metrics without a key (else the admin key only)
    sandbox: bool = False  # WA_SANDBOX=true: set by `wa-gateway sandbox` (a 401 then names `api-key --sandbox`)
    # WA_IDLE_TIMEOUT: seconds a connection may sit without a whole request (idle, or headers trickling in)
    idle_timeout: float = 30.0
    # WA_DATABASE_URL: postgresql://... puts the store on PostgreSQL (service/store/pg.py); empty: SQLite in
    # the data dir. Kept out of repr (it holds a password): show ``database_label`` instead.
    database_url: str = field(default="", repr=False)
    # Several instances on one PostgreSQL (service/cluster/lease_keeper.py): this instance's name (WA_INSTANCE_ID,
    # default the host name: a StatefulSet pod's is stable), its account leases' TTL (WA_LEASE_TTL) and the URL the
    # other instances reach its API at (WA_INSTANCE_URL: requests on an account it serves are forwarded there).
    instance_id: str = ""
    lease_ttl: float = 15.0
    instance_url: str = ""
    # WA_PROXY_URL (service/proxy_url.py): the worker's proxy for WhatsApp; accounts may override it. The
    # gateway only checks it and shows it redacted (GET /accounts).
    proxy: proxy_url.ProxyUrl | None = None
    media: MediaSettings = field(default_factory=MediaSettings)  # WA_MEDIA_* (service/media/config.py)
    # The MCP server (service/mcp/): on /mcp unless WA_MCP_ENABLED=false; the rails an admin key's session gets
    # (a scoped key's own, set on the key by the admin, replace them): its tools, sends per hour, dry run.
    mcp_enabled: bool = True
    mcp_tools: tuple[str, ...] = ALL_TOOLS  # WA_MCP_TOOLS
    mcp_destructive: bool = False  # WA_MCP_DESTRUCTIVE: the logout, revoke and leave-group tools exist
    mcp_send_budget: int = 60  # WA_MCP_SEND_BUDGET_PER_HOUR: sends per key in any hour (0: none)
    mcp_dry_run: bool = False  # WA_MCP_DRY_RUN: send tools validate and answer what they would send, send nothing

    @property
    def api_key(self) -> str | None:
        """The first key from ``WA_API_KEY``; None means the key file in the data dir is used."""
        return self.api_keys[0] if self.api_keys else None

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def worker_socket(self) -> Path:
        """Shard 0's socket (it holds ``default``)."""
        return self.worker_socket_for(0)

    def worker_socket_for(self, shard: int) -> Path:
        return self.run_dir / f"worker-{shard}.sock"

    def worker_process(self, shard: int) -> str:
        """supervisord's name of a shard: ``worker:worker-0``."""
        return f"{self.worker_program}:{self.worker_program}-{shard}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "gateway.db"

    @property
    def database_label(self) -> str:
        """Where the store is, safe to log: the PostgreSQL URL without its password, or the SQLite file."""
        if self.database_url:
            return redact_url(self.database_url)
        return str(self.db_path)

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
        port = _number(env, "WA_PORT", DEFAULT_PORT, cast=int)
        if port > 65535:
            raise SettingsError(f"WA_PORT must be <= 65535, got {port}")
        return cls(
            host=env.get("WA_HOST", "").strip() or "0.0.0.0",
            port=port,
            data_dir=data_dir,
            run_dir=run_dir,
            api_keys=_api_keys(env),
            log_format=log_format,
            log_level=log_level,
            worker_program=env.get("WA_WORKER_PROGRAM", "").strip() or "worker",
            worker_request_timeout=_number(env, "WA_WORKER_TIMEOUT", 30.0, minimum=0.1),
            worker_start_wait=_number(env, "WA_WORKER_START_WAIT", 5.0),
            connect_qr_wait=_number(env, "WA_CONNECT_QR_WAIT", 8.0),
            watchdog_interval=_number(env, "WA_WATCHDOG_INTERVAL", 2.0, minimum=0.1),
            watchdog_initial_delay=_number(env, "WA_WATCHDOG_INITIAL_DELAY", 10.0, minimum=0.1),
            watchdog_max_delay=_number(env, "WA_WATCHDOG_MAX_DELAY", 300.0, minimum=0.1),
            shutdown_timeout=_number(env, "WA_SHUTDOWN_TIMEOUT", 5.0, minimum=0.1),  # 0 would mean "forever" to aiohttp
            max_body_bytes=_number(env, "WA_MAX_BODY_BYTES", 512 * 1024, minimum=1024, cast=int),
            max_message_chars=_number(env, "WA_MAX_MESSAGE_CHARS", 65536, minimum=1, cast=int),
            body_timeout=_number(env, "WA_BODY_TIMEOUT", 10.0, minimum=0.1),
            cors_origins=_origins(env),
            governor=_governor(env),
            send_wait=_number(env, "WA_SEND_WAIT", 5.0),
            send_wait_max=_number(env, "WA_SEND_WAIT_MAX", 60.0),
            outbox_max=_number(env, "WA_OUTBOX_MAX", 10000, minimum=1, cast=int),
            message_ttl=_number(env, "WA_MESSAGE_TTL", 86400.0, minimum=1),
            delivery_receipt_bound=_number(env, "WA_DELIVERY_RECEIPT_BOUND", 600.0, minimum=1),
            edit_window=_number(env, "WA_EDIT_WINDOW_SECONDS", 900.0, minimum=1),
            revoke_window=_number(env, "WA_REVOKE_WINDOW_SECONDS", 216000.0, minimum=1),
            send_max_attempts=_number(env, "WA_SEND_MAX_ATTEMPTS", 10, minimum=1, cast=int),
            send_retry_base=_number(env, "WA_SEND_RETRY_BASE", 1.0, minimum=0.01),
            send_retry_max=_number(env, "WA_SEND_RETRY_MAX", 60.0, minimum=0.01),
            dispatch_concurrency=_number(env, "WA_DISPATCH_CONCURRENCY", 4, minimum=1, cast=int),
            dispatch_batch=_number(env, "WA_DISPATCH_BATCH", 32, minimum=1, maximum=64, cast=int),
            event_retention=_number(env, "WA_EVENT_RETENTION_DAYS", 30.0, minimum=0.01) * 86400.0,
            max_accounts=_number(env, "WA_MAX_ACCOUNTS", 100, minimum=1, cast=int),
            worker_shards=_shards(env),
            webhook_urls=_webhook_urls(env),
            webhook_events=_webhook_events(env),
            webhook_secrets=_webhook_secrets(env),
            webhook_timeout=_number(env, "WA_WEBHOOK_TIMEOUT", 10.0, minimum=0.1),
            webhook_max_attempts=_number(env, "WA_WEBHOOK_MAX_ATTEMPTS", 12, minimum=1, cast=int),
            webhook_max_age=_number(env, "WA_WEBHOOK_MAX_AGE", 86400.0, minimum=1),
            webhook_retry_base=_number(env, "WA_WEBHOOK_RETRY_BASE", 5.0, minimum=0.01),
            webhook_retry_max=_number(env, "WA_WEBHOOK_RETRY_MAX", 3600.0, minimum=0.01),
            webhook_concurrency=_number(env, "WA_WEBHOOK_CONCURRENCY", 4, minimum=1, cast=int),
            webhook_keep=_number(env, "WA_WEBHOOK_KEEP", 7 * 86400.0, minimum=60),
            webhook_max_per_account=_number(env, "WA_WEBHOOK_MAX_PER_ACCOUNT", 10, minimum=0, cast=int),
            webhook_allow_private=_allowlist(env, "WA_WEBHOOK_ALLOW_PRIVATE"),
            metrics_public=_flag(env, "WA_METRICS_PUBLIC", False),
            sandbox=_flag(env, "WA_SANDBOX", False),
            idle_timeout=_number(env, "WA_IDLE_TIMEOUT", 30.0, minimum=1),
            sse_max=_number(env, "WA_SSE_MAX", 100, minimum=1, cast=int),
            sse_max_per_key=_number(env, "WA_SSE_MAX_PER_KEY", 5, minimum=1, cast=int),
            pairing_code_interval=_number(env, "WA_PAIRING_CODE_INTERVAL", 20.0),
            pairing_codes_per_hour=_number(env, "WA_PAIRING_CODES_PER_HOUR", 5, minimum=1, cast=int),
            database_url=_database_url(env),
            instance_id=_instance_id(env),
            lease_ttl=_number(env, "WA_LEASE_TTL", 15.0, minimum=1.0),
            instance_url=_instance_url(env),
            proxy=_proxy(env),
            media=read_media_settings(env, data_dir),
            mcp_enabled=_flag(env, "WA_MCP_ENABLED", True),
            mcp_tools=_mcp_tools(env),
            mcp_destructive=_flag(env, "WA_MCP_DESTRUCTIVE", False),
            mcp_send_budget=_number(env, "WA_MCP_SEND_BUDGET_PER_HOUR", 60, minimum=0, cast=int),
            mcp_dry_run=_flag(env, "WA_MCP_DRY_RUN", False),
        )
