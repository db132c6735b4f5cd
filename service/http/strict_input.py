"""Unknown input is refused, never ignored: a query parameter an operation does not document is 400
``unknown_field`` naming it (the body's fields are held to their model the same way: models/base.py).

A field the gateway silently dropped answered 200 for a request it did not do (a ``group`` beside a phone
number sent a private message; a ``media_url`` sent text alone). The operations' documented parameters
(service/http/openapi/) are the list: what the document says is exactly what is taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from service.errors import BadRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# handler -> the query parameters its operation documents (set by routes.setup_routes)
QUERY_PARAMS = web.AppKey("query_params", dict)
SHOWN_NAME_MAX = 64


def shown(name: str) -> str:
    """A client's field name as an error message may show it: printable, at most 64 characters."""
    text = name if name.isprintable() else name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= SHOWN_NAME_MAX else text[:SHOWN_NAME_MAX] + "..."


def unknown_field(name: str, known: Iterable[str], where: str) -> BadRequest:
    accepted = sorted(known)
    takes = f"it takes: {', '.join(accepted)}." if accepted else "it takes none."
    return BadRequest(f"Unknown {where} '{shown(name)}'; {takes}", code="unknown_field")


def allowed_query(operations: Mapping[Handler, Iterable[str]]) -> dict[Handler, frozenset[str]]:
    return {handler: frozenset(names) for handler, names in operations.items()}


@web.middleware
async def strict_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs after the key check: a caller without a key learns nothing about an operation's parameters."""
    known: frozenset[str] | None = request.app.get(QUERY_PARAMS, {}).get(request.match_info.handler)
    if known is not None:
        for name in request.query:
            if name not in known:
                raise unknown_field(name, known, "query parameter")
    return await handler(request)
