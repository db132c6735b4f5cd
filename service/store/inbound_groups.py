"""A group's changes as WhatsApp told the account's devices (issue 26): participants added, removed, promoted,
demoted, left, a group created with the account in it (``group.participants``); a new subject, description or
setting (``group.updated``). SQL only.

The worker journals each change before WhatsApp's notification is acknowledged (node_worker/src/session/
group-events.js), with an ``event_id`` that a redelivered notification repeats; each is stored once, as one event of
the log (its ``source_id``), webhooks and SSE following from there. Nothing else is stored: the group itself is
WhatsApp's (GET /groups/{id} asks it). People are shown as the API shows them everywhere: phone number and LID.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from service.store import event_log

TYPES = ("group.participants", "group.updated")
ACTIONS = ("add", "remove", "promote", "demote", "leave", "create")
MAX_PARTICIPANTS = 1024  # WhatsApp's limit of a group: more in one event is no notification of WhatsApp's
MAX_SUBJECT = 256  # WhatsApp's own limits are lower (100, 2,048): what is longer is cut, never refused
MAX_DESCRIPTION = 4096
_GROUP_SUFFIX = "@g.us"


def _str(value: Any, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _person(value: Any) -> dict[str, str | None] | None:
    """``{phone_number, lid}`` of someone in the group (either may be unknown), or None."""
    if not isinstance(value, dict):
        return None
    person = {"phone_number": _str(value.get("phone_number"), 32), "lid": _str(value.get("lid"), 64)}
    return person if person["phone_number"] or person["lid"] else None


def _timestamp(value: Any) -> str | None:
    return event_log.iso(float(value)) if isinstance(value, (int, float)) and value > 0 else None


def _updated(event: dict[str, Any]) -> dict[str, Any]:
    """The fields a ``group.updated`` changed, only those (``description`` null: removed)."""
    fields: dict[str, Any] = {}
    if "subject" in event:
        fields["subject"] = _str(event["subject"], MAX_SUBJECT)
    if "description" in event:
        fields["description"] = _str(event["description"], MAX_DESCRIPTION)
    for flag in ("announce", "restrict"):
        if isinstance(event.get(flag), bool):
            fields[flag] = event[flag]
    return fields


def store_group_event(conn: sqlite3.Connection, account: str, event: dict[str, Any],
                      now: float) -> dict[str, Any] | None:
    """One group change, once; returns its stored event, or None for a repeat or an unusable one."""
    type_, group = event.get("type"), _str(event.get("group_id"), 64)
    if type_ not in TYPES or group is None or not group.endswith(_GROUP_SUFFIX):
        return None
    data: dict[str, Any] = {"group_id": group}
    if type_ == "group.participants":
        action, people = event.get("action"), event.get("participants")
        if action not in ACTIONS or not isinstance(people, list):
            return None
        data["action"] = action
        data["participants"] = [p for p in map(_person, people[:MAX_PARTICIPANTS]) if p is not None]
        if action == "create":
            data["subject"] = _str(event.get("subject"), MAX_SUBJECT)
    else:
        fields = _updated(event)
        if not fields:
            return None
        data.update(fields)
    data["by"] = _person(event.get("by"))
    data["timestamp"] = _timestamp(event.get("timestamp"))
    return event_log.append(conn, account, type_, data, now, source_id=_str(event.get("event_id")), subject=group)
