"""``wa-gateway backup`` while the stack runs and sends, then ``wa-gateway restore`` into the stopped stack:
it comes back linked without a QR, with every message that was in the backup and nothing after it; a
damaged backup is refused before anything is touched, and so is a restore while the stack runs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading

import pytest

from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import BIN, REPO, wait_for

pytestmark = pytest.mark.system


def run(stack, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "wa-gateway"), *args], env=stack.env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_backup_while_sending_then_restore_comes_back_linked_with_the_backed_up_messages(make_stack, tmp_path):
    stack = make_stack(sandbox=True)
    pair(stack)
    before = [stack.post("/send", {"phone_number": CONTACT, "message": f"before {n}"}).json()["id"] for n in range(3)]
    assert stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "inbound before"}).status == 200
    stack.wait_event(lambda e: e["type"] == "message.received" and e.get("text") == "inbound before", 20, "inbound")

    # Sends keep coming while the backup runs: each is accepted (the worker's pause only queues them).
    answers: list[int] = []
    stop = threading.Event()

    def sender():
        n = 0
        while not stop.is_set():
            answers.append(stack.post("/send?wait=0", {"phone_number": CONTACT, "message": f"during {n}"}).status)
            n += 1
            stop.wait(0.1)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        dest = tmp_path / "backup"
        made = run(stack, "backup", str(dest))
    finally:
        stop.set()
        thread.join(30)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "the worker paused" in made.stdout
    assert answers and set(answers) <= {200, 202}, answers
    manifest = json.loads((dest / "backup.json").read_text())
    assert "gateway.db" in manifest["files"] and any(f.startswith("session/") for f in manifest["files"])
    assert not any(f.startswith(("run/", "emulator/")) for f in manifest["files"])
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert all(stat.S_IMODE((dest / f).stat().st_mode) == 0o600 for f in manifest["files"])
    # the worker shards run again by themselves and the account is still linked
    wait_for(lambda: stack.process_info("worker:worker-0")["statename"] == "RUNNING", 20, "the worker back")
    stack.wait_state("connected", 30)
    after = stack.post("/send", {"phone_number": CONTACT, "message": "after the backup"}).json()["id"]

    refused = run(stack, "restore", str(dest))
    assert refused.returncode == 1 and "running" in refused.stderr
    assert stack.stop() == 0

    damaged = tmp_path / "damaged"
    shutil.copytree(dest, damaged)
    session_file = next(p for p in (damaged / "session").rglob("*") if p.is_file())
    session_file.write_bytes(session_file.read_bytes() + b"x")
    untouched = sorted(p.name for p in stack.data_dir.iterdir())
    bad = run(stack, "restore", str(damaged))
    assert bad.returncode == 1 and "sha256" in bad.stderr
    assert sorted(p.name for p in stack.data_dir.iterdir()) == untouched

    restored = run(stack, "restore", str(dest))
    assert restored.returncode == 0, restored.stderr
    aside = next(stack.data_dir.parent.glob("data.replaced-*"))
    assert (aside / "gateway.db").exists()  # what it replaced is kept, not deleted
    assert stat.S_IMODE((stack.data_dir / "gateway.db").stat().st_mode) == 0o600

    stack.start()
    status = stack.wait_state("connected", 40)  # no QR: the session came back from the backup
    assert status["phone_number"] == PHONE
    ids = {m["id"] for m in stack.all_pages("/messages?limit=200")}
    assert set(before) <= ids and after not in ids
    inbound = [m["text"] for m in stack.all_pages("/messages?direction=in&limit=200")]
    assert "inbound before" in inbound
    # and it still works both ways
    res = stack.post("/send", {"phone_number": CONTACT, "message": "after the restore"})
    assert res.status in (200, 202), res.raw
    try:
        wait_for(lambda: any(m["text"] == "after the restore"
                             for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json()), 30, "delivery")
    except AssertionError:
        print(len(answers), stack.get(f"/messages/{res.json()['id']}").json())
        print(stack.emu("GET", f"/contacts/{CONTACT}/messages").json()[-5:])
        print([m["status"] for m in stack.all_pages("/messages?limit=200")])
        raise


def test_backup_of_a_stopped_stack_and_bad_arguments(make_stack, tmp_path):
    stack = make_stack(start=False)
    stack.data_dir.mkdir(mode=0o700, parents=True)
    (stack.data_dir / "api-key").write_text("k\n")
    os.chmod(stack.data_dir / "api-key", 0o644)
    made = run(stack, "backup", str(tmp_path / "b"))
    assert made.returncode == 0 and "stack not running" in made.stdout, made.stderr
    assert stat.S_IMODE((tmp_path / "b" / "api-key").stat().st_mode) == 0o600
    again = run(stack, "backup", str(tmp_path / "b"))
    assert again.returncode == 1 and "not empty" in again.stderr
    assert run(stack, "backup").returncode == 2
    assert run(stack, "restore", str(tmp_path / "nothing-here")).returncode == 1
