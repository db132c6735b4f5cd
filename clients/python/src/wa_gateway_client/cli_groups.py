"""The CLI's groups (issue 26): ``groups`` lists the account's groups; ``groups show ID``, ``groups create SUBJECT
PHONE...``, ``groups rename ID SUBJECT``, ``groups describe ID TEXT``, ``groups add|remove|promote|demote ID
PHONE...``, ``groups invite ID [--revoke]``, ``groups join CODE|LINK``, ``groups leave ID``.

Why one command with actions (like ``accounts``): a group is one resource, and ``groups`` alone answers the first
question, which groups the account is in. A participant WhatsApp refused is a line of the output with its status,
and the exit code is then 1 (failed) so that a script notices; the others went through.
"""

from __future__ import annotations

import argparse
from typing import Any

from .client import AsyncClient
from .groups import Group, ParticipantResult

ACTIONS = ("list", "show", "create", "rename", "describe", "add", "remove", "promote", "demote", "invite", "join",
           "leave")
_ARGS = {  # action -> what it takes after the action's name
    "list": "", "show": "ID", "create": "SUBJECT PHONE...", "rename": "ID SUBJECT", "describe": "ID TEXT",
    "add": "ID PHONE...", "remove": "ID PHONE...", "promote": "ID PHONE...", "demote": "ID PHONE...",
    "invite": "ID", "join": "CODE|LINK", "leave": "ID",
}


def add_command(command: Any) -> None:
    p: argparse.ArgumentParser = command(
        "groups", cmd_groups, "list the account's groups, or show, create, rename, describe, add/remove/promote/"
                              "demote participants, get or revoke the invite link, join, leave")
    p.add_argument("action", nargs="?", choices=ACTIONS, default="list")
    p.add_argument("values", nargs="*", metavar="ARG",
                   help="; ".join(f"{a} {v}" for a, v in _ARGS.items() if v) + " (ID: as `groups` lists it)")
    p.add_argument("--revoke", action="store_true", help="invite: end the current link and print the new one")


def _need(args: argparse.Namespace, count: int, *, more: bool = False) -> list[str]:
    from .cli import USAGE, Done  # the CLI's own: imported late, cli.py imports this module

    values = args.values
    if len(values) < count or (not more and len(values) > count):
        raise Done(USAGE, f"groups {args.action} takes {_ARGS[args.action]}")
    return list(values)


def _group_lines(group: Group) -> str:
    lines = [f"id           {group.id}", f"subject      {group.subject or ''}"]
    if group.description:
        lines.append(f"description  {group.description}")
    lines.append(f"owner        {group.owner or ''}")
    for p in group.participants:
        lines.append(f"participant  {p.phone_number or p.lid}{'  ' + p.admin if p.admin else ''}")
    return "\n".join(lines)


def _results(out: Any, results: list[ParticipantResult], value: Any, first: str = "") -> int:
    """One line per number (its status, and WhatsApp's code when refused); 1 (failed) when any was refused."""
    from .cli import FAILED, OK

    lines = [first] if first else []
    lines += [f"{r.phone_number}  {r.status}{'  ' + r.code if r.code else ''}" for r in results]
    out.data(value, "\n".join(lines))
    return OK if all(r.ok for r in results) else FAILED


async def cmd_groups(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    from .cli import OK, _table

    account, action = wa.account(args.account), args.action
    if action == "list":
        _need(args, 0)
        groups = await account.groups()
        out.data(groups, _table([[g.id, g.role, g.participants_count, g.subject] for g in groups],
                                ["ID", "ROLE", "MEMBERS", "SUBJECT"]) if groups else "no groups")
        return OK
    if action == "create":
        subject, *phones = _need(args, 2, more=True)
        group = await account.create_group(subject, phones)
        return _results(out, group.results, group, first=group.id)
    if action in ("add", "remove", "promote", "demote"):
        group_id, *phones = _need(args, 2, more=True)
        results = await account.group_participants(group_id, action, phones)
        return _results(out, results, results)
    if action == "join":
        (code,) = _need(args, 1)
        joined = await account.join_group(code)
        out.data({"id": joined}, joined)
        return OK
    return await _on_one(account, args, out)


async def _on_one(account: Any, args: argparse.Namespace, out: Any) -> int:
    """The actions on one group named first: show, rename, describe, invite, leave."""
    from .cli import OK

    action = args.action
    if action in ("rename", "describe"):
        group_id, text = _need(args, 2)
        field = "subject" if action == "rename" else "description"
        group = await account.update_group(group_id, **{field: text})
        out.data(group, _group_lines(group))
        return OK
    (group_id,) = _need(args, 1)
    if action == "show":
        group = await account.group(group_id)
        out.data(group, _group_lines(group))
    elif action == "invite":
        invite = await account.group_invite(group_id, revoke=args.revoke)
        out.data(invite, invite.link)
    else:  # leave
        out.data({"id": await account.leave_group(group_id)}, f"left {group_id}")
    return OK

