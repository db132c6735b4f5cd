"""Webhooks safe for tenants (issue 21, item 1): an account webhook reaches only public addresses (resolved,
checked with ``ipaddress``, the checked address pinned for the connection, redirects not followed) unless the
operator allows more (WA_WEBHOOK_ALLOW_PRIVATE); a scoped key learns only delivered / not delivered; each
account webhook signs with its own secret, shown once and rotatable with an overlap.

In-process through the app's middlewares and routes, against real SQLite and real HTTP receivers on loopback
(verified with the ``standardwebhooks`` reference package). Names that resolve inside come from a resolver
seam (``FakeDNS``): the machine's DNS is never asked for them."""

from __future__ import annotations

import ipaddress
import time

import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from service.http.appkeys import ACCOUNTS, DATABASE, SETTINGS, WEBHOOKS
from service.http.middlewares import MIDDLEWARES, setup_security
from service.http.routes import setup_routes
from service.settings import Settings, SettingsError
from service.store import event_log
from service.store import webhooks as store
from service.webhooks.address import (
    AddressPolicy,
    forbidden,
    parse_allowlist,
    system_lookup,
)
from service.webhooks.secret import generate
from tests.helpers.account_webhooks import (
    AUTH,
    KEY,
    SALES,
    SUPPORT,
    Runtime,
    event,
    scoped_key,
)
from tests.helpers.webhook_harness import until

PUBLIC = "93.184.215.14"  # a global address; nothing here ever answers on it


class FakeDNS:
    """The resolver seam: names from ``table`` (a list of addresses, or a callable giving one per lookup),
    anything else as the system resolves it (numeric spellings such as 2130706433 need no DNS)."""

    def __init__(self, **table):
        self.table = {k.replace("_", "."): v for k, v in table.items()}
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host in self.table:
            found = self.table[host]
            return list(found() if callable(found) else found)
        return await system_lookup(host, port)


@pytest.fixture
async def api(h, aiohttp_client, tmp_path):
    async def build(*, allow_private=(), lookup=system_lookup, urls=()):
        settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_API_KEY": KEY,
                                      "WA_WEBHOOK_TIMEOUT": "2"})
        app = web.Application(middlewares=MIDDLEWARES)
        app[SETTINGS] = settings
        setup_security(app)
        app[DATABASE] = h.db
        app[ACCOUNTS] = Runtime(h.db)
        app[WEBHOOKS] = await h.service(urls, allow_private=allow_private, lookup=lookup)
        setup_routes(app)
        return await aiohttp_client(app)
    return build


# --- the address policy -----------------------------------------------------------------------------

REFUSED_ADDRESSES = [
    "127.0.0.1", "127.255.0.9", "0.0.0.0", "10.0.0.1", "172.16.5.5", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.127.255.254", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
    "198.18.0.1", "192.0.0.8", "::1", "::", "fe80::1", "fe80::1%1", "fd00::1", "fc00::5", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1", "fec0::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_internal_addresses_and_their_ipv6_forms_are_refused(address):
    assert forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC, "2606:4700:4700::1111", "64:ff9b::808:808",
                                     "2002:808:808::1"])
def test_public_addresses_pass(address):
    assert not forbidden(ipaddress.ip_address(address))


def test_the_allowlist_setting_takes_cidrs_addresses_and_host_names_and_refuses_junk():
    s = Settings.from_env({"WA_WEBHOOK_ALLOW_PRIVATE": " 10.1.0.0/16, 127.0.0.1 ,[::1], Receiver.Internal. "})
    assert s.webhook_allow_private == ("10.1.0.0/16", "127.0.0.1/32", "::1/128", "receiver.internal")
    assert Settings.from_env({}).webhook_allow_private == ()
    for bad in ("10.0.0.0/33", "http://x/", "a b", "127.1"):
        with pytest.raises(SettingsError, match="WA_WEBHOOK_ALLOW_PRIVATE"):
            Settings.from_env({"WA_WEBHOOK_ALLOW_PRIVATE": bad})
    assert parse_allowlist("") == ()


