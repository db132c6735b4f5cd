"""The PostgreSQL URL (``WA_DATABASE_URL``) and its password: the only forms of it that may be shown or kept.

The password is never logged nor put in an error: ``redact_url`` replaces it, ``split_password`` hands it
to the driver apart from the URL, and ``scrub`` removes it from a driver's error text. Standard library
only, so that the settings can show the URL without loading the store.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``: the only form of it that may be shown."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    except ValueError:
        return "<unparsable database URL>"


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password) so that asyncpg never holds the two together."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}@{host}")), unquote(parts.password)


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in {"postgresql", "postgres"}


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
