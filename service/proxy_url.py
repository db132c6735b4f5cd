"""Proxy URLs for the WhatsApp connection: ``WA_PROXY_URL`` and an account's own ``proxy_url``.

The gateway checks them (a bad one is a start-up ``SettingsError`` or a 400 ``invalid_proxy_url``) and shows
them redacted; the worker (node_worker/src/proxy.js) uses them, and accepts and redacts the same way (both
are tested on tests/fixtures/proxy_urls.json). ``http://[user:pass@]host:port`` is HTTP CONNECT;
``socks5://`` and ``socks5h://`` are SOCKS5 (user/password auth). An account's ``"direct"`` means no proxy
although ``WA_PROXY_URL`` is set. No message here ever repeats a URL: it may carry a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DIRECT = "direct"
SCHEMES = ("http", "socks5", "socks5h")
EXPECTED = "expected http://[user:pass@]host:port, socks5://[user:pass@]host:port or socks5h://..."


class ProxyUrlError(ValueError):
    """The URL is not a usable proxy URL; the message says why without repeating it."""


@dataclass(frozen=True)
class ProxyUrl:
    url: str  # as given (credentials included): for the worker only, never for a log or an answer
    scheme: str
    host: str
    port: int
    redacted: str  # scheme://[***@]host:port

    def __repr__(self) -> str:
        return f"ProxyUrl({self.redacted!r})"


def parse(raw: str) -> ProxyUrl:
    text = (raw or "").strip()
    scheme_end = text.find("://")
    scheme = text[:scheme_end].lower() if scheme_end > 0 else ""
    if not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise ProxyUrlError(f"no scheme ({EXPECTED})")
    if scheme not in SCHEMES:
        raise ProxyUrlError(f"unsupported scheme {scheme[:10]!r} ({EXPECTED})")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ProxyUrlError(f"no valid port ({EXPECTED})") from None
    if not parts.hostname:
        raise ProxyUrlError(f"no host ({EXPECTED})")
    if port is None or not 1 <= port <= 65535:
        raise ProxyUrlError(f"no valid port ({EXPECTED})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProxyUrlError(f"a proxy URL has no path, query or fragment ({EXPECTED})")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    credentials = "***@" if "@" in parts.netloc else ""
    return ProxyUrl(text, scheme, host, port, f"{scheme}://{credentials}{host}:{port}")


def redact(raw: str | None) -> str | None:
    """The URL without credentials, ``"direct"`` as it is, None for None; never raises."""
    if raw is None or raw == DIRECT:
        return raw
    try:
        return parse(raw).redacted
    except ProxyUrlError:
        return "(invalid)"
