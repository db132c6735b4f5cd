"""The content-addressed media store (service/media/store.py): durable, named by sha256, private, bounded,
and crash-safe (a kill mid-write leaves no blob under a sha256 name)."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.media.errors import MediaTooLarge
from service.media.store import FileStore
from tests.helpers.stack import REPO


def blobs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")


def temps(root: Path) -> list[Path]:
    return sorted((root / "tmp").iterdir())


async def test_a_blob_is_stored_under_its_sha256_sharded_private_and_readable(tmp_path):
    store = FileStore(tmp_path / "media")
    data = b"hello media" * 1000
    async with store.writer(limit=len(data)) as writer:
        for i in range(0, len(data), 777):
            writer.write(data[i:i + 777])
        blob = await writer.commit()
    digest = hashlib.sha256(data).hexdigest()
    assert (blob.sha256, blob.size) == (digest, len(data))
    assert blob.path == tmp_path / "media" / digest[:2] / digest[2:]
    assert blobs(tmp_path / "media") == [blob.path] and temps(tmp_path / "media") == []
    assert stat.S_IMODE(blob.path.stat().st_mode) == 0o600
    for directory in (tmp_path / "media", blob.path.parent, tmp_path / "media" / "tmp"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    with store.open(digest) as file:
        assert file.read() == data
    assert store.exists(digest)
    assert store.delete(digest) and not store.exists(digest) and not store.delete(digest)


async def test_the_same_content_twice_is_stored_once(tmp_path):
    store = FileStore(tmp_path)
    found = []
    for _ in range(2):
        async with store.writer(limit=100) as writer:
            writer.write(b"same")
            found.append(await writer.commit())
    assert found[0] == found[1]
    assert blobs(tmp_path) == [found[0].path] and temps(tmp_path) == []


async def test_one_byte_over_the_limit_is_413_and_leaves_nothing(tmp_path):
    store = FileStore(tmp_path)
    async with store.writer(limit=10) as writer:
        writer.write(b"0123456789")  # exactly the limit: fine
    with pytest.raises(MediaTooLarge) as raised:
        async with store.writer(limit=10) as writer:
            writer.write(b"01234")
            writer.write(b"567890")
    assert raised.value.status == 413 and raised.value.code == "media_too_large"
    assert blobs(tmp_path) == [] and temps(tmp_path) == []


async def test_leaving_without_a_commit_keeps_nothing(tmp_path):
    store = FileStore(tmp_path)
    with pytest.raises(RuntimeError):
        async with store.writer(limit=100) as writer:
            writer.write(b"abc")
            raise RuntimeError("the caller failed")
    assert blobs(tmp_path) == [] and temps(tmp_path) == []


async def test_the_head_holds_the_first_bytes_for_sniffing(tmp_path):
    async with FileStore(tmp_path).writer(limit=100_000) as writer:
        writer.write(b"a" * 5000)
        writer.write(b"b" * 5000)
        assert writer.head == b"a" * 5000 + b"b" * 3192


def test_a_bad_name_is_refused_not_resolved(tmp_path):
    with pytest.raises(ValueError):
        FileStore(tmp_path).path("../../etc/passwd")


WRITER = """
import asyncio, sys
from pathlib import Path
from service.media.store import FileStore

async def main():
    writer = FileStore(Path(sys.argv[1])).writer(limit=1 << 30)
    while True:
        writer.write(b"x" * 65536)
        print("wrote", flush=True)
        await asyncio.sleep(0.01)

asyncio.run(main())
"""


def test_a_kill_mid_write_leaves_no_blob_and_the_sweep_clears_its_temp_file(tmp_path):
    root = tmp_path / "media"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], cwd=REPO, stdout=subprocess.PIPE)
    assert child.stdout is not None
    for _ in range(5):
        assert child.stdout.readline() == b"wrote\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert blobs(root) == []
    (left,) = temps(root)  # the half-written file: only ever under tmp/
    assert left.stat().st_size > 0
    store = FileStore(root)
    assert store.sweep() == 0  # young: could be a write in progress
    old = time.time() - 7200
    os.utime(left, (old, old))
    assert store.sweep() == 1 and temps(root) == []


COMMITTER = """
import asyncio, os, sys
from pathlib import Path
from service.media.store import FileStore

async def main():
    store = FileStore(Path(sys.argv[1]))
    n = 0
    while True:
        async with store.writer(limit=1 << 30) as writer:
            for _ in range(32):
                writer.write(os.urandom(65536))
            await writer.commit()
        n += 1
        print("committed", flush=True)

asyncio.run(main())
"""


def test_a_kill_while_blobs_are_committed_leaves_only_whole_blobs_under_their_names(tmp_path):
    root = tmp_path / "media"
    child = subprocess.Popen([sys.executable, "-c", COMMITTER, str(root)], cwd=REPO, stdout=subprocess.PIPE)
    assert child.stdout is not None
    for _ in range(3):
        assert child.stdout.readline() == b"committed\n"
    time.sleep(0.05)  # somewhere inside the next write or commit
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    found = blobs(root)
    assert len(found) >= 3
    for path in found:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.parent.name + path.name
        assert path.stat().st_size == 32 * 65536


async def test_a_commit_fsyncs_the_file_renames_it_into_place_then_fsyncs_its_directories(tmp_path, monkeypatch):
    """The order that makes a blob whole under its name or absent: fsync the temp file, one atomic rename, then
    the directories (so that the rename itself survives a power cut)."""
    store = FileStore(tmp_path)
    steps: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        real_fsync(fd)
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def replace(src, dst) -> None:
        real_replace(src, dst)
        steps.append(("rename", str(src), str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    async with store.writer(limit=100) as writer:
        writer.write(b"durable")
        temp = str(next((tmp_path / "tmp").iterdir()))
        blob = await writer.commit()
    assert steps == [("fsync", temp), ("rename", temp, str(blob.path)), ("fsync", str(blob.path.parent)),
                     ("fsync", str(tmp_path))]


async def test_a_commit_whose_caller_is_cancelled_finishes_in_its_thread_and_leaves_no_temp_file(tmp_path,
                                                                                                 monkeypatch):
    import asyncio

    store = FileStore(tmp_path)
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (time.sleep(0.3), real_fsync(fd))[1])  # a slow disk

    async def send() -> None:
        async with store.writer(limit=100) as writer:
            writer.write(b"cancelled mid-commit")
            await writer.commit()

    task = asyncio.create_task(send())
    await asyncio.sleep(0.1)  # inside the file's fsync
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.2)  # the thread's fsyncs and rename
    (blob,) = blobs(tmp_path)
    assert blob.read_bytes() == b"cancelled mid-commit" and temps(tmp_path) == []
