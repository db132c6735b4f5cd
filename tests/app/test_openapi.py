"""The published contract (service/http/openapi.py), in-process: /openapi.json is a valid OpenAPI 3.1 document,
every registered route is in it, real answers match what it says (status, schema, error code), and /docs
is a self-contained page.

No worker runs here (as in test_app.py): the worker-backed routes answer their documented 503.
"""

import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from service.http.app import create_app
from tests.helpers.inprocess import AUTH, settings
from tests.helpers.openapi import conforms


async def spec_of(client) -> dict:
    res = await client.get("/openapi.json", headers=AUTH)
    assert res.status == 200, await res.text()
    return await res.json()


def documented(doc: dict, method: str, pattern: str, status: int) -> dict:
    """The documented response of an operation for a status (KeyError when there is none)."""
    return doc["paths"][pattern][method.lower()]["responses"][str(status)]


async def test_the_document_is_valid_openapi_3_1(client):
    doc = await spec_of(client)
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # openapi-spec-validator picks the 3.1 validator from the version field
    assert {"message.received", "message.status", "session.status", "message.undecryptable", "media.stored",
            "media.failed", "message.reaction", "message.edited", "message.revoked", "presence", "poll.vote",
            "chat.read", "group.participants", "group.updated", "webhook.test"} == set(doc["webhooks"])
    assert set(doc["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}


async def test_every_registered_route_is_documented_and_nothing_else(client):
    doc = await spec_of(client)
    registered = set()
    for resource in client.app.router.resources():
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS"):
                registered.add((route.method.lower(), resource.canonical))
    documented_ops = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert registered - documented_ops == set(), "routes without documentation (add an Op in service/http/openapi.py)"
    assert documented_ops - registered == set(), "documented operations that are not routes"
    # Both forms of a per-account route are there.
    assert "post" in doc["paths"]["/send"] and "post" in doc["paths"]["/accounts/{account}/send"]


async def test_security_is_documented_as_the_middleware_enforces_it(client):
    doc = await spec_of(client)
    for path in ("/health", "/health/live", "/health/ready"):
        assert {} in doc["paths"][path]["get"]["security"]  # the key is optional on the probes
        assert (await client.get(path)).status in (200, 503)
    assert doc["paths"]["/docs"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/send"]["post"]  # the global one: a key
    assert "403" not in doc["paths"]["/openapi.json"]["get"]["responses"]  # any valid key
    assert "403" in doc["paths"]["/accounts"]["get"]["responses"]  # admin only
    res = await client.get("/openapi.json")
    assert res.status == 401
    await conforms(doc, res, "GET", "/openapi.json")


async def test_a_scoped_key_may_read_the_contract(client):
    res = await client.post("/accounts/default/keys", json={}, headers=AUTH)
    assert res.status == 201
    scoped = {"X-API-Key": (await res.json())["key"]}
    assert (await client.get("/openapi.json", headers=scoped)).status == 200
    assert (await client.get("/accounts", headers=scoped)).status == 403  # still its scope elsewhere


@pytest.mark.parametrize("method,path,pattern,body,status,code", [
    ("POST", "/send", "/send", {"phone_number": "12345", "message": "hi"}, 400, "invalid_phone_number"),
    ("POST", "/send", "/send", {"phone_number": "+1234567890", "message": " "}, 400, "invalid_message"),
    ("POST", "/send", "/send", {"phone_number": "+1234567890"}, 400, "invalid_message"),
    ("POST", "/send?wait=-1", "/send", {"phone_number": "+1234567890", "message": "hi"}, 400, "invalid_wait"),
    ("POST", "/accounts", "/accounts", {"name": "Sales"}, 400, "invalid_account_name"),
    ("POST", "/accounts", "/accounts", {"name": "admin"}, 400, "reserved_account_name"),
    ("POST", "/accounts", "/accounts", {"name": "default"}, 409, "account_exists"),
    ("POST", "/accounts", "/accounts", [], 400, "invalid_json"),
    ("GET", "/messages?limit=0", "/messages", None, 400, "invalid_limit"),
    ("GET", "/messages?direction=up", "/messages", None, 400, "invalid_direction"),
    ("GET", "/messages?cursor=zz", "/messages", None, 400, "invalid_cursor"),
    ("GET", "/messages/nope", "/messages/{id}", None, 404, "message_not_found"),
    ("DELETE", "/messages/nope", "/messages/{id}", None, 404, "message_not_found"),
    ("GET", "/media/nope", "/media/{id}", None, 404, "media_not_found"),
    ("GET", "/accounts/default/media/nope", "/accounts/{account}/media/{id}", None, 404, "media_not_found"),
    ("GET", "/events?types=nope", "/events", None, 400, "invalid_types"),
    ("GET", "/events?after=-1", "/events", None, 400, "invalid_after"),
    ("GET", "/accounts/nobody/messages", "/accounts/{account}/messages", None, 404, "account_not_found"),
    ("GET", "/accounts/nobody/keys", "/accounts/{account}/keys", None, 404, "account_not_found"),
    ("DELETE", "/accounts/default", "/accounts/{account}", None, 409, "default_account"),
    ("GET", "/status", "/status", None, 503, "worker_unavailable"),
    ("GET", "/webhooks/deliveries?status=lost", "/webhooks/deliveries", None, 400, "invalid_status"),
    ("GET", "/webhooks/deliveries/whd_x", "/webhooks/deliveries/{id}", None, 404, "delivery_not_found"),
    ("POST", "/accounts/default/webhooks", "/accounts/{account}/webhooks", {"url": "ftp://x"}, 400, "invalid_url"),
    ("GET", "/health/ready?account=nobody", "/health/ready", None, 404, "account_not_found"),
    ("GET", "/qr?format=gif", "/qr", None, 400, "invalid_format"),
    ("GET", "/accounts/default/qr", "/accounts/{account}/qr", None, 503, "worker_unavailable"),
    ("POST", "/webhooks/test", "/webhooks/test", {"url": "ftp://x"}, 400, "invalid_url"),
    ("POST", "/webhooks/test", "/webhooks/test", {"endpoint": "whe_x"}, 404, "webhook_not_found"),
    ("POST", "/accounts/default/webhooks/test", "/accounts/{account}/webhooks/test", {"url": "http://127.0.0.1:9/"},
     400, "url_not_allowed"),
])
async def test_a_produced_error_is_documented_for_its_route(client, method, path, pattern, body, status, code):
    doc = await spec_of(client)
    assert code in documented(doc, method, pattern, status)["x-error-codes"]
    res = await client.request(method, path, json=body, headers=AUTH)
    assert res.status == status
    answer = await conforms(doc, res, method, pattern)  # the code is in the schema's enum too
    assert answer["error"]["code"] == code


async def test_a_code_missing_from_the_document_fails_conformance(client):
    """The conformance check itself bites: the same answer against a list without its code."""
    doc = await spec_of(client)
    codes = documented(doc, "POST", "/send", 400)["content"]["application/json"]["schema"]["allOf"][1]
    codes["properties"]["error"]["properties"]["code"]["enum"].remove("invalid_phone_number")
    res = await client.post("/send", json={"phone_number": "1", "message": "hi"}, headers=AUTH)
    with pytest.raises(jsonschema.ValidationError):
        await conforms(doc, res, "POST", "/send")


@pytest.mark.parametrize("method,path,pattern,headers,status", [
    ("GET", "/health", "/health", {}, 200),
    ("GET", "/health", "/health", AUTH, 200),  # the detailed form
    ("GET", "/health/live", "/health/live", {}, 200),
    ("GET", "/health/ready", "/health/ready", {}, 503),
    ("GET", "/messages", "/messages", AUTH, 200),
    ("GET", "/messages?direction=in", "/messages", AUTH, 200),
    ("GET", "/accounts/default/messages", "/accounts/{account}/messages", AUTH, 200),
    ("GET", "/events", "/events", AUTH, 200),
    ("GET", "/accounts/default/keys", "/accounts/{account}/keys", AUTH, 200),
    ("GET", "/accounts/default/webhooks", "/accounts/{account}/webhooks", AUTH, 200),
    ("GET", "/webhooks/deliveries", "/webhooks/deliveries", AUTH, 200),
    ("POST", "/webhooks/deliveries/retry", "/webhooks/deliveries/retry", AUTH, 200),
    ("POST", "/webhooks/test", "/webhooks/test", AUTH, 200),
    ("GET", "/status", "/status", {"X-API-Key": "wrong"}, 401),
])
async def test_real_answers_validate_against_the_documented_schema(client, method, path, pattern, headers, status):
    doc = await spec_of(client)
    res = await client.request(method, path, headers=headers)
    assert res.status == status, await res.text()
    await conforms(doc, res, method, pattern)


async def test_created_resources_validate_against_the_documented_schema(client):
    doc = await spec_of(client)
    res = await client.post("/accounts/default/keys", json={"label": "crm"}, headers=AUTH)
    created = await conforms(doc, res, "POST", "/accounts/{account}/keys")
    res = await client.get("/accounts/default/keys", headers=AUTH)
    assert len((await conforms(doc, res, "GET", "/accounts/{account}/keys"))["keys"]) == 1
    res = await client.delete(f"/accounts/default/keys/{created['id']}", headers=AUTH)
    await conforms(doc, res, "DELETE", "/accounts/{account}/keys/{id}")
    # A public address (no DNS here); nothing is sent at creation.
    res = await client.post("/accounts/default/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=AUTH)
    hook = await conforms(doc, res, "POST", "/accounts/{account}/webhooks")
    assert res.status == 201
    res = await client.post(f"/accounts/default/webhooks/{hook['id']}/rotate-secret", json={"overlap": 60},
                            headers=AUTH)
    await conforms(doc, res, "POST", "/accounts/{account}/webhooks/{id}/rotate-secret")
    res = await client.post("/accounts/default/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=AUTH)
    assert (await conforms(doc, res, "POST", "/accounts/{account}/webhooks"))["error"]["code"] == \
        "webhook_url_not_allowed"
    res = await client.get("/accounts/default/webhooks", headers=AUTH)
    await conforms(doc, res, "GET", "/accounts/{account}/webhooks")
    res = await client.delete(f"/accounts/default/webhooks/{hook['id']}", headers=AUTH)
    await conforms(doc, res, "DELETE", "/accounts/{account}/webhooks/{id}")


async def test_the_document_carries_the_settings_bounds(aiohttp_client, tmp_path):
    c = await aiohttp_client(create_app(settings(tmp_path, WA_MAX_MESSAGE_CHARS="500", WA_SEND_WAIT_MAX="7")))
    doc = await spec_of(c)
    assert doc["components"]["schemas"]["SendRequest"]["properties"]["message"]["maxLength"] == 500
    wait = next(p for p in doc["paths"]["/send"]["post"]["parameters"] if p.get("name") == "wait")
    assert wait["schema"]["maximum"] == 7


async def test_docs_is_a_self_contained_page_without_a_key(client):
    res = await client.get("/docs")
    assert res.status == 200
    assert res.content_type == "text/html"
    html = await res.text()
    assert "/openapi.json" in html and "<script>" in html
    assert "http://" not in html and "https://" not in html  # no CDN, no external resource
    for ref in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', html):
        assert ref.startswith(("/", "#")), ref
    csp = res.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert (await client.get("/docs", headers={"X-API-Key": "wrong"})).status == 401  # a wrong key is still refused
