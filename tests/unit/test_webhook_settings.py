"""The webhook settings and the generated signing secret (no server)."""

from __future__ import annotations

import os
import stat

import pytest

from service.programs import launcher
from service.settings import Settings, SettingsError
from service.store import event_log
from service.webhooks import secret as webhook_secret
from tests.helpers.webhook_harness import SECRET

# --- settings and the secret ------------------------------------------------------------------------

def _settings(**env):
    return Settings.from_env({"WA_DATA_DIR": "/tmp/wa-unused", **env})


def test_webhook_settings_defaults():
    s = _settings()
    assert s.webhook_urls == () and s.webhook_events == event_log.TYPES and s.webhook_secrets == ()
    assert (s.webhook_timeout, s.webhook_max_attempts, s.webhook_max_age) == (10.0, 12, 86400.0)
    s = _settings(WA_WEBHOOK_URL=" https://a.example/hook , http://127.0.0.1:9/x,https://a.example/hook",
                  WA_WEBHOOK_EVENTS="message.received", WA_WEBHOOK_SECRET=SECRET)
    assert s.webhook_urls == ("https://a.example/hook", "http://127.0.0.1:9/x")
    assert s.webhook_events == ("message.received",) and s.webhook_secrets == (SECRET,)


@pytest.mark.parametrize("env, needle", [
    ({"WA_WEBHOOK_URL": "ftp://example.com/x"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "https://"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "example.com/hook"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "https://ex ample.com/"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "https://example.com:99999/"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_EVENTS": "message.received,message.deleted"}, "WA_WEBHOOK_EVENTS"),
    ({"WA_WEBHOOK_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, "whsec_"),
    ({"WA_WEBHOOK_SECRET": "whsec_not*base64!"}, "base64"),
    ({"WA_WEBHOOK_SECRET": SECRET[:20] + "*" + SECRET[20:]}, "base64"),
    ({"WA_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "24 to 64 bytes"),
    ({"WA_WEBHOOK_TIMEOUT": "0"}, "WA_WEBHOOK_TIMEOUT"),
    ({"WA_WEBHOOK_MAX_ATTEMPTS": "0"}, "WA_WEBHOOK_MAX_ATTEMPTS"),
    ({"WA_WEBHOOK_MAX_AGE": "soon"}, "WA_WEBHOOK_MAX_AGE"),
    ({"WA_WEBHOOK_RETRY_BASE": "-1"}, "WA_WEBHOOK_RETRY_BASE"),
])
def test_bad_webhook_settings_are_refused_without_echoing_secrets(env, needle):
    with pytest.raises(SettingsError) as info:
        _settings(**env)
    assert needle in str(info.value)
    if "WA_WEBHOOK_SECRET" in env:
        assert env["WA_WEBHOOK_SECRET"].removeprefix("whsec_") not in str(info.value)


def test_the_generated_secret_is_private_stable_and_printed_by_the_launcher(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    first = webhook_secret.load_or_create(data)
    assert first.created and first.first.startswith("whsec_")
    assert len(webhook_secret.key_bytes(first.first)) == 32
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600 and stat.S_IMODE(os.stat(data).st_mode) == 0o700
    again = webhook_secret.load_or_create(data)
    assert not again.created and again.first == first.first
    assert webhook_secret.generate() != first.first  # random, never a default
    monkeypatch.setenv("WA_DATA_DIR", str(data))
    monkeypatch.delenv("WA_WEBHOOK_SECRET", raising=False)
    assert launcher.main(["webhook-secret"]) == 0
    assert capsys.readouterr().out.strip() == first.first
    monkeypatch.setenv("WA_WEBHOOK_SECRET", SECRET)
    assert launcher.main(["webhook-secret"]) == 0
    assert capsys.readouterr().out.strip() == SECRET
