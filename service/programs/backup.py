"""``wa-gateway backup DEST`` and ``wa-gateway restore SRC``: the data dir, consistent, while the gateway runs.

What makes a copy consistent is the order of the hand-over between the two stores (events go worker
journal -> gateway store -> ack -> the worker forgets them): the gateway's SQLite must be copied *after*
the worker's files stop changing, or an event acked in between is in neither copy. So a backup of a
running stack
1. stops the worker shards through supervisord (the gateway keeps answering: sends are accepted into the
   outbox and wait; WhatsApp keeps inbound messages until the worker is back and acks them);
2. copies the gateway's SQLite with SQLite's online backup API (a consistent snapshot, taken through the
   same locks the gateway writes under, so no pause of the gateway is needed);
3. copies the worker's files (session keys, event journal, sent ids, decrypt cache) and the key files;
4. starts the worker shards again, whatever happened; they log in without a QR.
The worker is down for as long as step 2 and 3 take (the figure is printed). A stopped stack is copied as
it is. ``backup.json`` lists every file with its size and sha256; ``restore`` checks them all before it
touches anything, refuses while the stack runs, and moves what it replaces aside instead of deleting it.

Not copied: ``run/`` (sockets and pids), ``emulator/`` (the sandbox's simulated WhatsApp network is not
the gateway's data) and ``.lock`` (the data dir's lock, ``datalock.py``: ``restore`` holds it while it works,
so it refuses under a running stack even one with a run dir of its own, and no stack starts mid-restore).

Media: the data dir's media store (``media/``, WA_MEDIA_DIR's default) is copied after the database, blob by
blob, without its ``tmp/`` (writes in progress). Every blob a row of the copied database references was committed
before that row, so it is in the copy; a blob committed after the database was copied is an orphan there, which
the retention sweep deletes. A WA_MEDIA_DIR outside the data dir is not in the backup, nor is a PostgreSQL or S3
media store (``pg_dump``; the bucket's versioning or replication): see docs/media-storage.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sqlite3
import time
import xmlrpc.client
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from service import __version__
from service.config_error import write_private
from service.programs import datalock, running
from service.settings import REPO_ROOT

MANIFEST = "backup.json"
DATABASE = "gateway.db"
SKIP = {"run", "emulator", datalock.LOCK_FILE}  # top-level names never copied (see the docstring)
SQLITE_SIDECARS = (DATABASE, DATABASE + "-wal", DATABASE + "-shm", DATABASE + "-journal")
MEDIA, MEDIA_TEMP = "media", "tmp"  # the media store's default place (WA_MEDIA_DIR) and its temp files


class BackupError(Exception):
    """What keeps a backup or restore from being made; nothing was changed."""


def _supervisor(socket_path: Path) -> xmlrpc.client.ServerProxy | None:
    """supervisord's XML-RPC on its private socket, or None when no stack runs there."""
    if not socket_path.exists():
        return None
    proxy = running.rpc(socket_path)
    try:
        proxy.supervisor.getState()
    except (OSError, xmlrpc.client.Fault):
        return None
    return proxy


def _start(proxy: xmlrpc.client.ServerProxy, name: str) -> None:
    try:
        proxy.supervisor.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_STARTED" not in fault.faultString:
            raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _private_tree(root: Path) -> None:
    os.chmod(root, 0o700)
    for path in root.rglob("*"):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def _ignore(media: Path, directory: str, names: list[str]) -> set[str]:
    """What a copy leaves out: ``*.tmp`` files anywhere, and the media store's ``tmp/`` (blobs being written:
    a finished one is renamed out of it, and a crash's leftovers are swept at start)."""
    left_out = {name for name in names if name.endswith(".tmp")}
    if Path(directory) == media and MEDIA_TEMP in names:
        left_out.add(MEDIA_TEMP)
    return left_out


def _copy_files(data_dir: Path, dest: Path) -> None:
    """Everything but the database (copied apart) and ``SKIP``; file by file, each streamed (``copy2``)."""
    ignore = functools.partial(_ignore, data_dir / MEDIA)
    for entry in sorted(data_dir.iterdir()):
        if entry.name in SKIP or entry.name in SQLITE_SIDECARS:
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, symlinks=False, ignore=ignore)
        elif entry.is_file():
            shutil.copy2(entry, dest / entry.name)


def _copy_database(data_dir: Path, dest: Path) -> None:
    source_path = data_dir / DATABASE
    if not source_path.exists():
        return
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest / DATABASE)
    try:
        source.backup(target)
        ok = target.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copied database fails its integrity check: {ok}")
    finally:
        target.close()
        source.close()