async def test_an_allowed_network_or_host_lets_internal_addresses_through_and_nothing_else():
    dns = FakeDNS(receiver_internal=["10.9.8.7"], other_internal=["10.9.8.7"])
    policy = AddressPolicy(parse_allowlist("127.0.0.1,receiver.internal"), dns)
    assert await policy.check_url("http://127.0.0.1:9/") == ["127.0.0.1"]
    assert await policy.check_url("http://[::ffff:127.0.0.1]:9/") == ["::ffff:7f00:1"]
    assert await policy.check_url("http://Receiver.Internal./x") == ["10.9.8.7"]
    for url in ("http://127.0.0.2/", "http://other.internal/", "http://10.9.8.7/"):
        with pytest.raises(OSError):
            await policy.check_url(url)


# --- creation -----------------------------------------------------------------------------------------

HOSTILE_URLS = [
    "http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook", "http://LOCALHOST.:{port}/hook",
    "http://2130706433:{port}/", "http://0x7f.1:{port}/", "http://0x7f000001:{port}/", "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/", "http://0:{port}/", "http://0.0.0.0:{port}/", "http://[::1]:{port}/",
    "http://[::]:{port}/", "http://[::ffff:127.0.0.1]:{port}/", "http://[::ffff:7f00:1]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/", "http://[2002:7f00:1::]:{port}/", "http://[fe80::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:a9fe:a9fe]/", "http://10.0.0.1/",
    "http://172.31.255.1/", "http://192.168.0.1/", "http://100.64.0.1/", "http://[fd00::1]/",
    "http://224.0.0.251/", "http://255.255.255.255/", "https://user:pw@127.0.0.1:{port}/",
    "http://inside.tenant.test/", "http://INSIDE.Tenant.Test./", "http://metadata.tenant.test/",
    "http://mixed.tenant.test/", "http://mapped.tenant.test/", "http://nat64.tenant.test/",
    "http://cgnat.tenant.test/", "http://nowhere.invalid/", "http://xn--mnchen-3ya.tenant.test/",
    "http://münchen.tenant.test/",
]
INSIDE = dict(inside_tenant_test=["10.0.0.7"], metadata_tenant_test=["169.254.169.254"],
              mixed_tenant_test=[PUBLIC, "127.0.0.1"], mapped_tenant_test=["::ffff:127.0.0.1"],
              nat64_tenant_test=["64:ff9b::a9fe:a9fe"], cgnat_tenant_test=["100.100.100.100"])
INSIDE["xn--mnchen-3ya.tenant.test"] = ["192.168.7.7"]


async def test_hostile_urls_are_refused_at_creation_with_a_scoped_key_and_change_nothing(h, api):
    rec = h.receiver()
    client = await api(lookup=FakeDNS(**INSIDE))
    sales = scoped_key(h, SALES)
    for template in HOSTILE_URLS:
        url = template.format(port=rec.port)
        for key in (sales, AUTH):  # a tenant's key and the admin's alike
            res = await client.post("/accounts/sales/webhooks", json={"url": url}, headers=key)
            err = (await res.json())["error"]
            assert res.status == 400 and err["code"] == "webhook_url_not_allowed", (url, res.status, err)
            assert "tenant" not in err["message"] and "127" not in err["message"]  # never echoed
    assert h.db.call(store.account_endpoints) == [] and set(h.services[-1].workers) == set()
    assert rec.snapshot() == []
    # A public name is taken (nothing is sent at creation).
    client = await api(lookup=FakeDNS(hooks_tenant_test=[PUBLIC]))
    res = await client.post("/accounts/sales/webhooks", json={"url": "https://hooks.tenant.test/h"}, headers=sales)
    assert res.status == 201, await res.text()


