"""Download a caller's media URL into the store, bounded and guarded.

http and https only; the whole download (redirects included) within ``fetch_timeout``; at most
``max_redirects`` redirects, each target checked again (scheme and address) before it is requested; the body
counted while it streams (a ``Content-Length`` over the limit is refused before the body is read). The host's
addresses are judged by ``service/address_policy.py`` after resolution, and the connection goes to the address
judged: loopback, link-local (169.254.169.254), private and unique-local addresses are refused unless
``WA_MEDIA_FETCH_ALLOW_PRIVATE`` names them. No environment proxy, no cookies kept between fetches.

Errors (service/media/errors.py): 400 ``media_url_refused`` (scheme, or an address not allowed, also after a
redirect), 413 ``media_too_large``, 422 ``media_fetch_failed`` (an error status, given as ``upstream_status``;
too many redirects; a connection that failed), 422 ``media_fetch_timeout``. Messages never name the URL or an
address: a caller learns that the address was refused, not what it resolved to.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit

import aiohttp

from service.address_policy import REFUSED_REASON, AddressPolicy, AddressRefused, guarded_connector
from service.media.errors import MediaFetchFailed, MediaFetchTimeout, MediaTooLarge, MediaUrlRefused
from service.media.store import BlobWriter

CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def check_scheme(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise MediaUrlRefused("the media URL is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise MediaUrlRefused("the media URL must be an http:// or https:// URL with a host")


def _refused() -> MediaUrlRefused:
    return MediaUrlRefused(f"the media URL was refused: {REFUSED_REASON}")


async def _body(response: aiohttp.ClientResponse, writer: BlobWriter, limit: int) -> None:
    if response.content_length is not None and response.content_length > limit:
        raise MediaTooLarge(f"the media is larger than its limit of {limit} bytes")
    async for chunk in response.content.iter_chunked(CHUNK):
        writer.write(chunk)


class Fetcher:
    """Downloads with one address policy; a new connection pool per download (no DNS cache: each connection
    resolves and is checked again)."""

    def __init__(self, policy: AddressPolicy, *, timeout: float, max_redirects: int):
        self.policy = policy
        self.timeout = timeout
        self.max_redirects = max_redirects

    async def fetch(self, url: str, writer: BlobWriter, limit: int) -> str | None:
        """Stream ``url`` into ``writer``, not committed (the caller sniffs ``writer.head`` first); returns the
        last path segment of the final URL (a file name hint) once the body is whole."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url, writer, limit)
        except TimeoutError:
            writer.abort()
            raise MediaFetchTimeout(f"the media URL did not answer in full within {self.timeout:g} s") from None

    async def _fetch(self, url: str, writer: BlobWriter, limit: int) -> str | None:
        connector = guarded_connector(self.policy, limit=4)
        async with aiohttp.ClientSession(connector=connector, trust_env=False,
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            for _hop in range(self.max_redirects + 1):
                check_scheme(url)
                try:
                    self.policy.check_literal(url)
                    async with session.get(url, allow_redirects=False) as response:
                        if response.status in _REDIRECTS and "Location" in response.headers:
                            url = urljoin(url, response.headers["Location"])
                            continue
                        if response.status >= 400:
                            raise MediaFetchFailed(f"the media URL answered {response.status}",
                                                   details={"upstream_status": response.status})
                        await _body(response, writer, limit)
                        return _name_hint(url)
                except AddressRefused:
                    raise _refused() from None
                except aiohttp.InvalidURL:  # e.g. a host aiohttp will not read (``2130706433``)
                    raise MediaUrlRefused("the media URL is not a valid URL") from None
                except aiohttp.ClientConnectorError as exc:
                    if isinstance(exc.os_error, AddressRefused):
                        raise _refused() from None
                    raise MediaFetchFailed("the media URL could not be reached") from None
                except (aiohttp.ClientError, ValueError):
                    raise MediaFetchFailed("the media URL could not be read") from None
        raise MediaFetchFailed(f"the media URL redirected more than {self.max_redirects} times")


def _name_hint(url: str) -> str | None:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name or None