def _manifest(dest: Path, worker_paused_s: float | None) -> dict[str, Any]:
    files = {str(p.relative_to(dest)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(dest.rglob("*")) if p.is_file() and p.name != MANIFEST}
    return {"format": 1, "version": __version__, "created_at": datetime.now(UTC).isoformat(),
            "worker_paused_seconds": worker_paused_s, "files": files}


def backup(data_dir: Path, supervisor_socket: Path, dest: Path) -> dict[str, Any]:
    """Copy ``data_dir`` into the new directory ``dest`` (see the module docstring); the manifest."""
    if not data_dir.is_dir():
        raise BackupError(f"no data dir at {data_dir}")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} exists and is not empty: back up into a new directory")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    proxy = _supervisor(supervisor_socket)
    paused = None
    try:
        if proxy is not None:
            # Only the shards that run now: one the operator stopped stays stopped.
            # XML-RPC answers are typed as any marshallable value; supervisord's is a list of process dicts.
            processes = cast(list[dict[str, Any]], proxy.supervisor.getAllProcessInfo())
            running = [f"{p['group']}:{p['name']}" for p in processes
                       if p["group"] == "worker" and p["statename"] in ("RUNNING", "STARTING", "BACKOFF")]
            started = time.monotonic()
            try:
                for name in running:
                    proxy.supervisor.stopProcess(name, True)
                _copy_database(data_dir, dest)
                _copy_files(data_dir, dest)
            finally:
                for name in running:
                    _start(proxy, name)
                paused = round(time.monotonic() - started, 3)
        else:
            _copy_database(data_dir, dest)
            _copy_files(data_dir, dest)
        _private_tree(dest)
        manifest = _manifest(dest, paused)
        write_private(dest / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return manifest
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # a half backup must not look like one
        raise


def verify(src: Path) -> dict[str, Any]:
    """The manifest of a complete, unaltered backup; BackupError naming the first file that differs."""
    try:
        manifest: dict[str, Any] = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a wa-gateway backup ({MANIFEST}: {exc})") from None
    present = {str(p.relative_to(src)) for p in src.rglob("*") if p.is_file() and p.name != MANIFEST}
    listed = set(manifest.get("files", {}))
    if present != listed:
        raise BackupError(f"the backup's files differ from its manifest: {sorted(present ^ listed)[:5]}")
    for name, info in manifest["files"].items():
        if _sha256(src / name) != info["sha256"]:
            raise BackupError(f"{name} in the backup is altered or damaged (sha256 mismatch)")
    return manifest


def restore(data_dir: Path, supervisor_socket: Path, src: Path) -> Path | None:
    """Put the backup ``src`` in place as ``data_dir``'s content; what it replaced is moved to a sibling
    directory, whose path is returned (None when there was nothing to replace)."""
    verify(src)
    stop_first = "stop it first (SIGTERM to `wa-gateway run`, or docker stop)"
    if _supervisor(supervisor_socket) is not None:
        raise BackupError(f"the stack is running: {stop_first}")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        lock = datalock.acquire(data_dir, command="restore")
    except datalock.DataDirLocked as exc:
        raise BackupError(f"the stack is running ({datalock.describe(exc.holder)}): {stop_first}") from None
    with lock:
        return _put_in_place(data_dir, src)


def aside_dir(data_dir: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Where restore moves what it replaces: beside the data dir (``<data dir>.replaced-<time>``), except for a
    data dir inside the checkout (``make run``'s ``data/``, ``make sandbox``'s ``sandbox_data/``), whose old
    data goes beside the checkout instead (``<checkout>-replaced/<name>.replaced-<time>``): session keys left
    in a repository are one ``git add`` away from being published, and they clutter ``git status``."""
    name = f"{data_dir.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    if data_dir.resolve().is_relative_to(repo_root.resolve()):
        outside = repo_root.resolve().parent / f"{repo_root.resolve().name}-replaced"
        outside.mkdir(mode=0o700, exist_ok=True)
        return outside / name
    return data_dir.parent / name


def _put_in_place(data_dir: Path, src: Path) -> Path | None:
    current = [e for e in data_dir.iterdir() if e.name not in SKIP]
    aside = None
    if current:
        aside = aside_dir(data_dir)
        aside.mkdir(mode=0o700)
        for entry in current:
            shutil.move(entry, aside / entry.name)  # a rename, or a copy when the checkout's parent is another disk
    for entry in sorted(src.iterdir()):
        if entry.name == MANIFEST or entry.name in SKIP:
            continue
        if entry.is_dir():
            shutil.copytree(entry, data_dir / entry.name)
        else:
            shutil.copy2(entry, data_dir / entry.name)
    for entry in data_dir.iterdir():
        if entry.name not in SKIP:
            if entry.is_dir():
                _private_tree(entry)
            else:
                os.chmod(entry, 0o600)
    return aside
