"""Groups (issue 26): the groups an account is in, and managing them. Mixed into :class:`AsyncAccount` (and so into
the blocking ``Account``).

    team = await wa.create_group("Support", ["+14155550123", "+14155550124"])
    refused = [r for r in team.results if r.status != 200]   # e.g. 403 "privacy": send them the invite link
    await wa.update_group(team.id, description="Tickets and on-call")
    await wa.group_participants(team.id, "promote", ["+14155550123"])
    link = (await wa.group_invite(team.id)).link
    await wa.send_to_group(team.id, "Hello team")               # see :meth:`send_to_group`
    for group in await wa.groups(): print(group.id, group.subject, group.role)

Why it is shaped like this:
- WhatsApp answers each participant of an add/remove/promote/demote on its own; one refused number (privacy, not on
  WhatsApp, already in) is a :class:`ParticipantResult` with its ``status``, never an exception for the whole call.
- Creating a group, changing participants or joining are not retried after a lost answer (the gateway may have done
  them): a :class:`errors.GatewayUnreachable` then means "look with :meth:`group` before repeating".
- A group's own changes (who joined, a new subject) come as ``group.participants`` and ``group.updated`` events,
  their ``event.data`` as docs/webhooks.md documents it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import Field

from .conversation import post_message
from .models import Message, _Model

if TYPE_CHECKING:
    from .client import AsyncClient

ParticipantAction = Literal["add", "remove", "promote", "demote"]


class GroupSummary(_Model):
    """One group of :meth:`GroupMethods.groups`: ``role`` is the account's own (superadmin, admin or member)."""

    id: str
    subject: str | None = None
    participants_count: int = 0
    role: str = "member"


class GroupParticipant(_Model):
    phone_number: str | None = None  # None while WhatsApp names the member only by its LID
    lid: str | None = None
    admin: str | None = None  # None, "admin" or "superadmin"


class ParticipantResult(_Model):
    """WhatsApp's answer for one number: ``status`` 200 done, 403 refused (``code`` "privacy"), 404
    "not_on_whatsapp", 409 already in (or not in) the group."""

    phone_number: str
    status: int
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class Group(_Model):
    id: str
    subject: str | None = None
    description: str | None = None
    owner: str | None = None
    created_at: str | None = None
    announce: bool | None = None
    restrict: bool | None = None
    participants: list[GroupParticipant] = Field(default_factory=list)
    results: list[ParticipantResult] = Field(default_factory=list)  # create_group only: per participant asked


class GroupInvite(_Model):
    code: str
    link: str


class GroupMethods:
    """The group endpoints of one account; needs its ``_client`` and ``_p`` (the prefix)."""

    _client: AsyncClient

    def _p(self, path: str) -> str:
        raise NotImplementedError

    def _g(self, group_id: str, tail: str = "") -> str:
        return self._p(f"/groups/{quote(group_id, safe='')}{tail}")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        return await self._client.request(method, path, json=body)

    async def groups(self) -> list[GroupSummary]:
        """The groups the account is in, as WhatsApp lists them now."""
        data = await self._call("GET", self._p("/groups"))
        return [GroupSummary.model_validate(g) for g in data["groups"]]

    async def group(self, group_id: str) -> Group:
        """One group with its participants (phone number, LID, admin flag); :class:`errors.GroupNotFound` when the
        account is not in it."""
        return Group.model_validate(await self._call("GET", self._g(group_id)))

    async def create_group(self, subject: str, participants: Sequence[str]) -> Group:
        """A new group (the account its superadmin) with these numbers; ``results`` says how each add went."""
        body = {"subject": subject, "participants": list(participants)}
        return Group.model_validate(await self._call("POST", self._p("/groups"), body))

    async def update_group(self, group_id: str, *, subject: str | None = None,
                           description: str | None = None) -> Group:
        """A new subject and/or description (``""`` removes it); admins only (:class:`errors.NotAdmin`)."""
        body = {k: v for k, v in (("subject", subject), ("description", description)) if v is not None}
        return Group.model_validate(await self._call("PATCH", self._g(group_id), body))

    async def group_participants(self, group_id: str, action: ParticipantAction,
                                 phone_numbers: Sequence[str]) -> list[ParticipantResult]:
        """``add``, ``remove``, ``promote`` (to admin) or ``demote`` these numbers: one result per number."""
        data = await self._call("POST", self._g(group_id, "/participants"), {action: list(phone_numbers)})
        return [ParticipantResult.model_validate(r) for r in data["results"]]

    async def group_invite(self, group_id: str, *, revoke: bool = False) -> GroupInvite:
        """The invite link; ``revoke=True`` ends the current one and answers its replacement."""
        method = "DELETE" if revoke else "GET"
        return GroupInvite.model_validate(await self._call(method, self._g(group_id, "/invite")))

    async def join_group(self, code: str) -> str:
        """Join by an invite code (or the whole https://chat.whatsapp.com/ link); the group's id."""
        data = await self._call("POST", self._p("/groups/join"), {"code": code})
        return str(data["id"])

    async def leave_group(self, group_id: str) -> str:
        data = await self._call("POST", self._g(group_id, "/leave"), {})
        return str(data["id"])

    async def send_to_group(self, group_id: str, message: str, *, mentions: Sequence[str] | None = None,
                            idempotency_key: str | None = None, wait: float | None = None) -> Message:
        """A text to the group through the durable outbox, like :meth:`send` (``mentions``: numbers to @-mention,
        written ``@<digits>`` in the text as WhatsApp shows them)."""
        body: dict[str, Any] = {"group_id": group_id, "message": message}
        if mentions:
            body["mentions"] = list(mentions)
        return await post_message(self._client, self._p("/send"), json=body, idempotency_key=idempotency_key,
                                  wait=wait)
