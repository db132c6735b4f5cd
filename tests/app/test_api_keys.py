"""The API key store: WA_API_KEY (several, for rotation) or one generated key in the data dir,
created 0600 in a 0700 dir, exactly once even when programs race, and printed by `wa-gateway api-key`.

(The whole-stack part is in tests/system/test_api_keys_stack.py.)
"""

import os
import stat
import subprocess
import sys

import pytest

from service.auth import admin_key as api_keys
from tests.helpers.stack import BIN, REPO, wait_for


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_env_keys_are_comma_separated_and_win_over_the_file(tmp_path):
    keys = api_keys.resolve(" old-key , new-key ,,old-key", tmp_path / "data")
    assert keys.keys == ("old-key", "new-key") and keys.source == "env"
    assert not (tmp_path / "data" / "api-key").exists()  # nothing written when the env names keys


@pytest.mark.parametrize("raw", ["has space", "tab\tkey", "caf\u00e9", "nul\x00"])
def test_a_key_must_be_visible_ascii(raw):
    with pytest.raises(api_keys.ApiKeyError):
        api_keys.parse_keys(raw)


def test_first_start_generates_a_private_key_once(tmp_path):
    data = tmp_path / "data"
    first = api_keys.resolve("", data)
    assert first.created and first.source == "file" and len(first.first) >= 40
    assert mode(data) == 0o700 and mode(data / "api-key") == 0o600
    again = api_keys.resolve(None, data)
    assert again.keys == first.keys and not again.created
    assert sorted(p.name for p in data.iterdir()) == ["api-key"]  # no temp file left behind


def test_a_program_that_loses_the_race_uses_the_winners_key(tmp_path, monkeypatch):
    """Another program creates the file between our existence check and our link: we must read
    its key, not replace it (rename(2) would, and the two programs would hold different keys)."""
    data = tmp_path / "data"
    real_generate = api_keys.generate
    winner = {}

    def generate_while_another_program_wins():
        monkeypatch.setattr(api_keys, "generate", real_generate)
        winner["keys"] = api_keys.load_or_create(data)  # the other program, all the way through
        return "loser-" + real_generate()

    monkeypatch.setattr(api_keys, "generate", generate_while_another_program_wins)
    ours = api_keys.load_or_create(data)
    assert winner["keys"].created and not ours.created
    assert ours.keys == winner["keys"].keys == api_keys.read_key_file(data / "api-key")
    assert sorted(p.name for p in data.iterdir()) == ["api-key"]


def test_racing_processes_create_one_key(tmp_path):
    data, go = tmp_path / "data", tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from service.auth import admin_key as api_keys\n"
        f"Path({str(tmp_path)!r}, 'ready-' + sys.argv[1]).touch()\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
        f"print(api_keys.load_or_create(Path({str(data)!r})).first)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True) for i in range(6)]
    # Once all have imported, the go file releases them at the same moment.
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 6, 30, "six ready racers")
    go.touch()
    outs = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert len(outs) == 1 and outs == {api_keys.read_key_file(data / "api-key")[0]}


def test_wa_gateway_api_key_prints_the_key_clients_send(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_")}
    env["WA_DATA_DIR"] = str(tmp_path / "data")
    out = subprocess.run([str(BIN / "wa-gateway"), "api-key"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == api_keys.read_key_file(tmp_path / "data" / "api-key")[0]
    env["WA_API_KEY"] = "first-key,second-key"
    out = subprocess.run([str(BIN / "wa-gateway"), "api-key"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == "first-key"