# --- delivery -----------------------------------------------------------------------------------------

async def test_a_name_public_at_creation_and_internal_at_delivery_is_refused_at_delivery(h, api):
    rec = h.receiver()
    answer = {"addresses": [PUBLIC]}
    dns = FakeDNS(hooks_tenant_test=lambda: answer["addresses"])
    client = await api(lookup=dns)
    sales = scoped_key(h, SALES)
    res = await client.post("/accounts/sales/webhooks", json={"url": f"http://hooks.tenant.test:{rec.port}/hook"},
                            headers=sales)
    assert res.status == 201
    ep = await res.json()
    answer["addresses"] = ["127.0.0.1"]  # DNS changed: the name now points inside
    ev = event(h, SALES)
    d = await until(lambda: (x := h.delivery(ev["id"], ep["id"], must=False)) and x["attempts"] >= 2 and x,
                    what="two refused attempts")
    assert d["status"] == "pending" and d["last_error"] == "address not allowed" and d["last_status_code"] is None
    assert rec.snapshot() == []
    # A scoped key's listing says no more than that the gateway refused it.
    res = await client.get("/accounts/sales/webhooks/deliveries", headers=sales)
    [listed] = (await res.json())["deliveries"]
    assert listed["last_error"] == "address not allowed" and listed["last_status_code"] is None
    # Its ping: not delivered, nothing else.
    res = await client.post("/accounts/sales/webhooks/test", json={}, headers=sales)
    [result] = (await res.json())["results"]
    assert result == {"endpoint": f"http://hooks.tenant.test:{rec.port}/hook", "id": ep["id"], "ok": False,
                      "webhook_id": result["webhook_id"]}
    assert rec.snapshot() == []


async def test_an_allowed_name_connects_to_the_address_the_seam_gave_keeping_its_host_header(h, api):
    rec = h.receiver()
    client = await api(allow_private=("127.0.0.1/32",), lookup=FakeDNS(hooks_tenant_test=["127.0.0.1"]))
    res = await client.post("/accounts/sales/webhooks", json={"url": f"http://hooks.tenant.test:{rec.port}/hook"},
                            headers=scoped_key(h, SALES))
    assert res.status == 201
    rec.trust((await res.json())["secret"])
    ev = event(h, SALES)
    await until(lambda: rec.delivered(), what="the delivery")
    [req] = rec.snapshot()
    assert req.id == ev["id"] and req.event is not None
    assert req.headers["host"] == f"hooks.tenant.test:{rec.port}"


async def test_the_checked_address_is_the_one_connected_to(h, api):
    """DNS rebinding: every other lookup of the name answers inside. A connection resolves once, checks and
    connects to that answer, so the receiver inside is never reached."""
    rec = h.receiver()
    flips = {"n": 0}

    def rebinding():
        flips["n"] += 1
        return [PUBLIC] if flips["n"] % 2 else ["127.0.0.1"]

    dns = FakeDNS(rebind_tenant_test=rebinding)
    client = await api(lookup=dns)
    res = await client.post("/accounts/sales/webhooks", json={"url": f"http://rebind.tenant.test:{rec.port}/hook"},
                            headers=scoped_key(h, SALES))
    assert res.status == 201
    ep = await res.json()
    ev = event(h, SALES)
    await until(lambda: (x := h.delivery(ev["id"], ep["id"], must=False)) and x["attempts"] >= 4, timeout=20,
                what="four attempts")
    assert rec.snapshot() == [] and dns.calls.count("rebind.tenant.test") >= 4


