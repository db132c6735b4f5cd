"""What the test proxies share (connect_proxy.py, socks5_proxy.py): an asyncio server on a free loopback port in
a thread of its own (the whole-stack tests block), the relay of a tunnel's bytes both ways, and the count of
the tunnels it carried per destination, so a test can prove that a connection went through it.

A subclass implements ``handshake(reader, writer)``: it reads the client's request, checks the credentials,
answers, and returns the (host, port) to open a tunnel to, or None when it refused (it answered already).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter


class ProxyServer:
    scheme = ""

    def __init__(self, username: str | None = None, password: str | None = None, *, refuse: bool = False):
        self.username, self.password, self.refuse = username, password, refuse
        self.connections: Counter[tuple[str, int]] = Counter()  # tunnels opened, per (host, port)
        self.auth_failures = 0  # clients refused for missing or wrong credentials
        self.refused = 0  # requests refused with credentials right (``refuse``) or an unsupported request
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"test-{self.scheme}-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- to the test ---------------------------------------------------------------------------
    def url(self, username: str | None = None, password: str | None = None) -> str:
        """This proxy's URL, with the given credentials (or its own when it has some)."""
        user, pw = (username, password) if username is not None else (self.username, self.password)
        creds = f"{user}:{pw}@" if user is not None else ""
        return f"{self.scheme}://{creds}127.0.0.1:{self.port}"

    def carried(self, port: int) -> int:
        """Tunnels opened to a loopback ``port`` (the emulator's)."""
        return sum(n for (host, p), n in self.connections.items() if p == port)

    def start(self) -> ProxyServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the server ----------------------------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            target = await asyncio.wait_for(self.handshake(reader, writer), 10)
            if target is None:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
            except OSError:
                await self.failed(writer)
                return
            self.connections[target] += 1
            await self.opened(writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    def credentials_ok(self, username: str | None, password: str | None) -> bool:
        ok = self.username is None or (username, password) == (self.username, self.password)
        if not ok:
            self.auth_failures += 1
        return ok

    async def handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        raise NotImplementedError

    async def opened(self, writer: asyncio.StreamWriter) -> None:
        """The tunnel is open: tell the client."""

    async def failed(self, writer: asyncio.StreamWriter) -> None:
        """The destination did not answer: tell the client."""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:
                pass
