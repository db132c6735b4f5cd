"""What every request model shares: strict parsing into the API's one error shape, and the time format.

A model only describes; the rules themselves live in ``service/http/validation.py`` so that they can be
shared with tests and the worker's vectors. ``parse`` turns the first problem into the API's one error
shape, with a code per field (``invalid_phone_number``, ``invalid_message``, ...) and a message that
never echoes the input back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, get_args, overload

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from service.errors import BadRequest
from service.http import validation
from service.http.strict_input import unknown_field

M = TypeVar("M", bound="RequestModel")
T = TypeVar("T")


class RequestModel(BaseModel):
    # Unknown fields are refused (400 unknown_field: a field silently dropped is a request not done, e.g. a
    # group id beside a phone number); known ones are strict. The schema says so (additionalProperties: false).
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    # The error code for a problem with each field, and how to describe the expected type.
    field_codes: ClassVar[dict[str, str]] = {}
    field_hints: ClassVar[dict[str, str]] = {}


_OURS = "wa:"  # prefix of the error types our rules raise, followed by an optional code


def checked(rule: Callable[..., T], value: Any, *args: Any) -> T:
    """``rule(value, *args)`` inside a field validator: its ``InvalidInput`` becomes a pydantic error that
    carries our code, so that ``parse`` answers with it."""
    try:
        return rule(value, *args)
    except validation.InvalidInput as exc:
        # The error type carries our code; the message is ours, never pydantic's or the input.
        raise PydanticCustomError(_OURS + (exc.code or ""), exc.message) from None


def parse(model: type[M], body: dict[str, Any], **context: Any) -> M:
    """Validate ``body`` against ``model`` or raise a 400 for its first problem (a nested object's field is
    named by its path: ``image.url``)."""
    try:
        return model.model_validate(body, strict=True, context=context)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        extra = [p for p in problems if p["type"] == "extra_forbidden"]
        if extra:  # named first: a misspelt field also shows as a missing one
            owner, _ = _owner(model, extra[0]["loc"])
            raise unknown_field(_path(extra[0]["loc"]), owner.model_fields, "field") from None
        first = problems[0]
        owner, field = _owner(model, first["loc"])
        code = owner.field_codes.get(field, model.field_codes.get(str(first["loc"][0]) if first["loc"] else "",
                                                                  "invalid_request"))
        kind = first["type"]
        if kind.startswith(_OURS):  # one of ours, raised by a rule in validation.py
            message = first["msg"]
            code = kind.removeprefix(_OURS) or code
        elif kind == "missing":
            message = f"{_path(first['loc'])} is required."
        else:  # a wrong type (strict: no coercion), or a string pydantic cannot take
            message = f"{_path(first['loc'])} must be {owner.field_hints.get(field, 'valid')}."
        raise BadRequest(message, code=code) from None


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if not isinstance(part, int))


def _owner(model: type[RequestModel], loc: tuple[int | str, ...]) -> tuple[type[RequestModel], str]:
    """The (nested) request model that holds the field at ``loc``, and the field's name in it."""
    names = [str(part) for part in loc if not isinstance(part, int)]
    owner = model
    for name in names[:-1]:
        info = owner.model_fields.get(name)
        nested = [a for a in (get_args(info.annotation) or (info.annotation,)) if isinstance(a, type)
                  and issubclass(a, RequestModel)] if info is not None else []
        if not nested:
            return owner, name
        owner = nested[0]
    return owner, names[-1] if names else ""


@overload
def iso(ts: float) -> str: ...
@overload
def iso(ts: None) -> None: ...
@overload
def iso(ts: float | None) -> str | None: ...
def iso(ts: float | None) -> str | None:
    """A stored timestamp (seconds since the epoch) as the API shows it: ISO-8601 UTC, milliseconds, ``Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
