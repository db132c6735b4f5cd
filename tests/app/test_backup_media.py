"""``wa-gateway backup`` / ``restore`` and the data dir's media store (service/programs/backup.py), without a stack
(a stopped one is copied as it is): every committed blob is in the backup and comes back 0600 in 0700
directories, byte for byte; the store's temp files (writes in progress) are left out."""

from __future__ import annotations

import asyncio
import json
import os
import stat

from service.media.store import Blob, FileStore
from service.programs import backup


async def put(store: FileStore, data: bytes) -> Blob:
    async with store.writer(len(data)) as writer:
        writer.write(data)
        return await writer.commit()


def test_the_media_store_is_backed_up_and_restored_without_its_temp_files(tmp_path):
    data_dir = tmp_path / "data"
    store = FileStore(data_dir / "media")
    blobs = [asyncio.run(put(store, os.urandom(n))) for n in (1, 70_000, 300_000)]
    half_written = store.tmp / "blob-abc123"
    half_written.write_bytes(b"a write in progress")
    (data_dir / "media" / "notes.tmp").write_bytes(b"x")
    dest = tmp_path / "backup"
    manifest = backup.backup(data_dir, tmp_path / "no-supervisor.sock", dest)
    names = set(manifest["files"])
    expected = {f"media/{b.sha256[:2]}/{b.sha256[2:]}" for b in blobs}
    assert expected <= names
    assert not any("tmp" in name for name in names), names
    assert json.loads((dest / "backup.json").read_text())["files"] == manifest["files"]

    target = tmp_path / "restored"
    for name in expected:  # a backup whose modes were loosened (copied around) still comes back private
        os.chmod(dest / name, 0o644)
    backup.restore(target, tmp_path / "no-supervisor.sock", dest)
    restored = FileStore(target / "media")
    for blob in blobs:
        path = restored.path(blob.sha256)
        assert path.read_bytes() == blob.path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert list(restored.tmp.iterdir()) == []
