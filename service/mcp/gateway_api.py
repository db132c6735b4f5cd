"""The gateway's public HTTP API as the MCP tools call it: with the caller's own key, over HTTP.

Every tool goes through here and nowhere else, so what an agent may do is exactly what its key may do by
HTTP: the gateway's validation, scoping (a key of one account gets 403 for another), idempotency and error
codes apply unchanged. Inside the gateway the base URL is the listening socket the MCP request came in on
(loopback to ourselves; behind a proxy or in a container that address still reaches this process).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=90)  # above the largest ?wait= a send may ask for (WA_SEND_WAIT_MAX 60)


class ToolError(Exception):
    """The gateway refused or failed a call: its status and its ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


def segment(value: str) -> str:
    """One path segment, every reserved character escaped (a chat id holds '+' and '@')."""
    return quote(value, safe="")


class GatewayApi:
    """One caller's view of the API: ``base`` (http://host:port) and the key it authenticates with."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str):
        self._http = http
        self._base = base.rstrip("/")
        self._key = key

    async def call(self, method: str, path: str, *, account: str | None = None, params: dict[str, Any] | None = None,
                   body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The JSON answer of ``method path`` (under ``/accounts/{account}`` when one is given); ToolError
        for any 4xx/5xx. Query values that are None are left out."""
        url = self._base + (f"/accounts/{segment(account)}" if account is not None else "") + path
        query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (params or {}).items()
                 if v is not None}
        sent = {"Authorization": f"Bearer {self._key}", **(headers or {})}
        try:
            async with self._http.request(method, url, params=query, json=body, headers=sent,
                                          timeout=TIMEOUT) as response:
                answer = await _json(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ToolError(503, "gateway_unreachable", f"The gateway did not answer: {type(exc).__name__}.") from None
        if response.status >= 400:
            found = answer.get("error")
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            raise ToolError(response.status, str(error.get("code", "http_error")),
                            str(error.get("message", f"HTTP {response.status}")))
        return answer


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        answer = await response.json(content_type=None)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {"items": answer}