async def test_a_redirect_to_an_internal_address_is_not_followed(h, api):
    inside = h.receiver()
    redirector = h.receiver(lambda r: (307, {"Location": inside.url}))
    client = await api(allow_private=("127.0.0.1/32",))  # the redirector is allowed; what it points at is not asked
    sales = scoped_key(h, SALES)
    res = await client.post("/accounts/sales/webhooks", json={"url": redirector.url}, headers=sales)
    ep = await res.json()
    redirector.trust(ep["secret"])
    ev = event(h, SALES)
    d = await until(lambda: (x := h.delivery(ev["id"], ep["id"], must=False)) and x["attempts"] >= 2 and x,
                    what="two attempts")
    assert d["status"] == "pending" and d["last_status_code"] == 307  # a 3xx is a failed attempt
    res = await client.post("/accounts/sales/webhooks/test", json={}, headers=sales)
    assert [r["ok"] for r in (await res.json())["results"]] == [False]
    assert inside.snapshot() == [] and len(redirector.snapshot()) >= 3


async def test_the_ping_and_the_deliveries_tell_a_tenant_only_delivered_or_not(h, api):
    rec = h.receiver(lambda r: 500)
    client = await api(allow_private=("127.0.0.1/32",))
    sales = scoped_key(h, SALES)
    res = await client.post("/accounts/sales/webhooks", json={"url": rec.url}, headers=sales)
    ep = await res.json()
    res = await client.post("/accounts/sales/webhooks/test", json={}, headers=sales)
    [tenant] = (await res.json())["results"]
    assert set(tenant) == {"endpoint", "id", "ok", "webhook_id"} and tenant["ok"] is False
    res = await client.post("/accounts/sales/webhooks/test", json={}, headers=AUTH)
    [admin] = (await res.json())["results"]
    assert admin["status_code"] == 500 and admin["error"] == "HTTP 500" and admin["elapsed_ms"] >= 0
    ev = event(h, SALES)
    await until(lambda: (x := h.delivery(ev["id"], ep["id"], must=False)) and x["attempts"] >= 1 and
                x["last_status_code"], what="an attempt")
    res = await client.get("/accounts/sales/webhooks/deliveries", headers=sales)
    [d] = (await res.json())["deliveries"]
    assert d["last_status_code"] is None and d["last_error"] == "not delivered"
    res = await client.get(f"/accounts/sales/webhooks/deliveries/{d['id']}", headers=sales)
    assert (await res.json())["last_status_code"] is None
    res = await client.get(f"/accounts/sales/webhooks/deliveries/{d['id']}", headers=AUTH)
    assert (await res.json())["last_status_code"] == 500  # the admin sees what it answered


async def test_the_admins_ping_to_a_given_internal_url_is_refused_without_the_allowlist(h, api):
    rec = h.receiver()
    client = await api()
    res = await client.post("/webhooks/test", json={"url": rec.url}, headers=AUTH)
    [result] = (await res.json())["results"]
    assert result["ok"] is False and result["error"] == "address not allowed" and result["status_code"] is None
    assert rec.snapshot() == []


async def test_the_operators_own_webhook_url_is_trusted(h, api):
    rec = h.receiver()
    await api(urls=[rec.url])  # no allowlist: WA_WEBHOOK_URL is the operator's, not checked
    ev = event(h, SALES)
    await h.status(ev["id"], "delivered", url=rec.url)


# --- secrets per endpoint ---------------------------------------------------------------------------------

