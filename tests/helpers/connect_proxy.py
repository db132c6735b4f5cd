"""A small HTTP CONNECT proxy for tests (RFC 9110 9.3.6), with optional Basic credentials
(``Proxy-Authorization``, 407 without them): it tunnels to any host and port and counts the tunnels
(proxy_server.py). ``refuse=True`` answers every CONNECT with 403, as a proxy whose policy forbids it."""

from __future__ import annotations

import asyncio
import base64
import binascii

from tests.helpers.proxy_server import ProxyServer

MAX_HEADER_LINES = 100


class ConnectProxy(ProxyServer):
    scheme = "http"

    async def handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        request = (await reader.readline()).decode("latin-1").split()
        headers = {}
        for _ in range(MAX_HEADER_LINES):
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(request) != 3 or request[0] != "CONNECT":
            self.refused += 1
            return await _answer(writer, "405 Method Not Allowed")
        if not self.credentials_ok(*_basic(headers.get("proxy-authorization", ""))):
            return await _answer(writer, '407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"')
        if self.refuse:
            self.refused += 1
            return await _answer(writer, "403 Forbidden")
        host, _, port = request[1].rpartition(":")
        return host.strip("[]"), int(port)

    async def opened(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

    async def failed(self, writer: asyncio.StreamWriter) -> None:
        await _answer(writer, "502 Bad Gateway")


async def _answer(writer: asyncio.StreamWriter, status: str) -> None:
    writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode("latin-1"))
    await writer.drain()
    return None


def _basic(header: str) -> tuple[str | None, str | None]:
    kind, _, token = header.partition(" ")
    if kind.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password
