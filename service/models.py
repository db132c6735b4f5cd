"""The request bodies of the public API as pydantic v2 models (strict: a number is no string).

A model only describes; the rules themselves live in ``validation.py`` so that they can be shared
with tests and the worker's vectors. ``parse`` turns the first problem into the API's one error
shape, with a code per field (``invalid_phone_number``, ``invalid_message``, ...) and a message that
never echoes the input back.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from . import validation
from .errors import BadRequest

M = TypeVar("M", bound="RequestModel")


class RequestModel(BaseModel):
    # Unknown fields are ignored (clients may send more than we read); known ones are strict.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    # The error code for a problem with each field, and how to describe the expected type.
    field_codes: ClassVar[dict[str, str]] = {}
    field_hints: ClassVar[dict[str, str]] = {}


_OURS = "wa:"  # prefix of the error types our rules raise, followed by an optional code


def _custom(rule, value, *args):
    try:
        return rule(value, *args)
    except validation.InvalidInput as exc:
        # The error type carries our code; the message is ours, never pydantic's or the input.
        raise PydanticCustomError(_OURS + (exc.code or ""), exc.message) from None


class ConnectRequest(RequestModel):
    """``POST /connect``: no fields yet; the body, if any, must be a JSON object."""


class DisconnectRequest(RequestModel):
    """``POST /disconnect``: no fields yet; the body, if any, must be a JSON object."""


class SendRequest(RequestModel):
    """``POST /send``: one text message to one phone number."""

    phone_number: StrictStr
    message: StrictStr

    field_codes: ClassVar[dict[str, str]] = {
        "phone_number": "invalid_phone_number",
        "message": "invalid_message",
    }
    field_hints: ClassVar[dict[str, str]] = {
        "phone_number": f"a string like {validation.PHONE_EXAMPLE}",
        "message": "a string",
    }

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, value: str) -> str:
        return _custom(validation.phone_number, value)

    @field_validator("message")
    @classmethod
    def _message(cls, value: str, info: ValidationInfo) -> str:
        max_chars = (info.context or {}).get("max_message_chars", 65536)
        return _custom(validation.message_text, value, max_chars)


def parse(model: type[M], body: dict[str, Any], **context: Any) -> M:
    """Validate ``body`` against ``model`` or raise a 400 for its first problem."""
    try:
        return model.model_validate(body, strict=True, context=context)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        code = model.field_codes.get(field, "invalid_request")
        kind = first["type"]
        if kind.startswith(_OURS):  # one of ours, raised by a rule in validation.py
            message = first["msg"]
            code = kind.removeprefix(_OURS) or code
        elif kind == "missing":
            message = f"{field} is required."
        else:  # a wrong type (strict: no coercion), or a string pydantic cannot take
            message = f"{field} must be {model.field_hints.get(field, 'valid')}."
        raise BadRequest(message, code=code) from None
