"""A real conversation, our side (issue 25): the contents ``POST /send`` takes besides text and media (a location,
contact cards, a poll) and the bodies of the actions on a message (a reaction, an edit) and on a chat (presence).

Only shapes and WhatsApp's limits here; what each becomes for the worker is ``views/send_content.py``'s job.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import emoji
import vobject
from pydantic import StrictBool, StrictFloat, StrictStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.http import validation
from service.http.models.base import RequestModel, checked

POLL_OPTIONS = (2, 12)  # WhatsApp's bounds on a poll's options
POLL_QUESTION_CHARS = 255
POLL_OPTION_CHARS = 100
MAX_CARDS = 50  # contact cards in one message
MAX_VCARD_CHARS = 16384
MAX_PLACE_CHARS = 1024  # a location's name or address
CHAT_STATES = ("composing", "recording", "paused", "available", "unavailable")


def _plain(value: str, what: str, max_chars: int, code: str) -> str:
    """A short text WhatsApp shows as is: not blank, no NUL, within its bound."""
    if not value.strip() or "\x00" in value or len(value) > max_chars:
        raise PydanticCustomError(f"wa:{code}", f"{what} must be 1 to {max_chars} characters (not blank).")
    return value


class LocationIn(RequestModel):
    """A place: WhatsApp shows a map at ``latitude``/``longitude`` with the optional ``name`` and ``address``."""

    latitude: StrictFloat
    longitude: StrictFloat
    name: StrictStr | None = None
    address: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {
        f: "invalid_location" for f in ("latitude", "longitude", "name", "address")}
    field_hints: ClassVar[dict[str, str]] = {
        "latitude": "a number from -90 to 90", "longitude": "a number from -180 to 180",
        "name": "a string", "address": "a string"}

    @model_validator(mode="after")
    def _on_earth(self) -> LocationIn:
        if not (math.isfinite(self.latitude) and -90 <= self.latitude <= 90):
            raise PydanticCustomError("wa:invalid_location", "location.latitude must be a number from -90 to 90.")
        if not (math.isfinite(self.longitude) and -180 <= self.longitude <= 180):
            raise PydanticCustomError("wa:invalid_location", "location.longitude must be a number from -180 to 180.")
        for what, value in (("name", self.name), ("address", self.address)):
            if value is not None:
                _plain(value, f"location.{what}", MAX_PLACE_CHARS, "invalid_location")
        return self


class ContactIn(RequestModel):
    """One contact card made by the gateway (a vCard 3.0 as WhatsApp's apps write it)."""

    name: StrictStr
    phone_number: StrictStr

    field_codes: ClassVar[dict[str, str]] = {"name": "invalid_contacts", "phone_number": "invalid_contacts"}
    field_hints: ClassVar[dict[str, str]] = {
        "name": "a string", "phone_number": f"a string like {validation.PHONE_EXAMPLE}"}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _plain(value, "A contact's name", 256, "invalid_contacts")

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, value: str) -> str:
        try:
            return validation.phone_number(value)
        except validation.InvalidInput as exc:
            raise PydanticCustomError("wa:invalid_contacts", f"A contact's phone_number: {exc.message}") from None


class PollIn(RequestModel):
    """A poll: a question and 2 to 12 distinct options; ``multiple``: several may be chosen."""

    question: StrictStr
    options: list[StrictStr]
    multiple: StrictBool = False

    field_codes: ClassVar[dict[str, str]] = {f: "invalid_poll" for f in ("question", "options", "multiple")}
    field_hints: ClassVar[dict[str, str]] = {"question": "a string", "options": "a list of strings",
                                             "multiple": "true or false"}

    @model_validator(mode="after")
    def _whatsapp_bounds(self) -> PollIn:
        _plain(self.question, "poll.question", POLL_QUESTION_CHARS, "invalid_poll")
        low, high = POLL_OPTIONS
        if not low <= len(self.options) <= high:
            raise PydanticCustomError("wa:invalid_poll", f"A poll has {low} to {high} options.")
        for option in self.options:
            _plain(option, "Each poll option", POLL_OPTION_CHARS, "invalid_poll")
        if len(set(self.options)) != len(self.options):
            raise PydanticCustomError("wa:invalid_poll", "A poll's options must be distinct.")
        return self


def checked_vcard(value: str) -> str:
    """A caller's vCard, as WhatsApp's apps would read it: one VCARD with a name (FN), parsed by vobject."""
    if len(value) > MAX_VCARD_CHARS or "\x00" in value:
        raise PydanticCustomError("wa:invalid_contacts", f"Each vCard must be at most {MAX_VCARD_CHARS} characters.")
    try:
        card = vobject.readOne(value)
    except Exception:  # noqa: BLE001 - vobject raises several parse errors, all of them mean "not a vCard"
        raise PydanticCustomError("wa:invalid_contacts",
                                  "Each vcards item must be one vCard (BEGIN:VCARD ... END:VCARD).") from None
    if getattr(card, "name", "").upper() != "VCARD" or not str(getattr(getattr(card, "fn", None), "value", "")).strip():
        raise PydanticCustomError("wa:invalid_contacts", "Each vCard needs a name (an FN line).")
    return value


def one_emoji(value: str) -> str:
    """A reaction: one emoji (a sequence such as a skin tone or a family counts as one), or '' to remove it."""
    if value != "" and not emoji.is_emoji(value):
        raise PydanticCustomError("wa:invalid_emoji", "emoji must be one emoji, or \"\" to remove the reaction.")
    return value


class ReactionRequest(RequestModel):
    """``POST /messages/{id}/reaction``."""

    emoji: StrictStr

    field_codes: ClassVar[dict[str, str]] = {"emoji": "invalid_emoji"}
    field_hints: ClassVar[dict[str, str]] = {"emoji": 'one emoji such as "👍", or ""'}

    @field_validator("emoji")
    @classmethod
    def _emoji(cls, value: str) -> str:
        return one_emoji(value)


class EditRequest(RequestModel):
    """``POST /messages/{id}/edit``: the new text of our own text message."""

    message: StrictStr

    field_codes: ClassVar[dict[str, str]] = {"message": "invalid_message"}
    field_hints: ClassVar[dict[str, str]] = {"message": "a string"}

    @field_validator("message")
    @classmethod
    def _text(cls, value: str, info: object) -> str:
        context = getattr(info, "context", None) or {}
        return checked(validation.message_text, value, context.get("max_message_chars", 65536))


class PresenceRequest(RequestModel):
    """``POST /chats/{phone}/presence``: what the contact sees of us in that chat."""

    state: Literal["composing", "recording", "paused", "available", "unavailable"]

    field_codes: ClassVar[dict[str, str]] = {"state": "invalid_state"}
    field_hints: ClassVar[dict[str, str]] = {"state": " | ".join(CHAT_STATES)}


class NoFieldsRequest(RequestModel):
    """``POST /messages/{id}/revoke`` and ``/read``: no body, or ``{}`` (any field is 400 unknown_field)."""
