"""The documentation of an account's groups (issue 26): list, create, read, update, participants, invite, join,
leave. Every one asks the account's worker, which asks WhatsApp: its outages and its refusals pass through."""

from __future__ import annotations

from service.http.models import groups as models
from service.http.models.conversation import NoFieldsRequest
from service.http.openapi.spec import DEFAULT_NOTE, Op
from service.http.route_table import Handler
from service.http.views import groups

# What any call on the account's WhatsApp session can answer (the worker's words, passed on).
_SESSION = {409: ("not_connected", "not_linked"), 502: ("whatsapp_error",), 504: ("whatsapp_timeout",)}
# ... and one on a group named in the path: not a group id, not one the account is in.
_ONE = {**_SESSION, 400: ("invalid_group_id",), 404: ("group_not_found",)}
_ADMIN = {**_ONE, 403: ("not_admin",)}
_ID_NOTE = ("`{id}` is the group's id as GET /groups lists it (`120363...@g.us`), plain or URL-encoded "
            "(`%40` for `@`). ")
_RESULTS = ("`results`: one per number, WhatsApp's own answer: `status` 200 done, 403 refused (`code` `privacy`: the "
            "contact does not allow being added), 404 `not_on_whatsapp`, 409 already in (or not in) the group; one "
            "refused number is no failure of the call. ")


def _errors(base: dict[int, tuple[str, ...]], **more: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    extra = {int(status[1:]): codes for status, codes in more.items()}
    return {s: (*base.get(s, ()), *extra.get(s, ())) for s in sorted({*base, *extra})}


OPERATIONS: dict[Handler, Op] = {
    groups.list_groups: Op(
        "The groups the account is in", "Groups", {200: models.GroupList}, worker=True, errors=_SESSION,
        description="Each group's id, subject, number of participants and the account's role in it (`superadmin`: "
                    "its creator, `admin`, `member`). " + DEFAULT_NOTE),
    groups.create: Op(
        "Create a group", "Groups", {201: models.GroupCreated}, body=models.GroupCreateRequest, worker=True,
        errors=_errors(_SESSION, s400=("invalid_subject", "invalid_participants")),
        description="The account creates the group and is its superadmin. `participants`: 1 to 1,024 phone numbers "
                    "(E.164; a number given twice counts once). The answer is the group (as GET /groups/{id}) "
                    "and " + _RESULTS + DEFAULT_NOTE),
    groups.get: Op(
        "One group: subject, description, participants", "Groups", {200: models.GroupOut}, worker=True,
        errors=_ONE,
        description="Participants with their phone number, LID and `admin` (null, `admin` or `superadmin`); "
                    "`announce`: only admins send, `restrict`: only admins change the group's settings. " + _ID_NOTE
                    + DEFAULT_NOTE),
    groups.update: Op(
        "Change a group's subject or description", "Groups", {200: models.GroupOut}, body=models.GroupUpdateRequest,
        worker=True, errors=_errors(_ADMIN, s400=("invalid_subject", "invalid_description", "invalid_request")),
        description="`subject`: 1 to 100 characters; `description`: at most 2,048 (`\"\"` removes it); one or both. "
                    "Any participant may, unless the group is `restrict`ed to admins (then 403 `not_admin`). "
                    "Answers the group as it is now. " + _ID_NOTE + DEFAULT_NOTE),
    groups.participants: Op(
        "Add, remove, promote or demote participants", "Groups", {200: models.ParticipantResults},
        body=models.ParticipantsRequest, worker=True, errors=_errors(_ADMIN, s400=("invalid_participants",)),
        description="Exactly one of `add`, `remove`, `promote` (to admin), `demote` (to member), each 1 to 1,024 "
                    "phone numbers; only an admin may. " + _RESULTS + _ID_NOTE + DEFAULT_NOTE),
    groups.invite: Op(
        "The group's invite link", "Groups", {200: models.GroupInvite}, worker=True, errors=_ADMIN,
        description="`code` and `link` (https://chat.whatsapp.com/<code>); only an admin may see it. " + _ID_NOTE
                    + DEFAULT_NOTE),
    groups.revoke_invite: Op(
        "Revoke the invite link (and get a new one)", "Groups", {200: models.GroupInvite}, worker=True,
        errors=_ADMIN,
        description="The current link stops working at once; the answer is its replacement. " + _ID_NOTE
                    + DEFAULT_NOTE),
    groups.join: Op(
        "Join a group by its invite code", "Groups", {200: models.GroupRef}, body=models.JoinRequest, worker=True,
        errors=_errors(_SESSION, s400=("invalid_invite_code",), s404=("group_not_found",)),
        description="`code`: the invite code, or the whole link https://chat.whatsapp.com/<code>. Answers the "
                    "group's `id`. " + DEFAULT_NOTE),
    groups.leave: Op(
        "Leave a group", "Groups", {200: models.GroupRef}, body=NoFieldsRequest, body_optional=True, worker=True,
        errors=_ONE,
        description="The account is no longer a participant; the group and its messages stay. " + _ID_NOTE
                    + DEFAULT_NOTE),
}
