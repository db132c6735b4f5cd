"""Keys scoped to one account, in-process (pytest-aiohttp, no worker): issued once and stored hashed,
listed without values, revoked at once, refused (403) outside their account; and the account registry
beneath them (service/store/accounts.py): names, the limit, and a delete that leaves no row behind.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from service.errors import BadRequest
from service.http.app import create_app
from service.http.appkeys import DATABASE, SCOPED_KEYS
from service.http.models import AccountCreateRequest, parse
from service.http.validation import RESERVED_ACCOUNT_NAMES
from service.store import accounts as store
from service.store.db import Database
from tests.helpers.inprocess import AUTH, settings

STATES_ONLY = {"status", "reasons", "uptime_seconds", "version", "worker", "whatsapp", "accounts", "shards"}


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(settings(tmp_path)))


async def error_of(res) -> dict:
    body = await res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


async def make_account(client, name: str) -> None:
    res = await client.post("/accounts", json={"name": name}, headers=AUTH)
    assert res.status == 201, await res.text()


async def issue(client, account: str, label: str | None = None) -> dict:
    res = await client.post(f"/accounts/{account}/keys", json={} if label is None else {"label": label},
                            headers=AUTH)
    assert res.status == 201, await res.text()
    return await res.json()


def key(value: str) -> dict:
    return {"X-API-Key": value}


# --- issuing, listing, storing --------------------------------------------------------------------

async def test_a_key_is_shown_once_listed_without_its_value_and_stored_only_as_a_hash(client, tmp_path):
    await make_account(client, "sales")
    created = await issue(client, "sales", label="crm")
    assert set(created) == {"id", "key", "prefix", "label", "account", "created_at"}
    assert created["key"].startswith("wak_") and len(created["key"]) == 4 + 43
    assert created["prefix"] == created["key"][:12] and created["id"].startswith("key_")
    assert (created["label"], created["account"]) == ("crm", "sales")
    unlabelled = await (await client.post("/accounts/sales/keys", headers=AUTH)).json()  # no body at all
    assert unlabelled["label"] is None

    res = await client.get("/accounts/sales/keys", headers=AUTH)
    listing = await res.json()
    assert [k["id"] for k in listing["keys"]] == [created["id"], unlabelled["id"]]
    for entry in listing["keys"]:
        assert set(entry) == {"id", "prefix", "label", "created_at", "revoked_at", "last_used_at"}
    text = await res.text()
    assert created["key"] not in text and unlabelled["key"] not in text
    assert hashlib.sha256(created["key"].encode()).hexdigest() not in text

    # On disk: the digest, never the key (the main file and its write-ahead log alike).
    disk = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("gateway.db*"))
    for made in (created, unlabelled):
        assert hashlib.sha256(made["key"].encode()).hexdigest().encode() in disk
        assert made["key"].encode() not in disk
        assert made["key"][12:].encode() not in disk


async def test_bad_labels_and_unknown_accounts_are_refused(client):
    res = await client.post("/accounts/sales/keys", json={}, headers=AUTH)
    assert res.status == 404 and (await error_of(res))["code"] == "account_not_found"
    for verb in ("get", "delete"):
        path = "/accounts/ghost/keys" + ("/key_x" if verb == "delete" else "")
        res = await getattr(client, verb)(path, headers=AUTH)
        assert res.status == 404 and (await error_of(res))["code"] == "account_not_found"
    await make_account(client, "sales")
    for label in (7, "x" * 101, "a\nb"):
        res = await client.post("/accounts/sales/keys", json={"label": label}, headers=AUTH)
        assert res.status == 400 and (await error_of(res))["code"] == "invalid_label", label


# --- what a scoped key may do --------------------------------------------------------------------

async def test_a_key_works_on_its_own_account_and_is_403_everywhere_else(client):
    await make_account(client, "sales")
    await make_account(client, "support")
    sales = (await issue(client, "sales"))["key"]
    default = (await issue(client, "default"))["key"]

    # Its own account's routes.
    assert (await client.get("/accounts/sales/messages", headers=key(sales))).status == 200
    assert (await client.get("/accounts/sales/events", headers=key(sales))).status == 200
    assert (await client.get("/accounts/sales", headers=key(sales))).status == 200
    # The original routes act on default: a default key may call them, a sales key may not.
    assert (await client.get("/messages", headers=key(default))).status == 200
    assert (await client.get("/events", headers=key(default))).status == 200
    assert (await client.get("/accounts/default/messages", headers=key(default))).status == 200
    refused = [
        (sales, "GET", "/messages"), (sales, "GET", "/events"), (sales, "GET", "/status"),
        (sales, "POST", "/send"), (sales, "POST", "/connect"), (sales, "GET", "/messages/msg_1"),
        (sales, "GET", "/accounts/support/messages"), (sales, "POST", "/accounts/support/send"),
        (sales, "POST", "/accounts/support/connect"), (sales, "GET", "/accounts/support"),
        (sales, "GET", "/accounts/default/messages"), (default, "GET", "/accounts/sales/messages"),
        (default, "POST", "/accounts/sales/send"),
        # Account, key and webhook management: admin only, even for the key's own account.
        (sales, "GET", "/accounts"), (sales, "POST", "/accounts"), (default, "GET", "/accounts"),
        (sales, "DELETE", "/accounts/sales"), (default, "DELETE", "/accounts/default"),
        (sales, "GET", "/accounts/sales/keys"), (sales, "POST", "/accounts/sales/keys"),
        (sales, "DELETE", "/accounts/sales/keys/key_x"), (default, "GET", "/accounts/default/keys"),
        (default, "GET", "/webhooks/deliveries"), (default, "POST", "/webhooks/deliveries/retry"),
        (sales, "GET", "/webhooks/deliveries"),
    ]
    for value, method, path in refused:
        res = await client.request(method, path, headers=key(value), json={})
        assert res.status == 403, (method, path, res.status)
        error = await error_of(res)
        assert error["code"] == "forbidden"
        assert ("account sales" if value == sales else "account default") in error["message"]
    # Unknown routes stay 404, in Authorization: Bearer as well as X-API-Key.
    res = await client.get("/nope", headers={"Authorization": f"Bearer {sales}"})
    assert res.status == 404
    assert (await client.get("/accounts/sales/messages", headers={"Authorization": f"Bearer {sales}"})).status == 200
    # As with admin keys, one valid key among the headers is enough.
    both = {"X-API-Key": "not-a-key", "Authorization": f"Bearer {sales}"}
    assert (await client.get("/accounts/sales/messages", headers=both)).status == 200
    # The admin key still reaches everything.
    for path in ("/accounts", "/accounts/sales/keys", "/messages", "/accounts/support/messages",
                 "/webhooks/deliveries"):
        assert (await client.get(path, headers=AUTH)).status == 200, path


async def test_health_details_are_for_admin_keys_only(client):
    await make_account(client, "sales")
    sales = (await issue(client, "sales"))["key"]
    body = await (await client.get("/health", headers=key(sales))).json()
    assert set(body) == STATES_ONLY and body["worker"] == {"state": "UNKNOWN"}
    assert "pid" in (await (await client.get("/health", headers=AUTH)).json())["worker"]
    assert (await client.get("/health/live", headers=key(sales))).status == 200


async def test_a_revoked_key_is_401_at_once(client):
    await make_account(client, "sales")
    await make_account(client, "support")
    made = await issue(client, "sales")
    other = await issue(client, "support")
    assert (await client.get("/accounts/sales/messages", headers=key(made["key"]))).status == 200

    res = await client.delete(f"/accounts/sales/keys/{made['id']}", headers=AUTH)
    assert res.status == 200
    revoked = await res.json()
    assert set(revoked) == {"id", "prefix", "label", "created_at", "revoked_at", "last_used_at"}
    assert revoked["id"] == made["id"] and revoked["revoked_at"] is not None
    res = await client.get("/accounts/sales/messages", headers=key(made["key"]))
    assert res.status == 401 and (await error_of(res))["code"] == "unauthorized"
    assert res.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    # Again: the same answer, the first revoked_at kept.
    again = await client.delete(f"/accounts/sales/keys/{made['id']}", headers=AUTH)
    assert again.status == 200 and (await again.json())["revoked_at"] == revoked["revoked_at"]
    # A key of another account is no key of this one; unknown ids are 404.
    for path in (f"/accounts/sales/keys/{other['id']}", "/accounts/sales/keys/key_nope"):
        res = await client.delete(path, headers=AUTH)
        assert res.status == 404 and (await error_of(res))["code"] == "key_not_found"
    assert (await client.get("/accounts/support/messages", headers=key(other["key"]))).status == 200
    listing = await (await client.get("/accounts/sales/keys", headers=AUTH)).json()
    assert listing["keys"][0]["revoked_at"] == revoked["revoked_at"]


async def test_keys_are_checked_from_memory_and_last_used_is_written_at_most_once_a_minute(client):
    await make_account(client, "sales")
    made = await issue(client, "sales")
    cache, db = client.server.app[SCOPED_KEYS], client.server.app[DATABASE]
    assert (await client.get("/accounts/sales/messages", headers=key(made["key"]))).status == 200
    loads = cache.loads
    first = (await db.run(store.get_key, "sales", made["id"]))["last_used_at"]  # runs after the touch
    assert first is not None and time.time() - first < 60
    for _ in range(5):
        assert (await client.get("/accounts/sales/messages", headers=key(made["key"]))).status == 200
    assert cache.loads == loads  # no database read per request
    assert (await db.run(store.get_key, "sales", made["id"]))["last_used_at"] == first
    await issue(client, "sales")  # a change: read again once
    assert (await client.get("/accounts/sales/messages", headers=key(made["key"]))).status == 200
    assert cache.loads == loads + 1
    listed = (await (await client.get("/accounts/sales/keys", headers=AUTH)).json())["keys"][0]
    assert listed["last_used_at"] is not None


async def test_a_deleted_accounts_keys_stop_working_once_the_table_is_invalidated(client):
    await make_account(client, "sales")
    made = await issue(client, "sales")
    assert (await client.get("/accounts/sales/messages", headers=key(made["key"]))).status == 200
    await client.server.app[DATABASE].run(store.delete, "sales")
    client.server.app[SCOPED_KEYS].invalidate()  # what DELETE /accounts/{account} does
    assert (await client.get("/accounts/sales/messages", headers=key(made["key"]))).status == 401


async def test_a_key_whose_account_is_no_longer_registered_does_not_authenticate(tmp_path):
    db = Database(tmp_path / "gateway.db").open()
    try:
        db.call(store.create, "sales", 0, 1.0, 10)
        db.call(store.create_key, "sales", "d" * 64, "wak_abcdefgh", None, 1.0)
        assert [(digest, account) for digest, _, account in db.call(store.active_keys)] == [("d" * 64, "sales")]
        db.call(lambda c: c.execute("UPDATE accounts SET registered = 0 WHERE account = 'sales'"))
        assert db.call(store.active_keys) == []
    finally:
        db.close()


# --- account names ---------------------------------------------------------------------------------

VALID_NAMES = ["ab", "sales", "sales-eu", "support2", "a1", "x-y-z", "a" + "b" * 31, "default", "a--b"]
INVALID_NAMES = ["", "a", "Sales", "SALES", "1sales", "-sales", "sales-", "sales_eu", "sales eu", "sales.eu",
                 "säles", "sales\n", " sales", "a" + "b" * 32, "sales/eu", "..", "ｓales", "sales\x00"]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_account_names(name):
    assert parse(AccountCreateRequest, {"name": name}).name == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_account_names_are_400_invalid_account_name(name):
    with pytest.raises(BadRequest) as caught:
        parse(AccountCreateRequest, {"name": name})
    assert (caught.value.status, caught.value.code) == (400, "invalid_account_name")
    assert caught.value.message.startswith("name must be 2 to 32 characters")  # one text: input never echoed


@pytest.mark.parametrize("name", sorted(RESERVED_ACCOUNT_NAMES))
def test_reserved_account_names_are_400_reserved_account_name(name):
    with pytest.raises(BadRequest) as caught:
        parse(AccountCreateRequest, {"name": name})
    assert (caught.value.status, caught.value.code) == (400, "reserved_account_name")


def test_the_routes_words_are_reserved_and_default_is_not():
    assert {"accounts", "admin", "all", "api", "health", "metrics", "keys", "new", "me", "events", "webhooks",
            "messages", "status", "send", "connect", "disconnect"} <= RESERVED_ACCOUNT_NAMES
    assert "default" not in RESERVED_ACCOUNT_NAMES
    for body in ({}, {"name": 5}, {"name": None}):
        with pytest.raises(BadRequest) as caught:
            parse(AccountCreateRequest, body)
        assert caught.value.code == "invalid_account_name"


async def test_over_http_names_are_checked_and_default_exists(client):
    for name, code, status in [("Sales", "invalid_account_name", 400), ("admin", "reserved_account_name", 400),
                               ("default", "account_exists", 409)]:
        res = await client.post("/accounts", json={"name": name}, headers=AUTH)
        assert res.status == status and (await error_of(res))["code"] == code, name


# --- the registry ------------------------------------------------------------------------------------

@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "data" / "gateway.db").open()
    yield database
    database.close()


def test_default_is_registered_once_and_keeps_its_shard_and_link_state(db):
    db.call(store.set_linked, "default", True, 5.0)  # link state written before registration
    assert db.call(store.get, "default") is None  # a row of link state alone is no account
    row = db.call(store.ensure_default, 10.0)
    assert (row["account"], row["registered"], row["shard"], row["linked"], row["created_at"]) == \
        ("default", 1, 0, 1, 10.0)
    assert db.call(store.set_shard, "default", 3)
    row = db.call(store.ensure_default, 20.0)
    assert (row["shard"], row["created_at"]) == (3, 10.0)
    assert [r["account"] for r in db.call(store.list_accounts)] == ["default"]
    assert not db.call(store.set_shard, "ghost", 1)


def test_create_refuses_an_existing_name_first_and_then_more_than_the_limit(db):
    db.call(store.ensure_default, 1.0)
    with pytest.raises(store.AccountExists):
        db.call(store.create, "default", 0, 2.0, 100)
    db.call(store.set_linked, "sales", False, 2.5)  # an unregistered row is taken over
    row = db.call(store.create, "sales", 1, 3.0, 3)
    assert (row["account"], row["shard"], row["registered"], row["created_at"]) == ("sales", 1, 1, 3.0)
    db.call(store.create, "support", 0, 4.0, 3)
    with pytest.raises(store.TooManyAccounts) as caught:  # default counts: 3 of 3
        db.call(store.create, "billing", 0, 5.0, 3)
    assert caught.value.limit == 3
    with pytest.raises(store.AccountExists):  # exists wins over full
        db.call(store.create, "sales", 0, 5.0, 3)
    assert [r["account"] for r in db.call(store.list_accounts)] == ["default", "sales", "support"]
    assert db.call(store.get, "billing") is None


async def test_over_http_the_limit_is_WA_MAX_ACCOUNTS_with_default_counted(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings(tmp_path, WA_MAX_ACCOUNTS="2")))
    await make_account(client, "sales")
    res = await client.post("/accounts", json={"name": "support"}, headers=AUTH)
    assert res.status == 409 and (await error_of(res))["code"] == "too_many_accounts"


ONE_ROW_PER_ACCOUNT = {"accounts", "leases", "outbox_depth"}  # the account is the primary key


def _fill(conn, table: str, account: str, n: int) -> None:
    """One row of ``table`` for ``account``, with a made-up value for every other required column."""
    cols = [c for c in conn.execute(f'PRAGMA table_info("{table}")')]
    names, values = [], []
    for c in cols:
        if c["name"] == "account":
            value = account
        elif c["pk"] and c["type"].upper() == "INTEGER":
            continue  # the rowid
        elif c["type"].upper() in ("INTEGER", "REAL"):
            value = n
        else:
            value = f"{table}.{c['name']}.{account}.{n}"
        names.append(c["name"])
        values.append(value)
    conn.execute(f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(values))})', values)


def test_delete_removes_every_row_of_the_account_from_every_table_with_an_account_column(db):
    known = {"messages", "idempotency_keys", "contacts", "inbound_messages", "inbound_media", "events",
             "webhook_deliveries", "webhook_endpoints", "account_keys", "accounts", "leases", "wa_auth", "outbox_depth",
             "chats", "chat_messages", "history_messages", "contact_profiles"}
    # A table a later migration might add: found by introspection, not by a list.
    db.call(lambda c: c.execute('CREATE TABLE "future things" (id INTEGER PRIMARY KEY, account TEXT NOT NULL, x TEXT)'))
    tables = db.call(store.account_tables)
    assert set(tables) == known | {"future things"} and tables[-1] == "accounts"

    def fill(conn):
        for n, table in enumerate(tables):
            for account in ("sales", "support", "default"):
                _fill(conn, table, account, n)
            if table not in ONE_ROW_PER_ACCOUNT:
                _fill(conn, table, "sales", n + 100)  # more than one row where a table allows it

    db.call(fill)

    def counts(conn, account):
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}" WHERE account = ?', (account,)).fetchone()[0]
                for t in tables}

    assert all(v >= 1 for v in db.call(counts, "sales").values())
    removed = db.call(store.delete, "sales")
    assert removed == {t: (1 if t in ONE_ROW_PER_ACCOUNT else 2) for t in tables}
    assert set(db.call(counts, "sales").values()) == {0}
    assert set(db.call(counts, "support").values()) == {1} and set(db.call(counts, "default").values()) == {1}
    with pytest.raises(store.DefaultAccount):
        db.call(store.delete, "default")
    assert set(db.call(counts, "default").values()) == {1}
