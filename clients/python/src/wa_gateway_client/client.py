"""The asynchronous client (aiohttp): one method per endpoint of the gateway, typed results, typed errors.

    async with AsyncClient("http://127.0.0.1:3001", api_key=KEY) as wa:
        message = await wa.send("+14155550123", "Hello")          # the default account
        sales = wa.account("sales")                                # any other account: the same methods
        async for event in sales.stream(after=last_seq):          # live, resumes by itself
            ...

Why it is shaped like this:
- Per-account methods live on :class:`AsyncAccount`; the client itself is the ``default`` account (the
  gateway's original paths) plus the global routes (health, accounts, the admin's webhook views).
- ``send`` makes an Idempotency-Key when the caller gives none, once per call, so every retry of that call
  (on 429/503 or a dropped connection) is the same message to the gateway, never a second one.
- 429 and 503 are retried, honouring ``Retry-After`` (capped); a request the gateway may have acted on
  (a POST without an idempotency key) is not retried after a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp

from . import errors
from .chats import ChatMethods
from .conversation import ConversationMethods, post_message
from .groups import GroupMethods
from .media import MediaMethods
from .models import (
    Account,
    AccountDeleted,
    Delivery,
    Disconnected,
    Event,
    EventPage,
    Health,
    InboundMessage,
    Key,
    KeyCreated,
    Message,
    Page,
    Ready,
    Status,
    Webhook,
    WebhookSecret,
    WebhookTestResult,
    message_of,
)
from .retry import Retry, retry_after_seconds
from .sse import parse_sse

DEFAULT_URL = "http://127.0.0.1:3001"
RETRY_STATUSES = (429, 503)
SAFE_METHODS = ("GET", "HEAD", "DELETE", "OPTIONS")


class AsyncAccount(MediaMethods, ConversationMethods, GroupMethods, ChatMethods):
    """Every per-account endpoint of one account (media: media.py; replies, reactions, edits, revokes, reads,
    presence, locations, contact cards, polls: conversation.py; groups: groups.py). Get one from
    :meth:`AsyncClient.account`."""

    def __init__(self, client: AsyncClient, name: str):
        self._client = client
        self.name = name
        # `default` keeps the original paths (/status, /send, ...): they work with a key scoped to default too.
        self._prefix = "" if name == "default" else f"/accounts/{quote(name, safe='')}"
        self._webhooks = f"/accounts/{quote(name, safe='')}/webhooks"

    def _p(self, path: str) -> str:
        return self._prefix + path

    # --- the session ---------------------------------------------------------------------------------
    async def status(self) -> Status:
        return Status.model_validate(await self._client.request("GET", self._p("/status")))

    async def connect(self, phone_number: str | None = None) -> Status:
        """Start linking: the answer carries the first QR (``state == "qr"``), with ``phone_number`` (the account's
        own) the code to type on that phone (``state == "pairing_code"``, ``pairing_code``), or ``connected``."""
        body = {"phone_number": phone_number} if phone_number else {}
        return Status.model_validate(await self._client.request("POST", self._p("/connect"), json=body))

    async def disconnect(self) -> Disconnected:
        """Log out at WhatsApp (the phone shows the device gone) and forget the session: a new QR is needed."""
        return Disconnected.model_validate(await self._client.request("POST", self._p("/disconnect"), json={}))

    logout = disconnect

    async def qr(self, format: str = "png") -> bytes:
        """The current QR as ``png``, ``svg``, ``terminal`` (text to print) or ``raw`` (the payload);
        :class:`errors.QrUnavailable` when the account is not waiting for a scan."""
        image: bytes = await self._client.request("GET", self._p("/qr"), params={"format": format}, raw=True)
        return image

    # --- messages ------------------------------------------------------------------------------------
    async def send(self, phone_number: str, message: str, *, reply_to: str | None = None,
                   idempotency_key: str | None = None, wait: float | None = None) -> Message:
        """Queue a text message (durable when this returns) and wait up to ``wait`` s (the gateway's
        WA_SEND_WAIT by default; 0 returns at once) for WhatsApp's ack. ``reply_to``: the id of a message of
        that chat (a contact's or ours) that it quotes. Raises a :class:`errors.SendFailed` subclass when it
        ended failed."""
        body = {"phone_number": phone_number, "message": message, **({"reply_to": reply_to} if reply_to else {})}
        return await post_message(self._client, self._p("/send"), json=body, idempotency_key=idempotency_key,
                                  wait=wait)

    async def message(self, message_id: str) -> Message | InboundMessage:
        return message_of(await self._client.request("GET", self._p(f"/messages/{quote(message_id, safe='')}")))

    async def cancel(self, message_id: str) -> Message:
        """Cancel a message that is still queued (:class:`errors.NotCancellable` once it is sending)."""
        return Message.model_validate(
            await self._client.request("DELETE", self._p(f"/messages/{quote(message_id, safe='')}")))

    async def messages(self, *, direction: str = "out", status: str | None = None, phone_number: str | None = None,
                       limit: int | None = None, cursor: str | None = None) -> Page:
        """One page, newest first: ``direction`` ``out`` (sent) or ``in`` (received)."""
        data = await self._client.request("GET", self._p("/messages"), params=_query(
            direction=direction, status=status, phone_number=phone_number, limit=limit, cursor=cursor))
        return Page(items=[message_of(m) for m in data["messages"]], next_cursor=data.get("next_cursor"))

    async def iter_messages(self, **filters: Any) -> AsyncIterator[Message | InboundMessage]:
        """Every message matching ``filters`` (see :meth:`messages`), newest first, page after page."""
        cursor = None
        while True:
            page = await self.messages(**filters, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # --- events --------------------------------------------------------------------------------------
    async def events(self, after: int = 0, *, limit: int | None = None,
                     types: list[str] | tuple[str, ...] | None = None) -> EventPage:
        """The durable event log after ``after`` (a seq), oldest first; ask again with ``next_after``."""
        data = await self._client.request("GET", self._p("/events"), params=_query(
            after=after, limit=limit, types=",".join(types) if types else None))
        return EventPage.model_validate(data)

    async def stream(self, after: int | None = None, *, types: list[str] | tuple[str, ...] | None = None,
                     reconnect: bool = True) -> AsyncIterator[Event]:
        """Live events over SSE. With ``after`` (a seq, 0 for the whole retained log) it replays what came
        after first; without, it starts from now. It resumes after a dropped stream or a gateway restart
        from the last event it yielded (``Last-Event-ID``), so nothing is missed and nothing repeats;
        ``reconnect=False`` ends the iteration instead. Break out of the loop to stop."""
        last = after
        attempt = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            params = _query(types=",".join(types) if types else None)
            try:
                async with self._client.open_stream(self._p("/events/stream"), headers=headers, params=params) as resp:
                    attempt = 0
                    async for sse in parse_sse(resp.content.iter_any()):
                        if sse.data is None:
                            continue
                        event = Event.model_validate({**json.loads(sse.data), "seq": int(sse.id) if sse.id else None})
                        if event.seq is not None:
                            last = event.seq
                        yield event
            except (aiohttp.ClientError, asyncio.TimeoutError, errors.GatewayUnreachable,
                    errors.ServiceUnavailableError) as exc:
                if not reconnect:
                    raise errors.GatewayUnreachable(f"the event stream ended: {exc}") from exc
                retry_after = getattr(exc, "retry_after", None)
                await asyncio.sleep(self._client.retry.delay(min(attempt, 5), retry_after))
                attempt += 1
                continue
            if not reconnect:
                return

    # --- webhooks of this account --------------------------------------------------------------------
    async def webhooks(self) -> list[Webhook]:
        data = await self._client.request("GET", self._webhooks)
        return [Webhook.model_validate(w) for w in data["webhooks"]]

    async def add_webhook(self, url: str, events: list[str] | None = None) -> Webhook:
        """A webhook for this account's events; its ``secret`` (verify deliveries with it) is shown only here.
        An internal address is refused (``WebhookUrlNotAllowed``) unless the operator allows it."""
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = events
        return Webhook.model_validate(await self._client.request("POST", self._webhooks, json=body))

    async def rotate_webhook_secret(self, webhook_id: str, overlap: int | None = None) -> WebhookSecret:
        """A new signing secret for one webhook; the old one keeps signing beside it for ``overlap`` seconds
        (the gateway's default: a day), so verify with both meanwhile (``WebhookVerifier([new, old])``)."""
        body = {} if overlap is None else {"overlap": overlap}
        return WebhookSecret.model_validate(await self._client.request(
            "POST", f"{self._webhooks}/{quote(webhook_id, safe='')}/rotate-secret", json=body))

    async def remove_webhook(self, webhook_id: str) -> Webhook:
        return Webhook.model_validate(
            await self._client.request("DELETE", f"{self._webhooks}/{quote(webhook_id, safe='')}"))

    async def test_webhooks(self, endpoint: str | None = None) -> list[WebhookTestResult]:
        """Send a signed ``webhook.test`` to this account's endpoints (or one) now; one result each."""
        data = await self._client.request("POST", f"{self._webhooks}/test", json=_query(endpoint=endpoint))
        return [WebhookTestResult.model_validate(r) for r in data["results"]]

    async def deliveries(self, *, status: str | None = None, endpoint: str | None = None,
                         limit: int | None = None, cursor: str | None = None) -> Page:
        return await self._client._deliveries(self._webhooks, status, endpoint, limit, cursor)

    async def delivery(self, delivery_id: str) -> Delivery:
        return Delivery.model_validate(
            await self._client.request("GET", f"{self._webhooks}/deliveries/{quote(delivery_id, safe='')}"))

    async def redrive(self, delivery_id: str | None = None, *, endpoint: str | None = None) -> int:
        """Retry one dead-lettered delivery, or (no id) every one, optionally of one endpoint; the count."""
        return await self._client._redrive(self._webhooks, delivery_id, endpoint)

    # --- keys scoped to this account (admin key only) ------------------------------------------------
    async def create_key(self, label: str | None = None) -> KeyCreated:
        return KeyCreated.model_validate(await self._client.request(
            "POST", f"/accounts/{quote(self.name, safe='')}/keys", json=_query(label=label)))

    async def keys(self) -> list[Key]:
        data = await self._client.request("GET", f"/accounts/{quote(self.name, safe='')}/keys")
        return [Key.model_validate(k) for k in data["keys"]]

    async def revoke_key(self, key_id: str) -> Key:
        return Key.model_validate(await self._client.request(
            "DELETE", f"/accounts/{quote(self.name, safe='')}/keys/{quote(key_id, safe='')}"))

    async def ready(self) -> Ready:
        return await self._client.ready(self.name)


class AsyncClient(AsyncAccount):
    """A gateway at ``url`` with an API key (admin, or scoped to one account); it is also the ``default``
    account. Use as ``async with``, or call :meth:`close`. ``session`` lets a backend share its own
    aiohttp session (then the client does not close it)."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, *, timeout: float = 30.0,
                 retry: Retry | None = None, session: aiohttp.ClientSession | None = None,
                 user_agent: str = "wa-gateway-client"):
        super().__init__(self, "default")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retry = retry or Retry()
        self._session = session
        self._own_session = session is None
        self._headers = {"User-Agent": user_agent, **({"X-API-Key": api_key} if api_key else {})}

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    def account(self, name: str) -> AsyncAccount:
        return self if name == "default" else AsyncAccount(self, name)

    # --- the one way requests go ---------------------------------------------------------------------
    async def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                      headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
                      raw: bool = False, with_headers: bool = False, ok: tuple[int, ...] = (),
                      data: Callable[[], Any] | None = None, upload: bool = False) -> Any:
        """One call with retries: the JSON body (or bytes with ``raw``), or raises the error's class.
        ``ok`` lists non-2xx statuses that are answers, not errors (``/health/ready``'s 503). ``data`` makes
        a body per attempt (a form is spent once sent); ``upload``: no limit on the whole, only per read."""
        safe = method in SAFE_METHODS if idempotent is None else idempotent
        attempt = 0
        while True:
            try:
                async with self._http().request(
                        method, self.url + path, json=json, data=data() if data else None, params=params,
                        headers={**self._headers, **(headers or {})}, timeout=aiohttp.ClientTimeout(
                            total=None if upload else self.timeout, sock_read=self.timeout)) as resp:
                    body = await resp.read()
                    if resp.status < 400 or resp.status in ok:
                        result: Any = body if raw else errors.json_body(resp.status, body)
                        return (result, resp.headers) if with_headers else result
                    error = errors.from_response(resp.status, errors.json_or_none(body),
                                                 retry_after_seconds(resp.headers.get("Retry-After")))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = errors.GatewayUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}".rstrip(": "))
                if not safe:  # the gateway may have acted: only the caller knows whether to repeat
                    raise error from exc
            retryable = isinstance(error, errors.GatewayUnreachable) or error.status in RETRY_STATUSES
            attempt += 1
            if not retryable or attempt >= self.retry.attempts:
                raise error
            await asyncio.sleep(self.retry.delay(attempt - 1, error.retry_after))

    @asynccontextmanager
    async def open_stream(self, path: str, *, headers: Mapping[str, str],
                          params: Mapping[str, Any] | None) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open SSE response (context manager); a refusal raises the error's class."""
        try:
            resp = await self._http().get(
                self.url + path, params=params, headers={**self._headers, **headers},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout))
        except aiohttp.ClientError as exc:
            raise errors.GatewayUnreachable(f"GET {path}: {exc}") from exc
        try:
            if resp.status != 200:
                body = await resp.read()
                raise errors.from_response(resp.status, errors.json_or_none(body),
                                           retry_after_seconds(resp.headers.get("Retry-After")))
            yield resp
        finally:
            resp.release()

    # --- global routes -------------------------------------------------------------------------------
    async def health(self) -> Health:
        return Health.model_validate(await self.request("GET", "/health"))

    async def live(self) -> bool:
        status: str = (await self.request("GET", "/health/live"))["status"]
        return status == "ok"

    async def ready(self, account: str = "default") -> Ready:
        return Ready.model_validate(await self.request("GET", "/health/ready", params={"account": account},
                                                       ok=(503,), idempotent=False))

    async def openapi(self) -> dict[str, Any]:
        document: dict[str, Any] = await self.request("GET", "/openapi.json")
        return document

    async def accounts(self) -> list[Account]:
        return [Account.model_validate(a) for a in (await self.request("GET", "/accounts"))["accounts"]]

    async def create_account(self, name: str, *, proxy_url: str | None = None) -> Account:
        """``proxy_url``: its own proxy for WhatsApp (an ``http://`` or ``socks5://`` URL, or ``"direct"`` for
        none); None: WA_PROXY_URL applies."""
        body = _query(name=name, proxy_url=proxy_url)
        return Account.model_validate(await self.request("POST", "/accounts", json=body))

    async def set_account_proxy(self, name: str, proxy_url: str | None) -> Account:
        """Admin key. Its own proxy from its next connection: a URL, ``"direct"`` (none) or None (WA_PROXY_URL)."""
        return Account.model_validate(await self.request(
            "PATCH", f"/accounts/{quote(name, safe='')}", json={"proxy_url": proxy_url}, idempotent=True))

    async def get_account(self, name: str) -> Account:
        return Account.model_validate(await self.request("GET", f"/accounts/{quote(name, safe='')}"))

    async def delete_account(self, name: str) -> AccountDeleted:
        """Log the account out at WhatsApp and delete everything of it (not ``default``)."""
        return AccountDeleted.model_validate(await self.request("DELETE", f"/accounts/{quote(name, safe='')}"))

    async def test_webhook_url(self, url: str) -> WebhookTestResult:
        """Send a signed ``webhook.test`` to any URL now (admin key): is it reachable, does it verify?"""
        data = await self.request("POST", "/webhooks/test", json={"url": url})
        return WebhookTestResult.model_validate(data["results"][0])

    async def test_all_webhooks(self, endpoint: str | None = None) -> list[WebhookTestResult]:
        """Send a signed ``webhook.test`` to every configured endpoint (global and accounts'), or one."""
        data = await self.request("POST", "/webhooks/test", json=_query(endpoint=endpoint))
        return [WebhookTestResult.model_validate(r) for r in data["results"]]

    async def all_deliveries(self, *, status: str | None = None, endpoint: str | None = None,
                             limit: int | None = None, cursor: str | None = None) -> Page:
        """Every delivery to every endpoint (admin key)."""
        return await self._deliveries("/webhooks", status, endpoint, limit, cursor)

    async def redrive_all(self, delivery_id: str | None = None, *, endpoint: str | None = None) -> int:
        return await self._redrive("/webhooks", delivery_id, endpoint)

    async def _deliveries(self, base: str, status: str | None, endpoint: str | None, limit: int | None,
                          cursor: str | None) -> Page:
        data = await self.request("GET", f"{base}/deliveries", params=_query(
            status=status, endpoint=endpoint, limit=limit, cursor=cursor))
        return Page(items=[Delivery.model_validate(d) for d in data["deliveries"]], next_cursor=data.get("next_cursor"))

    async def _redrive(self, base: str, delivery_id: str | None, endpoint: str | None) -> int:
        if delivery_id is not None:
            await self.request("POST", f"{base}/deliveries/{quote(delivery_id, safe='')}/retry", json={})
            return 1
        data = await self.request("POST", f"{base}/deliveries/retry", json=_query(endpoint=endpoint))
        retried: int = data["retried"]
        return retried


def _query(**values: Any) -> dict[str, Any]:
    """Only the given values, as the gateway reads them."""
    return {k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in values.items() if v is not None}

