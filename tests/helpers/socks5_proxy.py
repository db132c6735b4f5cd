"""A small SOCKS5 proxy for tests: RFC 1928 (CONNECT to an IPv4, IPv6 or domain address) with RFC 1929
username/password authentication when it has credentials (no-auth otherwise). It tunnels and counts the
tunnels (proxy_server.py). ``refuse=True`` answers every request with 0x02, "connection not allowed by ruleset"."""

from __future__ import annotations

import asyncio
import ipaddress

from tests.helpers.proxy_server import ProxyServer

NO_AUTH, USER_PASS, NO_METHOD = 0x00, 0x02, 0xFF
SUCCEEDED, NOT_ALLOWED, HOST_UNREACHABLE, COMMAND_NOT_SUPPORTED = 0x00, 0x02, 0x04, 0x07


class Socks5Proxy(ProxyServer):
    scheme = "socks5"

    async def handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5:
            return None
        wanted = USER_PASS if self.username is not None else NO_AUTH
        if wanted not in methods:
            self.auth_failures += 1
            writer.write(bytes([5, NO_METHOD]))
            return None
        writer.write(bytes([5, wanted]))
        if wanted == USER_PASS and not await self._authenticate(reader, writer):
            return None
        _, command, _, kind = await reader.readexactly(4)
        host = await _address(reader, kind)
        port = int.from_bytes(await reader.readexactly(2), "big")
        if command != 1:  # CONNECT only
            self.refused += 1
            return await _reply(writer, COMMAND_NOT_SUPPORTED)
        if self.refuse:
            self.refused += 1
            return await _reply(writer, NOT_ALLOWED)
        return host, port

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD; answered 1, 0 (success) or 1, 1."""
        _, ulen = await reader.readexactly(2)
        username = (await reader.readexactly(ulen)).decode("utf-8", "replace")
        (plen,) = await reader.readexactly(1)
        password = (await reader.readexactly(plen)).decode("utf-8", "replace")
        ok = self.credentials_ok(username, password)
        writer.write(bytes([1, 0 if ok else 1]))
        await writer.drain()
        return ok

    async def opened(self, writer: asyncio.StreamWriter) -> None:
        await _reply(writer, SUCCEEDED)

    async def failed(self, writer: asyncio.StreamWriter) -> None:
        await _reply(writer, HOST_UNREACHABLE)


async def _address(reader: asyncio.StreamReader, kind: int) -> str:
    if kind == 1:
        return str(ipaddress.IPv4Address(await reader.readexactly(4)))
    if kind == 4:
        return str(ipaddress.IPv6Address(await reader.readexactly(16)))
    if kind == 3:
        (length,) = await reader.readexactly(1)
        return (await reader.readexactly(length)).decode("idna")
    raise ValueError(f"address type {kind}")


async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
    # bound address 0.0.0.0:0: the clients here do not use it
    writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
    await writer.drain()
    return None
