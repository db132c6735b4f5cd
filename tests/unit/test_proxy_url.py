"""service/proxy_url.py and WA_PROXY_URL: the gateway accepts and redacts proxy URLs as the worker does (the
vectors are shared with node_worker/test/proxy.test.js), and never repeats a password in an error."""

from __future__ import annotations

import json

import pytest

from service import proxy_url
from service.settings import Settings, SettingsError
from tests.helpers.stack import REPO

VECTORS = json.loads((REPO / "tests" / "fixtures" / "proxy_urls.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["url"])
def test_valid_urls_parse_and_redact(vector):
    parsed = proxy_url.parse(vector["url"])
    assert (parsed.scheme, parsed.host, parsed.port, parsed.redacted) == (
        vector["scheme"], vector["host"], vector["port"], vector["redacted"])
    assert "s3cret" not in repr(parsed) and "s3cret" not in parsed.redacted
    assert proxy_url.redact(vector["url"]) == vector["redacted"]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["url"] or "(empty)")
def test_invalid_urls_refused_without_the_password(vector):
    with pytest.raises(proxy_url.ProxyUrlError) as err:
        proxy_url.parse(vector["url"])
    assert "s3cret" not in str(err.value)


def test_wa_proxy_url_setting(tmp_path):
    env = {"WA_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).proxy is None
    settings = Settings.from_env({**env, "WA_PROXY_URL": "socks5://u:s3cret@127.0.0.1:1080"})
    assert settings.proxy is not None and settings.proxy.redacted == "socks5://***@127.0.0.1:1080"
    assert "s3cret" not in repr(settings)
    for bad in ("https://u:s3cret@proxy:443", "socks5://u:s3cret@proxy", "u:s3cret@proxy:3128"):
        with pytest.raises(SettingsError) as err:
            Settings.from_env({**env, "WA_PROXY_URL": bad})
        assert str(err.value).startswith("WA_PROXY_URL ") and "s3cret" not in str(err.value)
