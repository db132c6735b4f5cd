"""Small file systems for the full-disk tests: a tmpfs or an ext4 image on a loop device, mounted by the test
on a directory of its own and always unmounted afterwards (also when the test fails), and ``fill`` to take
every byte left, as a disk that fills up does. Mounting needs root: without it the tests skip and say so."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

KINDS = ("tmpfs", "ext4")


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def mounted(directory: Path, size_mb: int, kind: str = "tmpfs") -> Iterator[Path]:
    """``directory`` (created) with a fresh file system of ``size_mb`` MiB on it for the block's duration."""
    directory.mkdir(parents=True, exist_ok=True)
    image = directory.parent / f".{directory.name}.img"
    if kind == "tmpfs":
        done = _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(directory))
    else:
        with open(image, "wb") as fh:
            fh.truncate(size_mb * 2**20)
        made = _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
        if made.returncode != 0:
            image.unlink(missing_ok=True)
            pytest.skip(f"cannot make an ext4 image: {made.stderr.strip() or made.stdout.strip()}")
        done = _run("mount", "-o", "loop", str(image), str(directory))
    if done.returncode != 0:
        image.unlink(missing_ok=True)
        pytest.skip(f"cannot mount a {kind} here ({done.stderr.strip()}): the full-disk tests need root")
    try:
        os.chmod(directory, 0o700)
        yield directory
    finally:
        unmount(directory)
        image.unlink(missing_ok=True)


def unmount(directory: Path) -> None:
    """Unmount, waiting a little for processes that still hold files there to go; lazily as a last resort, so
    that a failed test never leaves a mount behind."""
    for _ in range(50):
        if _run("umount", str(directory)).returncode == 0:
            return
        time.sleep(0.1)
    _run("umount", "-l", str(directory))


def fill(directory: Path, name: str = "filler") -> Path:
    """A file that takes every byte ``directory``'s file system will still give (big writes, then smaller
    ones down to a byte, until each is refused with ENOSPC). Removing it gives the space back."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\x5a" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
    return path


def free(path: Path) -> None:
    """Space is back: the filler goes."""
    path.unlink(missing_ok=True)
