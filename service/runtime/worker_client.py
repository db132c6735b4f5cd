"""The gateway's only door to the worker: HTTP over the worker's unix socket in the private run dir.

The socket lives in a 0700 directory, so only the gateway's user can reach the worker; no secret
travels and nothing listens on a network port. Errors from the worker keep their shape and
status, so one error vocabulary spans both sides of the boundary.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from service.errors import ApiError, WorkerUnavailable
from service.media.kinds import CAPTIONED
from service.store.outbox_ids import is_group

log = structlog.get_logger("gateway.worker_client")


# What a client reads for the worker's 5xx codes: what happened in general terms, never the worker's text.
_WORKER_5XX = {
    "whatsapp_error": "WhatsApp did not take the request; it is retried where that is safe.",
    "whatsapp_timeout": "WhatsApp did not answer in time; retry later.",
    "session_store_error": "The WhatsApp session store failed; the gateway log has the detail.",
    "store_error": "The worker could not store the message; nothing was sent.",
}


def _object(answer: Any) -> dict[str, Any]:
    """The worker answers a JSON object on every route; anything else is its failure, not the client's."""
    if not isinstance(answer, dict):
        raise ApiError("The worker answered something other than a JSON object.", code="worker_error", status=502)
    return answer


class WorkerApi:
    """The worker's internal API, for whichever account ``request`` addresses."""

    _timeout: float

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                      timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def status(self) -> dict[str, Any]:
        return _object(await self.request("GET", "/status"))

    async def poll_status(self, timeout: float) -> dict[str, Any]:
        """The worker's status in one try, bounded by ``timeout``: a worker that is starting or away answers
        ApiError at once (the link's poll must not wait for it as a request would)."""
        return _object(await self._request_once("GET", "/status", timeout=timeout))

    async def _request_once(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                            timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def connect(self, wait_qr: float, phone_number: str | None = None) -> dict[str, Any]:
        """``phone_number``: link by pairing code for that number (the answer's ``pairing_code``), not by QR."""
        body: dict[str, Any] = {"wait_ms": int(wait_qr * 1000)}
        if phone_number is not None:
            body["phone_number"] = phone_number
        return _object(await self.request("POST", "/connect", json=body, timeout=wait_qr + self._timeout))

    async def disconnect(self) -> dict[str, Any]:
        return _object(await self.request("POST", "/disconnect"))

    async def send_text(self, phone_number: str, text: str, message_id: str | None = None) -> dict[str, Any]:
        """``message_id`` becomes the WhatsApp message id (the outbox derives it from its own id)."""
        body = {"phone_number": phone_number, "text": text}
        if message_id is not None:
            body["id"] = message_id
        return _object(await self.request("POST", "/send", json=body))

    async def send_message(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """One message as ``worker_message`` makes it (text or media)."""
        return _object(await self.request("POST", "/send", json=message, timeout=timeout))

    async def send_batch(self, messages: list[dict[str, Any]], *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Messages ``{phone_number, text|media, id}`` to one recipient, sent in this order in one request: one
        result per message, ``{id, status}`` or ``{id, error: {status, code, message}}``; after a failure
        other than not_on_whatsapp the rest are ``not_attempted`` (so none overtakes a retry)."""
        answer = _object(await self.request("POST", "/send/batch", json={"messages": messages}, timeout=timeout))
        results = answer.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise ApiError("The worker answered without a result per message.", code="worker_error", status=502)
        return results

    async def events(self, after: int, wait: float, boot_id: str | None = None) -> dict[str, Any]:
        """Events after ``after`` of boot ``boot_id``: a new worker answers at once with its own boot id."""
        params = {"after": str(after), "wait_ms": str(int(wait * 1000))}
        if boot_id:
            params["boot_id"] = boot_id
        return _object(await self.request(
            "GET", "/events", params=params,
            timeout=wait + self._timeout,
        ))

    async def ack_events(self, upto: int, boot_id: str | None) -> dict[str, Any]:
        """The gateway stored every event up to ``upto``: the worker may forget them."""
        return _object(await self.request("POST", "/events/ack", json={"upto": upto, "boot_id": boot_id}))

    async def contact(self, phone_number: str, *, picture: bool = False) -> dict[str, Any]:
        """What WhatsApp says of ``phone_number`` now (issue 27): ``{phone_number, on_whatsapp, lid, picture_url}``;
        the picture is asked only with ``picture``. The number is E.164 (checked: '+' and digits, nothing to escape)."""
        return _object(await self.request("GET", f"/contacts/{phone_number}", params={"picture": "1"} if picture
                                          else None))

    # --- groups (issue 26): the account's groups, asked of WhatsApp by the worker; nothing is stored here ------

    async def group(self, method: str, group_id: str | None = None, sub: str = "", body: Any = None) -> dict[str, Any]:
        """``method /groups/<group_id><sub>`` with ``body``: a group id is a jid (``...@g.us``), sent as it is (the
        gateway checked it: digits, '-', '@' and '.' only, nothing to escape)."""
        path = "/groups" + (f"/{group_id}" if group_id is not None else "") + sub
        return _object(await self.request(method, path, json=body))


# What sends a run of outbox rows through a worker (``send_run``, or one that readies their media first).
SendRun = Callable[["WorkerApi", list[dict[str, Any]]], Awaitable[list[ApiError | None]]]


def worker_message(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row as the worker's ``/send`` takes it: ``text``, or ``media`` named by its sha256 in the media
    store (with the caption, a document's file name, a voice note's flag), or what else the row is (a location,
    contacts, a poll, an action: its stored worker fields), a reply's ``quoted`` beside any of them."""
    recipient = row["phone_number"]  # a phone number, or a group's jid (issue 26)
    message: dict[str, Any] = {"group_id" if is_group(recipient) else "phone_number": recipient,
                               "id": row["wa_id"]}
    if row.get("content"):
        message.update(json.loads(row["content"])["worker"])
    kind = row.get("media_kind")
    if not kind:
        if not row.get("action"):
            message["text"] = row["body"]
        return message
    media: dict[str, Any] = {"kind": kind, "sha256": row["media_sha256"], "mimetype": row["media_mimetype"]}
    if kind == "document" and row.get("media_filename"):
        media["filename"] = row["media_filename"]
    if kind in CAPTIONED and row["body"]:
        media["caption"] = row["body"]
    if kind == "audio" and row.get("media_ptt"):
        media["ptt"] = True
    message["media"] = media
    return message


async def send_run(worker: WorkerApi, rows: list[dict[str, Any]], *,
                   media_timeout: float | None = None) -> list[ApiError | None]:
    """An outbox run (``phone_number``, ``body``, ``wa_id`` per row) to one recipient, in order: per row None
    (sent) or the error that kept it. One row is a plain send; a request that failed as a whole (the worker
    is down) attempted nothing after its first row. ``media_timeout``: the request's bound when it carries
    media (the worker uploads it first), instead of WA_WORKER_TIMEOUT."""
    messages = [worker_message(row) for row in rows]
    timeout = media_timeout if any("media" in m for m in messages) else None
    if len(rows) == 1:
        try:
            if timeout is None and set(messages[0]) == {"phone_number", "id", "text"}:  # the plain 1:1 text
                await worker.send_text(rows[0]["phone_number"], rows[0]["body"], message_id=rows[0]["wa_id"])
            else:  # media, a reply, a location, an action...: the worker takes the message whole
                await worker.send_message(messages[0], timeout=timeout)
        except ApiError as exc:
            return [exc]
        return [None]
    try:
        results = await (worker.send_batch(messages) if timeout is None else
                         worker.send_batch(messages, timeout=timeout))
    except ApiError as exc:
        not_attempted: list[ApiError | None] = [ApiError("not attempted", code="not_attempted", status=409)]
        return [exc, *not_attempted * (len(rows) - 1)]
    errors: list[ApiError | None] = []
    for result in results:
        error = result.get("error")
        if error is None:
            errors.append(None)
            continue
        details = {k: v for k, v in error.items() if k not in ("status", "code", "message")}
        errors.append(ApiError(error.get("message", ""), code=error.get("code"), status=error.get("status", 500),
                               details=details))
    return errors


class WorkerClient(WorkerApi):
    """``start_wait`` bounds how long a request waits for a worker that is starting (``may_come_up``
    says so): in the first second after a (re)start its socket is not there yet, and a caller is better
    served by a short wait than by a 503. Only connection failures are retried: such a request never
    reached the worker, so retrying cannot send anything twice."""

    def __init__(self, socket_path: str, timeout: float, *, start_wait: float = 0.0,
                 may_come_up: Callable[[], Awaitable[bool]] | None = None):
        self._socket_path = socket_path
        self._timeout = timeout
        self._start_wait = start_wait
        self._may_come_up = may_come_up
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No keep-alive: a pooled connection to a worker that has just died would fail the next request
        # after it was (maybe) sent, which cannot be retried safely; a unix connect costs microseconds.
        # No cap (limit=0): aiohttp's default of 100 made the 101st request wait for a free slot, and requests that
        # wait long are normal here (an account's reader long-polls its events after a batch, a send waits for
        # WhatsApp); the worker's file descriptors (supervisord's minfds) are the bound.
        connector = aiohttp.UnixConnector(path=self._socket_path, force_close=True, limit=0)
        self._session = aiohttp.ClientSession(
            base_url="http://worker", connector=connector, raise_for_status=False
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        deadline = time.monotonic() + self._start_wait
        while True:
            try:
                return await self._request_once(method, path, json=json, params=params, timeout=timeout)
            except WorkerUnavailable as exc:
                starting = isinstance(exc.__cause__, aiohttp.ClientConnectorError | FileNotFoundError
                                      | ConnectionRefusedError)
                if not starting or time.monotonic() >= deadline or self._may_come_up is None:
                    raise
                if not await self._may_come_up():
                    raise
                await asyncio.sleep(0.1)

    async def _request_once(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        assert self._session is not None, "WorkerClient.start() was not awaited"
        total = self._timeout if timeout is None else timeout
        try:
            async with self._session.request(
                method, path, json=json, params=params,
                timeout=aiohttp.ClientTimeout(total=total),
            ) as resp:
                body = await resp.json(content_type=None)
                if resp.status >= 400:
                    err = (body or {}).get("error", {}) if isinstance(body, dict) else {}
                    code = err.get("code", "worker_error")
                    if resp.status >= 500:
                        # The worker's own words (a library's error, a path, a database's message) stay in
                        # the log; the client gets the code, and finds the line by its X-Request-ID.
                        log.warning("worker.failed", method=method, path=path, status=resp.status, code=code,
                                    detail=str(err.get("message", ""))[:300])
                        raise ApiError(_WORKER_5XX.get(code, "The WhatsApp worker failed; its log has the detail."),
                                       code=code, status=resp.status)
                    raise ApiError(
                        err.get("message", "The worker refused the request."),
                        code=code,
                        status=resp.status,
                        details={k: v for k, v in err.items() if k not in ("code", "message")},
                    )
                return body
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise WorkerUnavailable(
                "The WhatsApp worker is not reachable right now; it is restarted automatically."
            ) from exc
        except TimeoutError as exc:
            raise WorkerUnavailable(
                "The WhatsApp worker did not answer in time.", code="worker_timeout", status=504
            ) from exc
        except (aiohttp.ContentTypeError, ValueError) as exc:
            raise ApiError("The worker sent an unreadable answer.", code="worker_protocol") from exc

    async def changes(self, after: int, wait: float, boot_id: str | None) -> dict[str, Any]:
        """The shard's accounts whose state, registered flag or journal changed after ``after`` of boot ``boot_id``
        (all of them for 0 or another boot), waiting up to ``wait`` for one (service/runtime/shard_watch.py). One try:
        a worker that is starting or away fails at once, and the watcher asks again."""
        params = {"after": str(after), "wait_ms": str(int(wait * 1000))}
        if boot_id:
            params["boot_id"] = boot_id
        return _object(await self._request_once("GET", "/changes", params=params, timeout=wait + self._timeout))

    def account(self, name: str) -> AccountWorker:
        """The same connection, addressing one account (``/accounts/<name>/...`` at the worker)."""
        return AccountWorker(self, name)


class AccountWorker(WorkerApi):
    """One account's view of the worker: every path is prefixed with ``/accounts/<name>``."""

    def __init__(self, client: WorkerClient, name: str):
        self._client = client
        self._timeout = client._timeout
        self.name = name
        self._prefix = f"/accounts/{name}"

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self._client.request(method, self._prefix + path, **kwargs)

    async def _request_once(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self._client._request_once(method, self._prefix + path, **kwargs)

    async def attach(self, lease_generation: int | None = None) -> dict[str, Any]:
        """Open the account here; with sessions in PostgreSQL, fenced by the lease generation held for it."""
        body = {} if lease_generation is None else {"lease_generation": lease_generation}
        return _object(await self.request("POST", "/attach", json=body))

    async def release(self) -> dict[str, Any]:
        """Close the account's session here without logging out (its lease moves to another instance)."""
        return _object(await self.request("POST", "/release", json={}))

    async def detach(self) -> dict[str, Any]:
        return _object(await self.request("POST", "/detach", json={}))
