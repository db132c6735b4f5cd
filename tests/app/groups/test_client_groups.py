"""The Python client's and the CLI's groups (clients/python/.../groups.py, cli_groups.py) against the in-process
gateway in front of the stand-in worker's group routes: typed answers, per-participant results, typed errors, any
account, and the CLI's lines, JSON and exit codes (1 when WhatsApp refused a participant)."""

from __future__ import annotations

import json

import pytest

from service.programs.client_commands import CLIENT_COMMANDS
from tests.helpers.cli_inprocess import run_cli
from tests.helpers.fake_groups import ME, NOT_ON_WHATSAPP, PRIVATE
from tests.helpers.fake_worker import KEY, P1, P2
from wa_gateway_client import AsyncClient, cli, errors


@pytest.fixture
async def wa(api):
    client = await api()
    async with AsyncClient(str(client.make_url("")).rstrip("/"), api_key=KEY) as wa:
        wa.stand_in = client.worker.groups
        yield wa


async def test_the_client_manages_a_group_end_to_end(wa):
    team = await wa.create_group("Team", [P1, PRIVATE])
    assert team.id.endswith("@g.us") and [(r.phone_number, r.ok, r.code) for r in team.results] == [
        (P1, True, None), (PRIVATE, False, "privacy")]
    assert [(g.id, g.role, g.participants_count) for g in await wa.groups()] == [(team.id, "superadmin", 2)]
    renamed = await wa.update_group(team.id, subject="Team B", description="Ours")
    assert (renamed.subject, renamed.description) == ("Team B", "Ours")
    results = await wa.group_participants(team.id, "add", [P2, NOT_ON_WHATSAPP])
    assert [(r.status, r.code) for r in results] == [(200, None), (404, "not_on_whatsapp")]
    shown = await wa.group(team.id)
    assert [p.phone_number for p in shown.participants] == [ME, P1, P2]
    invite = await wa.group_invite(team.id)
    revoked = await wa.group_invite(team.id, revoke=True)
    assert revoked.code != invite.code and revoked.link.endswith(revoked.code)
    assert await wa.leave_group(team.id) == team.id
    with pytest.raises(errors.GroupNotFound):
        await wa.group(team.id)
    assert await wa.join_group(revoked.link) == team.id
    with pytest.raises(errors.InvalidParticipants):
        await wa.create_group("T", [])
    with pytest.raises(errors.InvalidGroupId):
        await wa.group("not-a-group")
    sent = await wa.send_to_group(team.id, "hi @15550002222", mentions=[P1])
    assert sent.status == "sent"
    assert {k: v for k, v in wa.stand_in._worker.sends[-1].items() if k in ("group_id", "text", "mentions")} == {
        "group_id": team.id, "text": "hi @15550002222", "mentions": [P1]}
    other = wa.account("default")  # the same account by name: the same paths
    assert [g.id for g in await other.groups()] == [team.id]


async def test_the_client_raises_the_typed_refusals_of_the_worker(wa):
    theirs = wa.stand_in.add("Theirs", {P1: "superadmin"}, role=None)
    with pytest.raises(errors.NotAdmin):
        await wa.update_group(theirs, subject="Mine")
    wa.stand_in._worker.state = "connecting"
    with pytest.raises(errors.NotConnected):
        await wa.groups()


async def test_the_cli_lists_creates_and_changes_groups(wa, capsys):
    assert await run_cli(wa, capsys, "groups") == (cli.OK, "no groups\n")
    code, out = await run_cli(wa, capsys, "groups", "create", "Team", P1, PRIVATE)
    gid = out.splitlines()[0]
    assert code == cli.FAILED and out.splitlines()[1:] == [f"{P1}  200", f"{PRIVATE}  403  privacy"]
    code, out = await run_cli(wa, capsys, "groups", "list")
    assert code == cli.OK and gid in out and "superadmin" in out and "Team" in out
    code, out = await run_cli(wa, capsys, "groups", "promote", gid, P1)
    assert (code, out) == (cli.OK, f"{P1}  200\n")
    code, out = await run_cli(wa, capsys, "groups", "show", gid, "--json")
    shown = json.loads(out)
    assert [(p["phone_number"], p["admin"]) for p in shown["participants"]] == [(ME, "superadmin"), (P1, "admin")]
    code, out = await run_cli(wa, capsys, "groups", "rename", gid, "Team B")
    assert "subject      Team B" in out
    code, out = await run_cli(wa, capsys, "groups", "invite", gid, "--revoke")
    assert out.startswith("https://chat.whatsapp.com/")
    assert await run_cli(wa, capsys, "groups", "leave", gid) == (cli.OK, f"left {gid}\n")
    with pytest.raises(cli.Done) as usage:
        await run_cli(wa, capsys, "groups", "show")
    assert usage.value.code == cli.USAGE
    with pytest.raises(errors.GroupNotFound):
        await run_cli(wa, capsys, "groups", "show", gid)


def test_wa_gateway_on_the_host_hands_groups_to_the_client_cli():
    """``wa-gateway groups ...`` (the launcher on the gateway's host) runs the client's command, not its own usage."""
    subcommands = next(a for a in cli.parser()._actions if a.dest == "command").choices
    assert "groups" in subcommands and "groups" in CLIENT_COMMANDS
