"""Where the gateway may connect on a caller's say-so: the address policy for URLs the API is given (a
webhook endpoint created by API, a media URL to fetch for /send).

A URL's host is resolved once, every resolved address is judged with ``ipaddress`` (never by its spelling),
and the connection goes to exactly those addresses: ``GuardedResolver`` is the aiohttp connector's resolver,
so the address checked is the address connected to (the Host header and TLS SNI keep the name). One refused
address refuses the URL. Refused: loopback, link-local, private (RFC 1918), unique-local, carrier-grade NAT,
multicast, unspecified, broadcast, reserved and documentation ranges, and the IPv6 forms that carry such an
IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4, Teredo). Odd spellings (``2130706433``,
``0x7f.1``, ``127.1``, a trailing dot, upper case, IDNA) resolve to what the system makes of them, and that
address is what is judged. IP literals never reach aiohttp's resolver: ``check_literal`` judges them.

Each user has its own operator allowlist of networks (CIDRs) or host names let through: webhooks
``WA_WEBHOOK_ALLOW_PRIVATE`` (the operator's own ``WA_WEBHOOK_URL`` endpoints are trusted and not checked, see
docs/webhooks.md, "Webhook addresses"), media fetches ``WA_MEDIA_FETCH_ALLOW_PRIVATE`` (service/media/fetch.py).

A shared top-level module (webhooks and media both use it): standard library only but for aiohttp's resolver
interface (settings import ``parse_allowlist``).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Lookup = Callable[[str, int], Awaitable[list[str]]]

REFUSED_REASON = "address not allowed"  # the only thing a failed attempt says about it

_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32")]
_V6 = [ipaddress.ip_network(n) for n in (
    "::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8")]
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*")


class AddressRefused(OSError):
    """The URL's host is, or resolves to, an address the policy refuses (or it does not resolve)."""

    def __init__(self) -> None:
        super().__init__(errno.EACCES, REFUSED_REASON)


def embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for: mapped, compatible, NAT64, 6to4, Teredo."""
    found = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    if ip in NAT64 or int(ip) >> 32 == 0:  # 64:ff9b::a.b.c.d, ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


def forbidden(ip: IP) -> bool:
    """Whether the gateway may not connect to ``ip`` on a caller's say-so (before any allowlist)."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(int(ip))  # drop a %scope
        inner = embedded_v4(ip)
        if ip in NAT64:  # a NAT64 address is what it translates to
            return any(forbidden(v4) for v4 in inner)
        if any(forbidden(v4) for v4 in inner):
            return True
        blocked = _V6
    else:
        blocked = _V4
    return (not ip.is_global or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_unspecified or ip.is_reserved or any(ip in net for net in blocked))


def normalize_host(host: str) -> str:
    """A host as compared: lower case, no trailing dot, IDNA (punycode)."""
    host = host.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def parse_allowlist(raw: str | None) -> tuple[str, ...]:
    """An allowlist (``WA_WEBHOOK_ALLOW_PRIVATE``, ``WA_MEDIA_FETCH_ALLOW_PRIVATE``): CIDRs or addresses
    (``10.1.0.0/16``, ``127.0.0.1``, ``::1``) and host names (``receiver.internal``),
    comma-separated; normalized. ValueError names a bad entry's position."""
    found: list[str] = []
    for n, part in enumerate((raw or "").split(","), 1):
        entry = part.strip()
        if not entry:
            continue
        try:
            value = str(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            value = normalize_host(entry)
            if not _HOST.fullmatch(value) or value.replace(".", "").isdigit():
                raise ValueError(f"entry {n} is neither a CIDR, an IP address nor a host name") from None
        if value not in found:
            found.append(value)
    return tuple(found)


async def system_lookup(host: str, port: int) -> list[str]:
    """The addresses the system resolves ``host`` to (what a plain connection would use)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _ip(value: str) -> IP | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class AddressPolicy:
    """What a URL given by API may reach: public addresses, plus the operator's allowlist."""

    allow: tuple[str, ...] = ()  # normalized allowlist entries (parse_allowlist)
    lookup: Lookup = system_lookup  # the resolver seam (tests inject names that resolve inside)
    # Derived from ``allow`` by __post_init__: its networks, and its host names.
    _nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(a) for a in self.allow if _ip(a.split("/")[0]) is not None)
        object.__setattr__(self, "_nets", nets)
        object.__setattr__(self, "_hosts", frozenset(a for a in self.allow if _ip(a.split("/")[0]) is None))

    def permits(self, ip: IP) -> bool:
        forms = [ip, *embedded_v4(ip)] if isinstance(ip, ipaddress.IPv6Address) else [ip]
        if any(f in net for f in forms for net in self._nets if f.version == net.version):
            return True
        return not forbidden(ip)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses of ``host`` (resolved once); AddressRefused if any is refused or none."""
        name = normalize_host(host)
        literal = _ip(name)
        if literal is not None:
            if not self.permits(literal):
                raise AddressRefused()
            return [str(literal)]
        try:
            found = await self.lookup(name, port)
        except (OSError, UnicodeError):
            raise AddressRefused() from None
        parsed = [_ip(a) for a in found]
        ips = [ip for ip in parsed if ip is not None]
        if not ips or len(ips) != len(parsed):
            raise AddressRefused()
        if name not in self._hosts and not all(self.permits(ip) for ip in ips):
            raise AddressRefused()
        return [str(ip) for ip in ips]

    async def check_url(self, url: str) -> list[str]:
        """At creation (and before a ping): the URL's host resolves only to addresses it may reach."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return await self.addresses(parts.hostname or "", port)

    def check_literal(self, url: str) -> None:
        """At delivery: an IP literal host is connected to as written, without a resolver: judge it here."""
        literal = _ip(normalize_host(urlsplit(url).hostname or ""))
        if literal is not None and not self.permits(literal):
            raise AddressRefused()


def guarded_resolver(policy: AddressPolicy) -> AbstractResolver:
    """An aiohttp resolver that resolves once, checks, and hands the connector exactly the checked addresses."""
    from aiohttp.abc import AbstractResolver

    class GuardedResolver(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            checked = await policy.addresses(host, port)
            return [{"hostname": host, "host": a, "port": port, "proto": 0,
                     "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                     "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV} for a in checked]

        async def close(self) -> None:
            return None

    return GuardedResolver()


def guarded_connector(policy: AddressPolicy | None, limit: int = 100) -> aiohttp.TCPConnector:
    """The connector of an endpoint's session: pinned to checked addresses, no DNS cache (each new connection
    resolves and checks again: DNS changes). ``policy`` None: a trusted (WA_WEBHOOK_URL) endpoint."""
    import aiohttp

    if policy is None:
        return aiohttp.TCPConnector(limit=limit)
    return aiohttp.TCPConnector(limit=limit, resolver=guarded_resolver(policy), use_dns_cache=False)
