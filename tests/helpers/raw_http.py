"""HTTP over a raw socket, for requests no HTTP client library would send (bytes that are not UTF-8 in headers,
oversized lines, smuggling framings, bodies that stop or trickle): a request's bytes, and the answer read back
(None as the status when the connection closed without one)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

from tests.helpers.stack import API_KEY, Stack

KEY = API_KEY.encode()
JSON = b"application/json"


@dataclass
class Raw:
    status: int | None  # None: the connection closed without an answer
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def req(method: str, path: str, body: bytes | None = None, *, key: bytes | None = KEY,
        ct: bytes | None = JSON, extra: tuple[bytes, ...] = (), length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    if key is not None:
        lines.append(b"X-Api-Key: " + key)
    if ct is not None and body is not None:
        lines.append(b"Content-Type: " + ct)
    if body is not None and length:
        lines.append(b"Content-Length: %d" % len(body))
    lines.extend(extra)
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def read_response(sock: socket.socket) -> Raw:
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except ConnectionResetError:
        pass
    if b"\r\n\r\n" not in buf:
        return Raw(None, {}, buf)
    head, _, rest = buf.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Raw(int(status_line.split()[1]), headers, rest[:length])


def send(stack: Stack, data: bytes, timeout: float = 20) -> Raw:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):  # it answered early and closed: read that
            pass
        return read_response(sock)
