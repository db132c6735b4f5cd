"""Media given as base64 (service/media/intake.py): strict decoding, bounded before and while writing, and
nothing on disk when it fails."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from service.errors import ApiError
from service.media import intake as intake_module
from service.media.config import MediaSettings
from service.media.intake import Intake, MediaSpec
from service.media.store import FileStore
from tests.helpers import media_samples as samples


def make_intake(tmp_path: Path, **settings) -> Intake:
    config = MediaSettings(directory=tmp_path / "media", **settings)
    return Intake(FileStore(config.directory), config)


def on_disk(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_base64_is_decoded_into_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(intake_module, "B64_CHUNK", 8)  # many chunks: the decoding is incremental
    data = samples.png(40, 40)
    stored = await make_intake(tmp_path).from_base64(base64.b64encode(data).decode(),
                                                     MediaSpec("image", filename="../../etc/a\nb.png"))
    assert stored.path.read_bytes() == data and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.mimetype, stored.filename, stored.size) == ("image/png", "ab.png", len(data))
    assert on_disk(tmp_path / "media") == [stored.path]


@pytest.mark.parametrize("text", [
    "iVBORw0KGgo*AAAA",  # a character outside the alphabet
    "iVBORw0KGgoAA===",  # three padding characters
    "iVBORw0KGgoAAA",  # not a multiple of 4
    "iVBO Rw0KGgoAAAA",  # whitespace
    "iVBORw0K\nGgoAAAA",
    "iVBORw==0KGgoAAA",  # padding in the middle
    "iVBORw0KGgo-AAA_",  # the URL-safe alphabet
    "iVBORw0KGgoAAAé",
    "=AAA",
])
async def test_broken_base64_is_400_invalid_media_and_leaves_nothing(tmp_path, monkeypatch, text):
    monkeypatch.setattr(intake_module, "B64_CHUNK", 4)
    with pytest.raises(ApiError) as raised:
        await make_intake(tmp_path).from_base64(text, MediaSpec("document"))
    assert (raised.value.status, raised.value.code) == (400, "invalid_media")
    assert on_disk(tmp_path / "media") == []


async def test_an_empty_payload_is_not_media(tmp_path):
    with pytest.raises(ApiError) as raised:
        await make_intake(tmp_path).from_base64("", MediaSpec("image"))
    assert raised.value.code == "media_type_not_allowed"
    assert on_disk(tmp_path / "media") == []


@pytest.mark.parametrize("size", [1001, 1002, 1003, 5000])
async def test_oversize_base64_is_413_before_anything_is_written(tmp_path, monkeypatch, size):
    intake = make_intake(tmp_path, limits={"document": 1000})
    monkeypatch.setattr(intake.store, "writer", None)  # nothing may even be opened
    with pytest.raises(ApiError) as raised:
        await intake.from_base64(base64.b64encode(b"x" * size).decode(), MediaSpec("document"))
    assert (raised.value.status, raised.value.code) == (413, "media_too_large")
    assert on_disk(tmp_path / "media") == []


@pytest.mark.parametrize("size", [998, 999, 1000])
async def test_base64_up_to_the_limit_is_stored(tmp_path, size):
    stored = await make_intake(tmp_path, limits={"document": 1000}).from_base64(
        base64.b64encode(b"y" * size).decode(), MediaSpec("document"))
    assert stored.size == size and stored.mimetype == "application/octet-stream"


async def test_a_lying_mimetype_is_400_and_leaves_nothing(tmp_path):
    with pytest.raises(ApiError) as raised:
        await make_intake(tmp_path).from_base64(base64.b64encode(samples.pdf()).decode(),
                                                MediaSpec("image", mimetype="image/jpeg"))
    assert (raised.value.status, raised.value.code) == (400, "media_type_mismatch")
    assert on_disk(tmp_path / "media") == []


async def test_a_data_url_is_its_base64_and_declares_its_type(tmp_path):
    data = samples.png(3, 3)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    stored = await make_intake(tmp_path).from_base64(url, MediaSpec("image"))
    assert stored.path.read_bytes() == data and stored.mimetype == "image/png"
    for lying in ("data:image/jpeg;base64,", "DATA:image/jpeg;BASE64,"):
        with pytest.raises(ApiError) as raised:  # the type it declares is checked against the bytes
            await make_intake(tmp_path).from_base64(lying + base64.b64encode(data).decode(), MediaSpec("image"))
        assert raised.value.code == "media_type_mismatch"
    for broken in ("data:image/png," + base64.b64encode(data).decode(), "data:image/png;base64"):
        with pytest.raises(ApiError) as raised:  # not base64, or no data at all
            await make_intake(tmp_path).from_base64(broken, MediaSpec("image"))
        assert raised.value.code == "invalid_media"
    assert on_disk(tmp_path / "media") == [stored.path]
