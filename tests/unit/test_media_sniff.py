"""The media type comes from the bytes (service/media/sniff.py): a lying mimetype, a type the kind does not
take, and a voice note that is not OGG/Opus are 400s; what a kind takes is WhatsApp's (service/media/kinds.py)."""

from __future__ import annotations

import pytest

from service.media.errors import MediaTypeMismatch, MediaTypeNotAllowed
from service.media.kinds import normalize_mimetype
from service.media.sniff import check, detect, is_opus
from tests.helpers import media_samples as samples


@pytest.mark.parametrize(("kind", "data", "declared", "expected"), [
    ("image", samples.png(), None, "image/png"),
    ("image", samples.png(), "image/png", "image/png"),
    ("image", samples.jpeg(), "image/jpg", "image/jpeg"),  # a common alias
    ("image", samples.jpeg(), "IMAGE/JPEG; charset=binary", "image/jpeg"),
    ("video", samples.mp4(), "video/mp4", "video/mp4"),
    ("sticker", samples.webp(), "image/webp", "image/webp"),
    ("audio", samples.opus(), "audio/ogg; codecs=opus", "audio/ogg; codecs=opus"),
    ("audio", samples.ogg_vorbis(), None, "audio/ogg"),
    ("document", samples.pdf(), "application/pdf", "application/pdf"),
    ("document", samples.png(), None, "image/png"),  # any file may be a document
    ("document", b"name,phone\nana,1\n", "text/csv", "text/csv"),  # no magic: the declared type
    ("document", b"plain words", None, "application/octet-stream"),
])
def test_what_is_accepted_and_the_mimetype_it_is_sent_with(kind, data, declared, expected):
    assert check(data, kind, declared) == expected


@pytest.mark.parametrize(("kind", "data", "declared"), [
    ("image", samples.pdf(), "image/png"),  # a PDF declared as a PNG
    ("image", samples.png(), "image/jpeg"),  # a PNG declared as a JPEG
    ("video", samples.png(), "video/mp4"),
    ("audio", samples.mp4(), "audio/mpeg"),
    ("document", samples.png(), "application/pdf"),  # a document's declaration must hold too
    ("document", b"just some words", "application/pdf"),  # a type with magic, and no magic in the bytes
    ("document", b"x", "not a type\r\nX-Injected: 1"),
])
def test_a_declared_mimetype_the_bytes_are_not_is_400_media_type_mismatch(kind, data, declared):
    with pytest.raises(MediaTypeMismatch) as raised:
        check(data, kind, declared)
    assert (raised.value.status, raised.value.code) == (400, "media_type_mismatch")


@pytest.mark.parametrize(("kind", "data"), [
    ("image", samples.pdf()),
    ("image", samples.webp()),  # a WebP goes as a sticker
    ("image", b"GIF89a" + b"\x00" * 20),
    ("image", b"not an image at all"),
    ("sticker", samples.png()),
    ("video", samples.opus()),
    ("audio", samples.png()),
])
def test_bytes_a_kind_does_not_take_are_400_media_type_not_allowed(kind, data):
    with pytest.raises(MediaTypeNotAllowed) as raised:
        check(data, kind)
    assert (raised.value.status, raised.value.code) == (400, "media_type_not_allowed")


def test_a_voice_note_must_be_ogg_opus():
    assert check(samples.opus(), "audio", None, ptt=True) == "audio/ogg; codecs=opus"
    assert check(samples.opus(), "audio", "audio/ogg", ptt=True) == "audio/ogg; codecs=opus"
    for kind, data in [("audio", samples.ogg_vorbis()), ("audio", samples.mp4()), ("audio", b"OggS"),
                       ("image", samples.opus())]:
        with pytest.raises(MediaTypeNotAllowed, match="OGG/Opus"):
            check(data, kind, None, ptt=True)


def test_opus_is_found_in_the_first_ogg_page_only():
    assert is_opus(samples.opus())
    assert not is_opus(samples.ogg_vorbis())
    assert not is_opus(b"RIFF" + samples.opus()[4:])
    assert not is_opus(samples.opus()[:30])  # cut before the OpusHead ends


def test_detection_and_normalisation():
    assert detect(b"") is None and detect(b"hello") is None
    assert normalize_mimetype(" Audio/MP3 ") == "audio/mpeg"
    assert normalize_mimetype("audio/ogg; codecs=opus") == "audio/ogg"
