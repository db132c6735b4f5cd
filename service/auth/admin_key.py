"""The API keys: from ``WA_API_KEY`` (comma-separated, for rotation), else one generated key kept in
``$WA_DATA_DIR/api-key``.

The API is locked by default: with ``WA_API_KEY`` unset, the first program to start (the launcher,
before supervisord; or the gateway itself) generates a random key and stores it 0600 in the 0700
data dir. Creation is atomic and exclusive (an ``O_EXCL`` temp file hard-linked into place), so two
programs racing on a fresh data dir end up with one key, and a reader never sees a half-written
file. The value is never logged; ``wa-gateway api-key`` prints it for the operator.

Pure standard library and no aiohttp: the launcher imports this before anything else runs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

KEY_FILE_NAME = "api-key"
# Header-safe: visible ASCII, no comma (the separator) and no whitespace.
_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {","}


class ApiKeyError(ValueError):
    """``WA_API_KEY`` or the key file holds something that cannot be a key."""


@dataclass(frozen=True, slots=True)
class ApiKeys:
    keys: tuple[str, ...]
    source: str  # "env" or "file"
    path: Path | None  # the key file when source == "file"
    created: bool = False  # this call generated the file

    @property
    def first(self) -> str:
        return self.keys[0]
    # sha256 of each key, computed once: compared in constant time with the presented key's (middlewares.py).
    digests: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digests", tuple(hashlib.sha256(k.encode("ascii")).digest() for k in self.keys))


def parse_keys(raw: str | None, *, where: str = "WA_API_KEY") -> tuple[str, ...]:
    """Keys from a comma- (or newline-) separated list; blanks are dropped, duplicates kept once."""
    keys: list[str] = []
    for part in (raw or "").replace("\n", ",").split(","):
        key = part.strip()
        if not key:
            continue
        if not set(key) <= _KEY_CHARS:
            raise ApiKeyError(
                f"{where}: an API key may only hold visible ASCII characters (no spaces or commas)"
            )
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def key_file(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE_NAME


def generate() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, URL- and header-safe


def read_key_file(path: Path) -> tuple[str, ...]:
    keys = parse_keys(path.read_text(encoding="ascii", errors="replace"), where=str(path))
    if not keys:
        raise ApiKeyError(f"{path} holds no API key; delete it to have a new one generated")
    return keys


def _create_exclusive(path: Path, content: str) -> bool:
    """Write ``content`` to ``path`` unless it exists; True when this call created it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # link(2), unlike rename(2), fails when the target exists: the first writer wins and a
            # racing second one reads the winner's key instead of replacing it.
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            if path.exists():
                return False
            os.rename(tmp, path)
            return True
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def load_or_create(data_dir: Path) -> ApiKeys:
    """The keys in ``data_dir/api-key``, generating the file (0600, dir 0700) on first use."""
    data_dir = Path(data_dir)
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    path = key_file(data_dir)
    created = False
    if not path.exists():
        created = _create_exclusive(path, generate() + "\n")
    return ApiKeys(read_key_file(path), "file", path, created)


def resolve(env_value: str | None, data_dir: Path) -> ApiKeys:
    """``WA_API_KEY`` when it names at least one key, else the data dir's key file."""
    keys = parse_keys(env_value)
    if keys:
        return ApiKeys(keys, "env", None)
    return load_or_create(data_dir)


def file_is_private(path: Path) -> bool:
    """False when group or others may read the key file (the operator should chmod 600 it)."""
    return not (path.stat().st_mode & 0o077)


def print_command(*, sandbox: bool, repo_root: Path | None = None) -> str:
    """The command that prints the admin key on this host: the ``wa-gateway`` of this virtualenv, by its path
    from the checkout when it is inside it (``.venv/bin/wa-gateway api-key``, run from the checkout, as the
    Makefile and the image's WORKDIR do), else by its name; ``--sandbox`` for the sandbox's data dir (``make
    sandbox``). Named in a 401 and in the launcher's start-up line: what to run, not only what is wrong.
    (Not judged from PATH: the launcher puts this virtualenv first on its programs' PATH.)"""
    import sys

    script = Path(sys.executable).parent / "wa-gateway"
    root = repo_root or Path(__file__).resolve().parents[2]
    try:
        shown = str(script.relative_to(root))
    except ValueError:
        shown = "wa-gateway"
    return f"{shown} api-key" + (" --sandbox" if sandbox else "")
