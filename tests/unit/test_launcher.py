"""The launcher's own decisions, without starting supervisord: which running stack `ctl` talks to."""

from __future__ import annotations

import socket

import pytest

from service.programs import launcher


@pytest.mark.parametrize("data", ["data", "sandbox_data"])
def test_ctl_finds_the_running_stack_of_either_mode_without_being_told(tmp_path, monkeypatch, data):
    monkeypatch.setattr(launcher, "REPO_ROOT", tmp_path)
    monkeypatch.delenv("WA_RUN_DIR", raising=False)
    monkeypatch.delenv("WA_DATA_DIR", raising=False)
    monkeypatch.delenv("WA_SANDBOX", raising=False)
    assert launcher._running_run_dir() is None
    # A stale socket file of the other mode (nothing listening) must not be picked.
    other = "sandbox_data" if data == "data" else "data"
    (tmp_path / other / "run").mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / other / "run" / "supervisor.sock"))
    stale.close()
    run = tmp_path / data / "run"
    run.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(run / "supervisor.sock"))
        live.listen()
        assert launcher._running_run_dir() == run


def test_ctl_uses_the_configured_dirs_when_given(monkeypatch, tmp_path):
    monkeypatch.setenv("WA_DATA_DIR", str(tmp_path))
    assert launcher._running_run_dir() is None  # _base_env derives the run dir from the setting
