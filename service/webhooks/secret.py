"""The webhook signing secrets. The operator's ``WA_WEBHOOK_URL`` endpoints sign with ``WA_WEBHOOK_SECRET``,
else one generated once into ``$WA_DATA_DIR/webhook-secret``; each account webhook signs with its own
(``EndpointSecret``, made at its creation, stored with it, rotatable with an overlap).

A secret is ``whsec_`` + base64 of 24 to 64 random bytes (the Standard Webhooks format); several,
comma-separated, sign every delivery with each (``webhook-signature: v1,<a> v1,<b>``) so a receiver
can rotate without losing a delivery. There is never a default secret: with ``WA_WEBHOOK_SECRET``
unset the gateway (or ``wa-gateway webhook-secret``) generates one, stores it 0600 in the 0700 data
dir with the same exclusive, atomic creation as the API key file, and never logs it.

Standard library only: the launcher and the settings import this before anything else runs.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.auth.admin_key import _create_exclusive

PREFIX = "whsec_"
FILE_NAME = "webhook-secret"
MIN_BYTES, MAX_BYTES = 24, 64


class SecretError(ValueError):
    """``WA_WEBHOOK_SECRET`` or the secret file holds something that cannot be a secret."""


@dataclass(frozen=True, slots=True)
class Secrets:
    values: tuple[str, ...]  # whsec_..., the first is the one to hand to receivers
    source: str  # "env" or "file"
    path: Path | None = None
    created: bool = False

    @property
    def first(self) -> str:
        return self.values[0]


def key_bytes(secret: str, *, where: str = "WA_WEBHOOK_SECRET") -> bytes:
    """The HMAC key of one ``whsec_`` secret; SecretError (never echoing the value) if malformed."""
    if not secret.startswith(PREFIX):
        raise SecretError(f"{where}: a webhook secret must look like whsec_<base64>")
    raw = secret[len(PREFIX):]
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{where}: the part after whsec_ must be standard base64") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise SecretError(f"{where}: a webhook secret must decode to {MIN_BYTES} to {MAX_BYTES} bytes, "
                          f"got {len(key)}")
    return key


def parse(raw: str | None, *, where: str = "WA_WEBHOOK_SECRET") -> tuple[str, ...]:
    """Secrets from a comma- (or newline-) separated list, each validated; duplicates kept once."""
    found: list[str] = []
    for part in (raw or "").replace("\n", ",").split(","):
        value = part.strip()
        if not value:
            continue
        key_bytes(value, where=where)
        if value not in found:
            found.append(value)
    return tuple(found)


def generate() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_file(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def load_or_create(data_dir: Path) -> Secrets:
    """The secret in ``data_dir/webhook-secret``, generating the file (0600, dir 0700) on first use."""
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    path = secret_file(data_dir)
    created = False
    if not path.exists():
        created = _create_exclusive(path, generate() + "\n")
    values = parse(path.read_text(encoding="ascii", errors="replace"), where=str(path))
    if not values:
        raise SecretError(f"{path} holds no webhook secret; delete it to have a new one generated")
    return Secrets(values, "file", path, created)


def resolve(configured: tuple[str, ...], data_dir: Path) -> Secrets:
    """``WA_WEBHOOK_SECRET`` (already parsed by the settings) when set, else the data dir's file."""
    if configured:
        return Secrets(tuple(configured), "env")
    return load_or_create(data_dir)


def file_is_private(path: Path) -> bool:
    return not (path.stat().st_mode & 0o077)


@dataclass(frozen=True, slots=True)
class EndpointSecret:
    """An account webhook's own secret and, for a while after a rotation, the one it replaced: deliveries are
    signed with both (``webhook-signature: v1,<new> v1,<old>``) until ``previous_until``."""

    current: str
    previous: str | None = None
    previous_until: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EndpointSecret:
        return cls(row["secret"], row.get("secret_previous"), row.get("secret_previous_until"))

    def values(self, now: float) -> tuple[str, ...]:
        if self.previous and self.previous_until is not None and now < self.previous_until:
            return (self.current, self.previous)
        return (self.current,)


def signing(secrets: tuple[str, ...] | EndpointSecret, now: float) -> tuple[str, ...]:
    """The secrets to sign with now: a global endpoint's fixed ones, or an account endpoint's."""
    return secrets.values(now) if isinstance(secrets, EndpointSecret) else tuple(secrets)
