"""How logs, metrics and the API name a webhook endpoint: never with the credentials or query values its
URL may carry."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def public_url(url: str) -> str:
    """The endpoint as logs and the API show it: credentials and query values hidden."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = ("***@" if "@" in parts.netloc else "") + host
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def endpoint_label(endpoint_id: str, account: str | None) -> str:
    """How metrics name an endpoint: a global one by its public URL (its id is the configured URL, which may
    carry credentials), an account's by its id (whe_...: two accounts may add the same URL)."""
    return public_url(endpoint_id) if account is None else endpoint_id
