"""The sandbox's worker trusts the emulator's media CA (issue 24): the launcher creates the CA in the media dir
the emulator uses and names its file to the worker (WA_SANDBOX_MEDIA_CA), which takes it in the sandbox only."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from service.programs import launcher


def test_the_sandbox_env_names_the_emulators_media_ca_to_the_worker(tmp_path):
    env = {"PATH": os.environ["PATH"], "WA_DATA_DIR": str(tmp_path), "WA_SANDBOX": "true"}
    env = launcher._sandbox_env(env)
    media_dir = tmp_path / "emulator" / "wa-emulator-media"
    assert env["WA_EMULATOR_MEDIA_DIR"] == str(media_dir)
    ca = Path(env["WA_SANDBOX_MEDIA_CA"])
    assert ca == media_dir / "media-ca.pem"  # where the emulator (same WA_EMULATOR_MEDIA_DIR) finds it
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    # created once: a second start keeps it (the sandbox's stored media URLs stay trusted)
    again = launcher._sandbox_env({"PATH": os.environ["PATH"], "WA_DATA_DIR": str(tmp_path), "WA_SANDBOX": "true"})
    assert again["WA_SANDBOX_MEDIA_CA"] == str(ca) and ca.read_text() == Path(again["WA_SANDBOX_MEDIA_CA"]).read_text()


def test_the_sandbox_env_names_the_emulators_root_key_to_the_worker(tmp_path):
    """The public half of the root key the emulator signs its certificates with (its file, which the emulator reads
    too), made once: the worker of a restarted sandbox still trusts the same emulator."""
    env = launcher._sandbox_env({"PATH": os.environ["PATH"], "WA_DATA_DIR": str(tmp_path), "WA_SANDBOX": "true"})
    key_file = tmp_path / "emulator" / "root-key.json"
    assert env["WA_EMULATOR_ROOT_KEY_FILE"] == str(key_file)
    assert env["WA_SANDBOX_ROOT_KEY"] == json.loads(key_file.read_text())["public"]
    assert len(base64.b64decode(env["WA_SANDBOX_ROOT_KEY"])) == 32
    again = launcher._sandbox_env({"PATH": os.environ["PATH"], "WA_DATA_DIR": str(tmp_path), "WA_SANDBOX": "true"})
    assert again["WA_SANDBOX_ROOT_KEY"] == env["WA_SANDBOX_ROOT_KEY"]


def test_an_operators_own_setting_is_kept(tmp_path):
    mine = tmp_path / "mine.pem"
    env = launcher._sandbox_env({"PATH": os.environ["PATH"], "WA_DATA_DIR": str(tmp_path), "WA_SANDBOX": "true",
                                 "WA_SANDBOX_MEDIA_CA": str(mine)})
    assert env["WA_SANDBOX_MEDIA_CA"] == str(mine)
    key = base64.b64encode(bytes(32)).decode()
    env = launcher._sandbox_env({"PATH": os.environ["PATH"], "WA_DATA_DIR": str(tmp_path), "WA_SANDBOX": "true",
                                 "WA_SANDBOX_ROOT_KEY": key})
    assert env["WA_SANDBOX_ROOT_KEY"] == key
