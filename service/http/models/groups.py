"""Groups (issue 26, item 3): the bodies of ``/groups`` and its answers, which are the worker's (contract-26).

Everything a request can get wrong is refused here, before the worker is asked: a participant list of 0 or more
than WhatsApp's 1,024 numbers or with a number that is no E.164 phone number (400 ``invalid_participants``, naming
the position), a subject of 0 or more than 100 characters, a description over 2,048, an invite code that is none.
A group id in a path is checked by ``views/groups.py`` with ``validation.group_id``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, StrictStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.http import validation
from service.http.models.base import RequestModel

MAX_PARTICIPANTS = 1024  # WhatsApp's limit on a group's members
MAX_SUBJECT_CHARS = 100  # WhatsApp's limit on a group's name
MAX_DESCRIPTION_CHARS = 2048
ACTIONS = ("add", "remove", "promote", "demote")
INVITE_LINK = "https://chat.whatsapp.com/"
_INVITE_CODE = re.compile(r"[A-Za-z0-9_-]{6,64}")




def _phones(schema: dict[str, Any]) -> None:
    """The documented shape of a participant list (``participants`` below checks it, naming a bad item's position)."""
    title = schema.get("title")
    schema.clear()
    schema.update({"type": "array", "items": {"type": "string", "examples": [validation.PHONE_EXAMPLE]},
                   "minItems": 1, "maxItems": MAX_PARTICIPANTS, **({"title": title} if title else {})})


def participants(value: list[Any]) -> list[str]:
    """1 to 1,024 E.164 numbers, each normalised once (a number given twice is one participant)."""
    if not value or len(value) > MAX_PARTICIPANTS:
        raise PydanticCustomError("wa:invalid_participants",
                                  f"participants must list 1 to {MAX_PARTICIPANTS} phone numbers.")
    numbers: list[str] = []
    for index, item in enumerate(value):
        try:
            if not isinstance(item, str):
                raise validation.InvalidInput("not a string")
            number = validation.phone_number(item)
        except validation.InvalidInput:
            raise PydanticCustomError(
                "wa:invalid_participants",
                f"participants[{index}] must be a phone number in E.164 form, like {validation.PHONE_EXAMPLE}.",
            ) from None
        if number not in numbers:
            numbers.append(number)
    return numbers


def subject(value: str) -> str:
    if not value.strip() or "\x00" in value or len(value) > MAX_SUBJECT_CHARS:
        raise PydanticCustomError("wa:invalid_subject",
                                  f"subject must be 1 to {MAX_SUBJECT_CHARS} characters (not blank).")
    return value


class GroupCreateRequest(RequestModel):
    """``POST /groups``: a new group named ``subject`` with these members (the account is its owner)."""

    subject: StrictStr = Field(json_schema_extra={"minLength": 1, "maxLength": MAX_SUBJECT_CHARS})
    participants: list[Any] = Field(json_schema_extra=_phones)

    field_codes: ClassVar[dict[str, str]] = {"subject": "invalid_subject", "participants": "invalid_participants"}
    field_hints: ClassVar[dict[str, str]] = {"subject": "a string", "participants": "a list of phone numbers"}

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return subject(value)

    @field_validator("participants")
    @classmethod
    def _participants(cls, value: list[Any]) -> list[str]:
        return participants(value)


class GroupUpdateRequest(RequestModel):
    """``PATCH /groups/{id}``: a new subject, a new description ("" removes it), or both."""

    subject: StrictStr | None = None
    description: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {"subject": "invalid_subject", "description": "invalid_description"}
    field_hints: ClassVar[dict[str, str]] = {"subject": "a string", "description": "a string"}

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        return None if value is None else subject(value)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        if value is not None and ("\x00" in value or len(value) > MAX_DESCRIPTION_CHARS):
            raise PydanticCustomError("wa:invalid_description",
                                      f"description must be at most {MAX_DESCRIPTION_CHARS} characters.")
        return value

    @model_validator(mode="after")
    def _something(self) -> GroupUpdateRequest:
        if self.subject is None and self.description is None:
            raise PydanticCustomError("wa:invalid_request", "Give subject, description or both.")
        return self


class ParticipantsRequest(RequestModel):
    """``POST /groups/{id}/participants``: exactly one of ``add``, ``remove``, ``promote``, ``demote``."""

    add: list[Any] | None = Field(None, json_schema_extra=_phones)
    remove: list[Any] | None = Field(None, json_schema_extra=_phones)
    promote: list[Any] | None = Field(None, json_schema_extra=_phones)
    demote: list[Any] | None = Field(None, json_schema_extra=_phones)

    field_codes: ClassVar[dict[str, str]] = {a: "invalid_participants" for a in ACTIONS}
    field_hints: ClassVar[dict[str, str]] = {a: "a list of phone numbers" for a in ACTIONS}

    @field_validator(*ACTIONS)
    @classmethod
    def _numbers(cls, value: list[Any] | None) -> list[str] | None:
        return None if value is None else participants(value)

    @model_validator(mode="after")
    def _one(self) -> ParticipantsRequest:
        if sum(getattr(self, a) is not None for a in ACTIONS) != 1:
            raise PydanticCustomError("wa:invalid_participants", "Give exactly one of add, remove, promote, demote.")
        return self

    def action(self) -> tuple[str, list[str]]:
        return next((a, getattr(self, a)) for a in ACTIONS if getattr(self, a) is not None)


class JoinRequest(RequestModel):
    """``POST /groups/join``: an invite code, or the whole ``https://chat.whatsapp.com/<code>`` link."""

    code: StrictStr

    field_codes: ClassVar[dict[str, str]] = {"code": "invalid_invite_code"}
    field_hints: ClassVar[dict[str, str]] = {"code": "a string"}

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        code = value.strip().removeprefix(INVITE_LINK)
        if not _INVITE_CODE.fullmatch(code):
            raise PydanticCustomError("wa:invalid_invite_code",
                                      f"code must be an invite code, or a link {INVITE_LINK}<code>.")
        return code


# --- answers (the worker's, passed on) --------------------------------------------------------------

class GroupSummary(BaseModel):
    id: str
    subject: str | None
    participants_count: int
    role: Literal["superadmin", "admin", "member"]


class GroupList(BaseModel):
    groups: list[GroupSummary]


class GroupParticipant(BaseModel):
    phone_number: str | None  # null while WhatsApp names the member only by its LID
    lid: str | None
    admin: Literal["admin", "superadmin"] | None


class ParticipantResult(BaseModel):
    """WhatsApp's answer for one number: 200 done; 403 refused (``privacy``: the contact does not allow being
    added; an invite may be sent instead), 404 ``not_on_whatsapp``, 409 already in / not in the group."""

    phone_number: str
    status: int
    code: str | None = None


class GroupOut(BaseModel):
    id: str
    subject: str | None
    description: str | None
    owner: str | None
    created_at: str | None  # ISO-8601 UTC (WhatsApp gives seconds: views/groups.py converts them)
    announce: bool | None
    restrict: bool | None
    participants: list[GroupParticipant]


class GroupCreated(GroupOut):
    results: list[ParticipantResult]


class ParticipantResults(BaseModel):
    results: list[ParticipantResult]


class GroupInvite(BaseModel):
    code: str
    link: str


class GroupRef(BaseModel):
    id: str
