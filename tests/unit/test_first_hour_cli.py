"""A newcomer's first hour without a stack (issue 23): the CLI's options and defaults, where `restore` puts what
it replaces, and that installing the client leaves no build output in the checkout.

(The parts on a running sandbox stack are in tests/system/test_first_hour_stack.py.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.programs import backup
from service.programs.client_commands import split_command
from wa_gateway_client import cli, linking
from wa_gateway_client.models import Status

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("status", "connect", "send", "messages", "logout", "accounts", "health", "api-key", "selftest")
ARGS = {"send": ["+15550001111", "hi"]}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_keeps_its_own_default_timeout(command):
    """selftest's 60 s (per waiting check) must not leak into the documented 120 s of the others."""
    args = cli.parse([command, *ARGS.get(command, [])])
    assert args.timeout == (60.0 if command == "selftest" else 120.0)


@pytest.mark.parametrize("command", COMMANDS)
def test_global_options_work_before_or_after_the_command(command):
    extra = ARGS.get(command, [])
    before = cli.parse(["--url", "http://x:1", "--account", "sales", "--timeout", "5", "--json", command, *extra])
    after = cli.parse([command, *extra, "--url", "http://x:1", "--account", "sales", "--timeout", "5", "--json"])
    for args in (before, after):
        assert (args.url, args.account, args.timeout, args.json) == ("http://x:1", "sales", 5.0, True)
    # Given before and after: the one after the command wins, as the last word does.
    assert cli.parse(["--url", "http://a:1", command, *extra, "--url", "http://b:2"]).url == "http://b:2"


@pytest.mark.parametrize("command", COMMANDS)
def test_sandbox_is_in_every_commands_help_on_the_gateways_host(command, capsys):
    with pytest.raises(SystemExit):
        cli.parser("wa-gateway").parse_args([command, "--help"])
    shown = capsys.readouterr().out
    assert "--sandbox" in shown
    assert f"(default {60 if command == 'selftest' else 120})" in shown
    with pytest.raises(SystemExit):  # the standalone client has no sandbox of its own to find
        cli.parser("wa-gateway-client").parse_args([command, "--help"])
    assert "--sandbox" not in capsys.readouterr().out


def test_the_launcher_finds_the_command_past_leading_options():
    assert split_command(["--url", "http://x:1", "status", "--json"]) == ("status", ["--url", "http://x:1", "--json"],
                                                                          False)
    assert split_command(["--sandbox", "--account", "status", "connect"]) == ("connect", ["--account", "status"], True)
    assert split_command(["--json"]) == (None, ["--json"], False)


def test_connect_says_why_whatsapp_is_unreachable():
    status = Status(connected=False, state="whatsapp_unreachable", unreachable={
        "cause": "dns", "detail": "getaddrinfo ENOTFOUND web.whatsapp.com", "since": "2026-12-07T12:00:00Z",
        "attempts": 3})
    line = linking.state_line(status, "default")
    assert "WhatsApp is unreachable: dns (getaddrinfo ENOTFOUND web.whatsapp.com); 3 attempts" in line
    assert linking.state_line(Status(connected=False, state="connecting"), "sales").startswith("connecting")


def test_restore_sets_the_replaced_data_aside_outside_the_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    inside = checkout / "sandbox_data"
    inside.mkdir(parents=True)
    aside = backup.aside_dir(inside, repo_root=checkout)
    assert not aside.is_relative_to(checkout)
    assert aside.parent == tmp_path / "checkout-replaced" and aside.name.startswith("sandbox_data.replaced-")
    elsewhere = tmp_path / "srv" / "wa-data"
    elsewhere.mkdir(parents=True)
    assert backup.aside_dir(elsewhere, repo_root=checkout).parent == tmp_path / "srv"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_building_the_client_leaves_no_build_output_in_the_checkout(tmp_path):
    """What `pip install ./clients/python` (not editable) does: an in-tree build, by default into ./build."""
    copy = tmp_path / "client"
    tracked = subprocess.run(["git", "ls-files", "clients/python"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked + ["clients/python/setup.py"]:
        target = copy / Path(name).relative_to("clients/python")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "w"),
                            str(copy)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    assert list((tmp_path / "w").glob("wa_gateway_client-*.whl"))
    left = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=copy, capture_output=True, text=True,
                          check=True).stdout
    assert "build/" not in left, left


def test_the_key_without_sandbox_says_the_sandbox_has_its_own(tmp_path):
    """`api-key` without `--sandbox` after `make sandbox` printed a key the sandbox refuses, silently."""
    from service.programs.launcher import other_stack_hint

    assert other_stack_hint("api-key", False, {}, tmp_path) is None  # no sandbox was ever run here
    (tmp_path / "sandbox_data").mkdir()
    hint = other_stack_hint("api-key", False, {}, tmp_path)
    assert hint is not None and ".venv/bin/wa-gateway api-key --sandbox" in hint and "make run" in hint
    assert other_stack_hint("api-key", True, {}, tmp_path) is None  # asked for the sandbox's
    assert other_stack_hint("api-key", False, {"WA_DATA_DIR": "/srv/wa"}, tmp_path) is None  # its own data dir
    assert "webhook-secret --sandbox" in (other_stack_hint("webhook-secret", False, {}, tmp_path) or "")


def test_api_key_prints_the_key_alone_on_stdout_and_the_hint_on_stderr(tmp_path, monkeypatch, capsys):
    from service.programs import launcher

    monkeypatch.setattr(launcher, "REPO_ROOT", tmp_path)
    for name in ("WA_DATA_DIR", "WA_RUN_DIR", "WA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "sandbox_data").mkdir()
    assert launcher.print_api_key([]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == (tmp_path / "data" / "api-key").read_text().strip()  # KEY=$(...) still gets the key
    assert "api-key --sandbox" in err
    assert launcher.print_api_key(["--sandbox"]) == 0
    assert "--sandbox" not in capsys.readouterr().err


def test_the_lock_names_the_api_port_also_when_wa_port_is_not_set():
    from service.programs.launcher import api_port

    assert api_port({}) == "3001" and api_port({"WA_PORT": " "}) == "3001"  # make run sets no WA_PORT
    assert api_port({"WA_PORT": "8080"}) == "8080"
