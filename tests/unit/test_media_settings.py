"""The media intake's settings (WA_MEDIA_*): documented defaults, read once into ``Settings.media``, bad values
refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.media.kinds import DEFAULT_LIMITS, KINDS, MIB
from service.settings import Settings, SettingsError


def test_the_defaults(tmp_path):
    media = Settings.from_env({"WA_DATA_DIR": str(tmp_path)}).media
    assert media.directory == tmp_path.resolve() / "media"
    assert media.limits == {"image": 16 * MIB, "video": 16 * MIB, "audio": 16 * MIB, "document": 100 * MIB,
                            "sticker": 1 * MIB}
    assert media.limits == DEFAULT_LIMITS and set(media.limits) == set(KINDS)
    assert (media.fetch_timeout, media.max_redirects, media.allow_private) == (30.0, 3, ())


def test_each_setting_is_read(tmp_path):
    media = Settings.from_env({
        "WA_DATA_DIR": str(tmp_path), "WA_MEDIA_DIR": str(tmp_path / "elsewhere"),
        "WA_MEDIA_MAX_IMAGE_BYTES": "1", "WA_MEDIA_MAX_VIDEO_BYTES": "2", "WA_MEDIA_MAX_AUDIO_BYTES": "3",
        "WA_MEDIA_MAX_DOCUMENT_BYTES": "4", "WA_MEDIA_MAX_STICKER_BYTES": "5", "WA_MEDIA_FETCH_TIMEOUT": "2.5",
        "WA_MEDIA_FETCH_MAX_REDIRECTS": "0", "WA_MEDIA_FETCH_ALLOW_PRIVATE": "10.0.0.0/8, Files.Internal.",
    }).media
    assert media.directory == Path(tmp_path / "elsewhere").resolve()
    assert [media.limit(k) for k in KINDS] == [1, 2, 3, 4, 5]
    assert (media.fetch_timeout, media.max_redirects) == (2.5, 0)
    assert media.allow_private == ("10.0.0.0/8", "files.internal")


@pytest.mark.parametrize(("name", "value"), [
    ("WA_MEDIA_MAX_IMAGE_BYTES", "0"), ("WA_MEDIA_MAX_DOCUMENT_BYTES", "1e9"), ("WA_MEDIA_FETCH_TIMEOUT", "0"),
    ("WA_MEDIA_FETCH_MAX_REDIRECTS", "11"), ("WA_MEDIA_FETCH_MAX_REDIRECTS", "-1"),
    ("WA_MEDIA_FETCH_ALLOW_PRIVATE", "10.0.0.0/8,not a host!"),
])
def test_a_bad_value_stops_the_start_naming_the_setting(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"WA_DATA_DIR": str(tmp_path), name: value})
