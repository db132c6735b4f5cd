"""The media intake's settings as one typed object (read from WA_MEDIA_* by service/settings.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.media.kinds import DEFAULT_LIMITS, KINDS, Kind
from service.media.store_config import StoreSettings, read_store_settings
from service.settings_env import allowlist, number

DEFAULT_FETCH_TIMEOUT = 30.0  # WA_MEDIA_FETCH_TIMEOUT: seconds for a whole download, redirects included
DEFAULT_MAX_REDIRECTS = 3  # WA_MEDIA_FETCH_MAX_REDIRECTS
# WA_SEND_MAX_BODY_BYTES: a JSON /send body, large enough for a 16 MiB file in base64 (4/3 of it) and the rest;
# bigger media comes by multipart or URL, which stream.
DEFAULT_SEND_MAX_BODY = 22 * 1024 * 1024
# WA_BODY_MIN_RATE: bytes per second a body must keep arriving at past WA_BODY_TIMEOUT (a 20 MB upload on a slow
# link takes longer than a small body may, a body that trickles is still cut off).
DEFAULT_BODY_MIN_RATE = 64 * 1024
DEFAULT_SEND_TIMEOUT = 300.0  # WA_MEDIA_SEND_TIMEOUT: a worker send that uploads media (100 MiB on a slow link)
# A contact's media (service/runtime/downloads.py): one worker download may take WA_MEDIA_DOWNLOAD_TIMEOUT (100 MiB
# and a media retry by the phone); WA_MEDIA_DOWNLOAD_ATTEMPTS attempts, WA_MEDIA_DOWNLOAD_RETRY_BASE doubling up
# to WA_MEDIA_DOWNLOAD_RETRY_MAX apart; none after WA_MEDIA_DOWNLOAD_MAX_AGE (WhatsApp keeps media about 30 days).
DEFAULT_DOWNLOAD_TIMEOUT = 300.0
DEFAULT_DOWNLOAD_ATTEMPTS = 8
DEFAULT_DOWNLOAD_RETRY_BASE = 5.0
DEFAULT_DOWNLOAD_RETRY_MAX = 900.0
DEFAULT_DOWNLOAD_MAX_AGE = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class MediaSettings:
    directory: Path = Path("data/media")  # WA_MEDIA_DIR: $WA_DATA_DIR/media by default
    limits: dict[Kind, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))  # WA_MEDIA_MAX_*_BYTES
    fetch_timeout: float = DEFAULT_FETCH_TIMEOUT
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    send_max_body_bytes: int = DEFAULT_SEND_MAX_BODY
    body_min_rate: int = DEFAULT_BODY_MIN_RATE
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    download_attempts: int = DEFAULT_DOWNLOAD_ATTEMPTS
    download_retry_base: float = DEFAULT_DOWNLOAD_RETRY_BASE
    download_retry_max: float = DEFAULT_DOWNLOAD_RETRY_MAX
    download_max_age: float = DEFAULT_DOWNLOAD_MAX_AGE
    allow_private: tuple[str, ...] = ()  # WA_MEDIA_FETCH_ALLOW_PRIVATE: parsed by address_policy.parse_allowlist
    store: StoreSettings = field(default_factory=StoreSettings)  # WA_MEDIA_STORE, WA_MEDIA_S3_*, retention, quota

    def limit(self, kind: Kind) -> int:
        return self.limits.get(kind, DEFAULT_LIMITS[kind])


def read_media_settings(env: Mapping[str, str], data_dir: Path) -> MediaSettings:
    """WA_MEDIA_*: the media store, limits (bytes, per kind), URL fetch and upload bodies (service/media/)."""
    names = ("WA_MEDIA_MAX_IMAGE_BYTES", "WA_MEDIA_MAX_VIDEO_BYTES", "WA_MEDIA_MAX_AUDIO_BYTES",  # KINDS' order
             "WA_MEDIA_MAX_DOCUMENT_BYTES", "WA_MEDIA_MAX_STICKER_BYTES")
    return MediaSettings(
        directory=Path(env.get("WA_MEDIA_DIR") or data_dir / "media").resolve(),
        allow_private=allowlist(env, "WA_MEDIA_FETCH_ALLOW_PRIVATE"),
        limits={k: number(env, n, DEFAULT_LIMITS[k], minimum=1, cast=int) for k, n in zip(KINDS, names, strict=True)},
        fetch_timeout=number(env, "WA_MEDIA_FETCH_TIMEOUT", DEFAULT_FETCH_TIMEOUT, minimum=0.1),
        max_redirects=number(env, "WA_MEDIA_FETCH_MAX_REDIRECTS", DEFAULT_MAX_REDIRECTS, cast=int, maximum=10),
        send_max_body_bytes=number(env, "WA_SEND_MAX_BODY_BYTES", DEFAULT_SEND_MAX_BODY, minimum=1024, cast=int),
        body_min_rate=number(env, "WA_BODY_MIN_RATE", DEFAULT_BODY_MIN_RATE, minimum=1, cast=int),
        send_timeout=number(env, "WA_MEDIA_SEND_TIMEOUT", DEFAULT_SEND_TIMEOUT, minimum=1.0),
        download_timeout=number(env, "WA_MEDIA_DOWNLOAD_TIMEOUT", DEFAULT_DOWNLOAD_TIMEOUT, minimum=1.0),
        download_attempts=number(env, "WA_MEDIA_DOWNLOAD_ATTEMPTS", DEFAULT_DOWNLOAD_ATTEMPTS, minimum=1, cast=int),
        download_retry_base=number(env, "WA_MEDIA_DOWNLOAD_RETRY_BASE", DEFAULT_DOWNLOAD_RETRY_BASE, minimum=0.01),
        download_retry_max=number(env, "WA_MEDIA_DOWNLOAD_RETRY_MAX", DEFAULT_DOWNLOAD_RETRY_MAX, minimum=0.01),
        download_max_age=number(env, "WA_MEDIA_DOWNLOAD_MAX_AGE", DEFAULT_DOWNLOAD_MAX_AGE, minimum=60.0),
        store=read_store_settings(env))
