"""The synchronous client: the same methods as :class:`AsyncClient`, blocking, for scripts, Django views,
Celery tasks and the CLI.

It runs one :class:`AsyncClient` on a private event loop in a daemon thread and hands each call to it, so
both APIs share one implementation (retries, idempotency keys, errors) and cannot drift apart. Iterators
(``iter_messages``, ``stream``) are pulled one item at a time through the same loop.

    with Client("http://127.0.0.1:3001", api_key=KEY) as wa:
        print(wa.status().state)
        wa.account("sales").send("+14155550123", "Hello")
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from .client import AsyncAccount, AsyncClient


class _Loop:
    """An event loop of its own in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wa-gateway-client", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def iterate(self, agen: AsyncGenerator[Any, None]) -> Iterator[Any]:
        try:
            while True:
                try:
                    yield self.run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:  # the caller broke out: close the async generator (and its stream) on its loop
            self.run(agen.aclose())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _blocking(name: str, method: Any) -> Any:
    """A blocking twin of ``AsyncAccount.<name>`` with its signature and docstring."""
    if inspect.isasyncgenfunction(method):
        @functools.wraps(method)
        def iterate(self: Account, *args: Any, **kwargs: Any) -> Iterator[Any]:
            return self._loop.iterate(getattr(self._async, name)(*args, **kwargs))
        return iterate

    @functools.wraps(method)
    def call(self: Account, *args: Any, **kwargs: Any) -> Any:
        return self._loop.run(getattr(self._async, name)(*args, **kwargs))
    return call


class Account:
    """Every per-account endpoint of one account, blocking. Get one from :meth:`Client.account`."""

    def __init__(self, loop: _Loop, target: AsyncAccount):
        self._loop = loop
        self._async = target
        self.name = target.name


class Client(Account):
    """A gateway at ``url`` with an API key; also the ``default`` account. See :class:`AsyncClient`."""

    _async: AsyncClient

    def __init__(self, url: str | None = None, api_key: str | None = None, **options: Any):
        loop = _Loop()
        kwargs: dict[str, Any] = {"url": url} if url else {}

        async def make() -> AsyncClient:  # aiohttp objects belong to the loop they were made on
            return AsyncClient(api_key=api_key, **kwargs, **options)
        super().__init__(loop, loop.run(make()))
        self.url = self._async.url

    def account(self, name: str) -> Account:
        return self if name == "default" else Account(self._loop, self._async.account(name))

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        self._loop.run(self._async.close())
        self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


for _name, _method in inspect.getmembers(AsyncAccount, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(Account, _name, _blocking(_name, _method))
for _name, _method in vars(AsyncClient).items():  # the global routes (and ready's override)
    if inspect.isfunction(_method) and not _name.startswith("_") \
            and _name not in ("account", "close", "request", "open_stream"):
        setattr(Client, _name, _blocking(_name, _method))
