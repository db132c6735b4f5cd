"""The WhatsApp connection through a proxy (issue 23): a sandbox stack whose WA_PROXY_URL is a real HTTP CONNECT
proxy that the test runs (with credentials), accounts with their own (a SOCKS5 proxy with credentials, or
``direct``), each proxy counting the tunnels it carried to the emulator. Also: the proxy is shown redacted, a bad
one is a 400, a wrong password or a refusing proxy keeps the account from connecting, and no log line of the
stack carries a proxy password. One stack for the module: the suite stays fast."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import accounts
from tests.helpers.connect_proxy import ConnectProxy
from tests.helpers.sandbox import CONTACT, pair
from tests.helpers.socks5_proxy import Socks5Proxy
from tests.helpers.stack import BIN, REPO, Stack, free_port, http, wait_for

pytestmark = pytest.mark.system

CONNECT_PASSWORD = "c0nnect-Pw-7f3a"
SOCKS_PASSWORD = "s0cks-Pw-91bd"
WRONG_PASSWORD = "wr0ng-Pw-55e1"
PASSWORDS = (CONNECT_PASSWORD, SOCKS_PASSWORD, WRONG_PASSWORD)


@pytest.fixture(scope="module")
def proxies():
    with ConnectProxy("gw", CONNECT_PASSWORD) as connect, Socks5Proxy("acct", SOCKS_PASSWORD) as socks, \
            ConnectProxy("gw", CONNECT_PASSWORD, refuse=True) as refusing:
        yield {"connect": connect, "socks": socks, "refusing": refusing}


@pytest.fixture(scope="module")
def stack(proxies):
    # debug logs everywhere, Baileys' too: not even a debug line may carry a proxy password
    with Stack({"WA_PROXY_URL": proxies["connect"].url(), "WA_LOG_LEVEL": "debug",
                "WA_BAILEYS_LOG_LEVEL": "debug"}, sandbox=True) as running:
        yield running


def patch(stack, name: str, body) -> object:
    return http("PATCH", f"{stack.base}/accounts/{name}", body, headers=stack.auth(None))


def send_and_deliver(stack, name: str, text: str) -> None:
    res = stack.post(accounts.base(name) + "/send", {"phone_number": CONTACT, "message": text})
    assert res.status == 200, res.raw
    wait_for(lambda: any(m["text"] == text for m in accounts.inbox(stack, CONTACT)), 15, "the message at the contact")


def test_wa_proxy_url_carries_pairing_and_sending(stack, proxies):
    connect = proxies["connect"]
    assert connect.carried(stack.emulator_port) == 0
    pair(stack)
    assert connect.carried(stack.emulator_port) >= 1, connect.connections
    send_and_deliver(stack, "default", "through the CONNECT proxy")
    assert proxies["socks"].carried(stack.emulator_port) == 0
    shown = stack.get("/accounts/default").json()["proxy"]
    assert shown == {"url": f"http://***@127.0.0.1:{connect.port}", "source": "global"}


def test_an_account_with_its_own_socks5_proxy(stack, proxies):
    socks, connect = proxies["socks"], proxies["connect"]
    res = stack.post("/accounts", {"name": "via-socks", "proxy_url": socks.url()})
    assert res.status == 201, res.raw
    assert res.json()["proxy"] == {"url": f"socks5://***@127.0.0.1:{socks.port}", "source": "account"}
    before = connect.carried(stack.emulator_port)
    accounts.link(stack, "via-socks", "+15550003333")
    assert socks.carried(stack.emulator_port) >= 1, socks.connections
    assert socks.auth_failures == 0
    send_and_deliver(stack, "via-socks", "through the SOCKS5 proxy")
    assert connect.carried(stack.emulator_port) == before, "the account's own proxy, not WA_PROXY_URL"


def test_direct_overrides_wa_proxy_url_and_a_patch_applies_at_the_next_connection(stack, proxies):
    socks, connect = proxies["socks"], proxies["connect"]
    res = stack.post("/accounts", {"name": "plain", "proxy_url": "direct"})
    assert res.status == 201, res.raw
    assert res.json()["proxy"] == {"url": None, "source": "account"}
    before = (connect.carried(stack.emulator_port), socks.carried(stack.emulator_port))
    accounts.link(stack, "plain", "+15550004444")
    assert (connect.carried(stack.emulator_port), socks.carried(stack.emulator_port)) == before

    # A second account, created direct, moved to the SOCKS5 proxy before its first connection.
    assert stack.post("/accounts", {"name": "moved", "proxy_url": "direct"}).status == 201
    res = patch(stack, "moved", {"proxy_url": socks.url()})
    assert res.status == 200, res.raw
    assert res.json()["proxy"] == {"url": f"socks5://***@127.0.0.1:{socks.port}", "source": "account"}
    registry = json.loads((stack.data_dir / "accounts.json").read_text())["accounts"]
    assert registry["moved"]["proxy"] == socks.url() and registry["plain"]["proxy"] == "direct"
    assert "proxy" not in registry["default"]
    before_socks = socks.carried(stack.emulator_port)
    accounts.link(stack, "moved", "+15550005555")
    assert socks.carried(stack.emulator_port) > before_socks
    # null: back to WA_PROXY_URL
    res = patch(stack, "moved", {"proxy_url": None})
    assert res.status == 200 and res.json()["proxy"] == {"url": f"http://***@127.0.0.1:{connect.port}",
                                                         "source": "global"}, res.raw
    assert "proxy" not in json.loads((stack.data_dir / "accounts.json").read_text())["accounts"]["moved"]


def test_a_proxy_that_is_down_is_named_as_the_cause(stack):
    """Nothing listens at the proxy's address: ECONNREFUSED, which without a proxy would read "refused" (by
    WhatsApp); through one it is the proxy's, the only address this host connects to."""
    res = stack.post("/accounts", {"name": "proxy-down", "proxy_url": f"http://127.0.0.1:{free_port()}"})
    assert res.status == 201, res.raw
    assert stack.post(accounts.base("proxy-down") + "/connect").status == 200
    status = wait_for(lambda: (s := accounts.state(stack, "proxy-down"))["state"] == "whatsapp_unreachable" and s,
                      20, "whatsapp_unreachable")
    assert status["unreachable"]["cause"] == "proxy" and "ECONNREFUSED" in status["unreachable"]["detail"], status


