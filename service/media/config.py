"""The media intake's settings as one typed object (read from WA_MEDIA_* by service/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service.media.kinds import DEFAULT_LIMITS, Kind

DEFAULT_FETCH_TIMEOUT = 30.0  # WA_MEDIA_FETCH_TIMEOUT: seconds for a whole download, redirects included
DEFAULT_MAX_REDIRECTS = 3  # WA_MEDIA_FETCH_MAX_REDIRECTS


@dataclass(frozen=True, slots=True)
class MediaSettings:
    directory: Path = Path("data/media")  # WA_MEDIA_DIR: $WA_DATA_DIR/media by default
    limits: dict[Kind, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))  # WA_MEDIA_MAX_*_BYTES
    fetch_timeout: float = DEFAULT_FETCH_TIMEOUT
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    allow_private: tuple[str, ...] = ()  # WA_MEDIA_FETCH_ALLOW_PRIVATE: parsed by address_policy.parse_allowlist

    def limit(self, kind: Kind) -> int:
        return self.limits.get(kind, DEFAULT_LIMITS[kind])