async def test_each_account_webhook_signs_with_its_own_secret_and_another_accounts_fails(h, api):
    rec_sales, rec_support = h.receiver(secret=generate()), h.receiver(secret=generate())
    client = await api(allow_private=("127.0.0.1/32",))
    made, keys = {}, {SALES: scoped_key(h, SALES), SUPPORT: scoped_key(h, SUPPORT)}  # before the first request
    for account, rec in ((SALES, rec_sales), (SUPPORT, rec_support)):
        res = await client.post(f"/accounts/{account}/webhooks", json={"url": rec.url}, headers=keys[account])
        made[account] = await res.json()
        rec.trust(made[account]["secret"])
    assert made[SALES]["secret"] != made[SUPPORT]["secret"]
    # Never listed, not even to the admin; another account's key cannot see or rotate it.
    support = keys[SUPPORT]
    for path, key in (("/accounts/sales/webhooks", AUTH), ("/accounts/support/webhooks", support),
                      ("/webhooks/deliveries", AUTH)):
        text = await (await client.get(path, headers=key)).text()
        assert made[SALES]["secret"] not in text and made[SUPPORT]["secret"] not in text
    res = await client.post(f"/accounts/sales/webhooks/{made[SALES]['id']}/rotate-secret", headers=support)
    assert res.status == 403
    res = await client.post(f"/accounts/support/webhooks/{made[SALES]['id']}/rotate-secret", headers=support)
    assert res.status == 404 and (await res.json())["error"]["code"] == "webhook_not_found"

    ev = event(h, SALES)
    await h.status(ev["id"], "delivered", url=made[SALES]["id"])
    [req] = rec_sales.snapshot()
    assert Webhook(made[SALES]["secret"]).verify(req.body, req.headers)["id"] == ev["id"]
    for other in (made[SUPPORT]["secret"], generate()):
        with pytest.raises(WebhookVerificationError):
            Webhook(other).verify(req.body, req.headers)
    assert rec_support.snapshot() == []


async def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(h, api):
    rec = h.receiver(secret=generate())
    client = await api(allow_private=("127.0.0.1/32",))
    sales = scoped_key(h, SALES)
    ep = await (await client.post("/accounts/sales/webhooks", json={"url": rec.url}, headers=sales)).json()
    old = ep["secret"]
    res = await client.post(f"/accounts/sales/webhooks/{ep['id']}/rotate-secret", json={"overlap": 3600},
                            headers=sales)
    body = await res.json()
    assert res.status == 200 and res.headers["Cache-Control"] == "no-store"
    new = body["secret"]
    assert body["id"] == ep["id"] and new.startswith("whsec_") and new != old and body["previous_valid_until"]
    rec.trust(new)
    first = event(h, SALES)
    await h.status(first["id"], "delivered", url=ep["id"])
    [req] = rec.snapshot()
    assert len(req.headers["webhook-signature"].split()) == 2
    for secret in (old, new):  # a receiver still on the old secret, and one switched already
        assert Webhook(secret).verify(req.body, req.headers)["id"] == first["id"]
    # The overlap ends (here: a rotation without one): only the newest secret signs.
    res = await client.post(f"/accounts/sales/webhooks/{ep['id']}/rotate-secret", json={"overlap": 0}, headers=sales)
    newest = (await res.json())["secret"]
    assert (await res.json())["previous_valid_until"] is None
    rec.trust(newest)
    second = event(h, SALES, subject="+15550009999")
    await h.status(second["id"], "delivered", url=ep["id"])
    req = rec.by_id(second["id"])[0]
    assert len(req.headers["webhook-signature"].split()) == 1
    assert Webhook(newest).verify(req.body, req.headers)
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            Webhook(stale).verify(req.body, req.headers)
    res = await client.post(f"/accounts/sales/webhooks/{ep['id']}/rotate-secret", json={"overlap": -1}, headers=sales)
    assert res.status == 400 and (await res.json())["error"]["code"] == "invalid_overlap"


async def test_rotation_survives_a_restart_and_a_legacy_endpoint_gets_a_secret_of_its_own(h):
    rec = h.receiver(secret=generate())
    svc = await h.service([])
    ep = await svc.add_account_endpoint(SALES, rec.url, event_log.TYPES, 10)
    new, until_ = await svc.rotate_secret(SALES, ep["id"], 3600)
    legacy = h.db.call(store.add_account_endpoint, SUPPORT, rec.url, event_log.TYPES, time.time(), 10)  # no secret
    await h.stop_services()
    svc = await h.service([])
    own = await svc.endpoint_secrets()
    assert own[ep["id"]].values(time.time()) == (new, ep["secret"]) and until_ > time.time()
    assert own[legacy["id"]].current.startswith("whsec_")