@pytest.mark.parametrize("which", ["wrong-password", "refusing"])
def test_a_proxy_that_does_not_let_the_account_through(stack, proxies, which):
    socks, refusing = proxies["socks"], proxies["refusing"]
    url = socks.url("acct", WRONG_PASSWORD) if which == "wrong-password" else refusing.url()
    failures_before = socks.auth_failures if which == "wrong-password" else refusing.refused
    res = stack.post("/accounts", {"name": which, "proxy_url": url})
    assert res.status == 201, res.raw
    res = stack.post(accounts.base(which) + "/connect")
    assert res.status == 200, res.raw
    status = wait_for(lambda: (s := accounts.state(stack, which))["state"] == "whatsapp_unreachable" and s, 20,
                      "whatsapp_unreachable")
    assert status["unreachable"]["cause"] == "proxy", status  # named as the proxy's, not as WhatsApp's
    assert "proxy" in status["last_error"] and "://" not in status["last_error"], status  # no URL, no password
    after = socks.auth_failures if which == "wrong-password" else refusing.refused
    assert after > failures_before
    assert accounts.state(stack, which)["state"] not in ("qr", "connected")


def test_bad_proxy_urls_are_400_and_patch_is_for_the_admin_key(stack):
    for body in ({"name": "bad-proxy", "proxy_url": f"ftp://u:{WRONG_PASSWORD}@127.0.0.1:21"},
                 {"name": "bad-proxy", "proxy_url": f"socks5://u:{WRONG_PASSWORD}@127.0.0.1"},
                 {"name": "bad-proxy", "proxy_url": 1080}):
        res = stack.post("/accounts", body)
        assert res.status == 400 and accounts.error_code(res) == "invalid_proxy_url", res.raw
        assert WRONG_PASSWORD not in res.raw.decode()
    assert stack.get("/accounts/bad-proxy").status == 404
    res = patch(stack, "default", {"proxy_url": "http://127.0.0.1"})
    assert res.status == 400 and accounts.error_code(res) == "invalid_proxy_url", res.raw
    res = patch(stack, "default", {"proxy": "direct"})
    assert res.status == 400 and accounts.error_code(res) == "unknown_field", res.raw
    res = patch(stack, "default", {})
    assert res.status == 400, res.raw
    key = stack.post("/accounts/default/keys", {}).json()["key"]
    res = http("PATCH", f"{stack.base}/accounts/default", {"proxy_url": "direct"}, headers={"X-API-Key": key})
    assert res.status == 403, res.raw
    listed = {a["name"]: a["proxy"] for a in stack.get("/accounts").json()["accounts"]}
    assert listed["default"]["source"] == "global"


def test_the_cli_sets_and_shows_an_account_proxy_without_its_password(stack, proxies):
    def cli(*args: str) -> dict:
        done = subprocess.run([str(BIN / "wa-gateway"), "accounts", *args, "--json"], env=stack.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done
        assert SOCKS_PASSWORD not in done.stdout + done.stderr
        return json.loads(done.stdout)

    socks = proxies["socks"]
    created = cli("create", "by-cli", "--proxy-url", socks.url())
    assert created["proxy"] == {"url": f"socks5://***@127.0.0.1:{socks.port}", "source": "account"}
    assert cli("proxy", "by-cli", "--proxy-url", "direct")["proxy"] == {"url": None, "source": "account"}
    assert cli("proxy", "by-cli")["proxy"]["source"] == "global"


def test_no_log_line_carries_a_proxy_password(stack):
    """Last in the module: every test before it has logged (debug level), connections and failures included."""
    logs = stack.logs()
    files = [p for d in (stack.tmp, stack.run_dir, stack.data_dir) for p in d.rglob("*.log") if p.is_file()]
    for text in [logs, *(p.read_text(errors="replace") for p in files)]:
        for password in PASSWORDS:
            assert password not in text
    assert "127.0.0.1" in logs and '"proxy"' in logs  # the redacted form is logged: the grep looked at real lines


def test_a_bad_wa_proxy_url_stops_the_start_with_a_clear_error(tmp_path):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "WA_DATA_DIR": str(tmp_path / "data"), "WA_LOG_FORMAT": "json",
           "WA_PROXY_URL": f"socks4://u:{WRONG_PASSWORD}@127.0.0.1:1080", "WA_API_KEY": "k" * 32}
    done = subprocess.run([str(BIN / "wa-gateway"), "run"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 78, done
    out = done.stdout + done.stderr
    assert "WA_PROXY_URL" in out and "socks4" in out and WRONG_PASSWORD not in out
