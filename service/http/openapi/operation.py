"""One operation of the document: its parameters, body, responses, who may call it and every error code
it can answer, from its route, its ``Op`` and the key rules of ``service/http/middlewares.py``."""

from __future__ import annotations

from typing import Any

from service.http import models
from service.http.drain import CODE as DRAIN_CODE
from service.http.middlewares import (
    ADMIN_ONLY_PREFIXES,
    ADMIN_ONLY_ROUTES,
    ANY_KEY_PATHS,
    DEFAULT_EXACT,
    DEFAULT_TREES,
    DRAIN_EXEMPT,
    OPEN_PATHS,
    PUBLIC_PAGES,
)
from service.http.openapi.schemas import Schemas
from service.http.openapi.spec import BODY_ERRORS, JSON, WORKER_ERRORS, Op
from service.http.validation import ACCOUNT_NAME_EXAMPLE, GROUP_ID_EXAMPLE, PHONE_EXAMPLE

GROUP_ID_PATTERN = "^[0-9]{5,40}(-[0-9]{5,20})?@g\\.us$"  # validation.group_id's rule

STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted: queued, not yet sent", 503: "Not ready"}


def access(method: str, path: str) -> str:
    """Who may call it, from the key rules of middlewares.py."""
    if path in OPEN_PATHS or path in PUBLIC_PAGES:
        return "open"
    if path in ANY_KEY_PATHS:
        return "any key"
    if (method, path) in ADMIN_ONLY_ROUTES or path.startswith(ADMIN_ONLY_PREFIXES):
        return "admin key"
    if "{account}" in path:
        return "admin key or a key scoped to this account"
    if path in DEFAULT_EXACT or any(path == t or path.startswith(t + "/") for t in DEFAULT_TREES):
        return "admin key or a key scoped to default"
    return "admin key"


def error_codes(method: str, path: str, op: Op) -> dict[int, list[str]]:
    """Every error code the route can answer, by status."""
    codes: dict[int, list[str]] = {}

    def add(more: dict[int, tuple[str, ...]]) -> None:
        for status, names in more.items():
            bucket = codes.setdefault(status, [])
            bucket.extend(n for n in names if n not in bucket)

    who = access(method, path)
    if path not in PUBLIC_PAGES:
        add({401: ("unauthorized",)})  # no key, or a wrong one (refused on the probes too)
    if who not in ("open", "any key"):
        add({403: ("forbidden",)})  # a scoped key outside its scope
    if "{account}" in path:
        add({404: ("account_not_found",)})
    add({400: ("unknown_field",)})  # a query parameter the operation does not take (strict_input.py)
    if op.body is not None:
        add(BODY_ERRORS)
    if op.worker:
        add(WORKER_ERRORS)
    add(op.errors)
    add({500: ("internal_error",)})
    if op.writes:
        add({507: ("insufficient_storage",)})  # the disk is full: nothing stored (middlewares.py)
    if path not in DRAIN_EXEMPT:
        add({503: (DRAIN_CODE,)})  # from SIGTERM on, until the process exits (service/http/drain.py)
    return {s: codes[s] for s in sorted(codes)}


def _content(schemas: Schemas, ok: Any) -> dict[str, Any]:
    if isinstance(ok, dict):
        return ok
    if isinstance(ok, list):
        return {JSON: {"schema": {"anyOf": [schemas.ref(m) for m in ok]}}}
    return {JSON: {"schema": schemas.ref(ok)}}


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {n: {"$ref": f"#/components/headers/{n}"} for n in ("X-Request-ID", *names)}


def _parameters(path: str, op: Op) -> list[dict[str, Any]]:
    """The path's own parameters, then the Op's query parameters and headers, then X-Request-ID."""
    params: list[dict[str, Any]] = []
    for name in ("account", "id", "phone", "chat"):
        if "{" + name + "}" in path:
            schema: dict[str, Any] = {"type": "string"}
            if name == "account":
                schema |= {"pattern": "^[a-z][a-z0-9-]{0,30}[a-z0-9]$", "examples": ["default", ACCOUNT_NAME_EXAMPLE]}
            if name == "phone":
                schema |= {"examples": [PHONE_EXAMPLE]}
            if name == "chat":  # views/chats.py chat_id: a phone number, a group's jid or a LID
                schema |= {"examples": [PHONE_EXAMPLE, GROUP_ID_EXAMPLE, "123456789012345@lid"], "maxLength": 64}
            if name == "id" and path.startswith(("/groups/", "/accounts/{account}/groups/")):  # a jid, '@' and all
                schema |= {"pattern": GROUP_ID_PATTERN, "maxLength": 64, "examples": [GROUP_ID_EXAMPLE]}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    for p in op.params:
        params.append({"name": p.name, "in": p.where, "required": p.required, "schema": p.schema,
                       **({"description": p.description} if p.description else {})})
    params.append({"$ref": "#/components/parameters/X-Request-ID"})
    return params


def _responses(schemas: Schemas, method: str, path: str, op: Op) -> dict[str, Any]:
    """The Op's successful answers, then one response per error status listing its codes."""
    responses: dict[str, Any] = {}
    for status, ok in op.ok.items():
        text = STATUS_TEXT.get(status, "OK" if status < 400 else "Refused: see the operation's description.")
        responses[str(status)] = {"description": text, "content": _content(schemas, ok),
                                  "headers": _headers(op.headers.get(status, ()))}
    for status, names in error_codes(method, path, op).items():
        if str(status) in responses:  # the Op answers this status its own way too (/mcp: the transport's errors)
            responses[str(status)]["description"] += " Error codes: " + ", ".join(f"`{n}`" for n in names) + "."
            responses[str(status)]["x-error-codes"] = names
            continue
        headers = op.headers.get(status, ())
        if status in (503, 507) and "Retry-After" not in headers:
            headers = (*headers, "Retry-After")  # shutting_down sends it, outbox_full and insufficient_storage too
        responses[str(status)] = {
            "description": "Error codes: " + ", ".join(f"`{n}`" for n in names) + ".",
            "headers": _headers(headers),
            "content": {JSON: {"schema": {"allOf": [schemas.ref(models.ErrorResponse), {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"code": {"enum": names}}}},
            }]}}},
            "x-error-codes": names,
        }
    return responses


def operation(schemas: Schemas, method: str, path: str, op: Op, op_id: str) -> dict[str, Any]:
    """The document's object for ``method path``, documented by ``op``, named ``op_id``."""
    who = access(method, path)
    out: dict[str, Any] = {
        "operationId": op_id, "summary": op.summary, "tags": [op.tag],
        "description": (op.description + " " if op.description else "") + f"Access: {who}.",
        "x-access": who,
    }
    if who == "open":
        out["security"] = [] if path in PUBLIC_PAGES else [{}, {"ApiKey": []}, {"Bearer": []}]
    out["parameters"] = _parameters(path, op)
    if op.body is not None:
        out["requestBody"] = {"required": not op.body_optional,
                              "description": "Optional: no body at all is {}." if op.body_optional else "",
                              "content": {JSON: {"schema": schemas.ref(op.body)}}}
        if op.form is not None:
            out["requestBody"]["content"]["multipart/form-data"] = {
                "schema": op.form, "encoding": {"file": {"contentType": "application/octet-stream"}}}
    out["responses"] = _responses(schemas, method, path, op)
    return out
