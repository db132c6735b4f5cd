"""The gateway app in-process (pytest-aiohttp): error shape, API key, /health privacy, content
types, CORS, request ids, worker outage.

No worker runs here, which is exactly the outage the gateway must report cleanly.
"""

import os
import stat

import pytest

from service.http.app import create_app
from tests.helpers.inprocess import AUTH, KEY, settings

ORIGIN = "https://app.example.com"


@pytest.fixture
async def cors_client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(settings(tmp_path, WA_CORS_ORIGINS=f"{ORIGIN},http://localhost:8080")))


async def error_of(res) -> dict:
    body = await res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


async def test_worker_down_is_503_in_the_error_shape(client):
    for method, path in [("GET", "/status"), ("POST", "/connect"), ("POST", "/disconnect")]:
        res = await client.request(method, path, headers=AUTH)
        assert res.status == 503
        assert await res.json() == {
            "error": {
                "code": "worker_unavailable",
                "message": "The WhatsApp worker is not reachable right now; it is restarted automatically.",
                "request_id": res.headers["X-Request-ID"],  # a 5xx names its request, whose log line has the detail
            }
        }


# --- the API key ---------------------------------------------------------------------------------

async def test_every_endpoint_but_the_probes_needs_the_key(client):
    for method, path in [("GET", "/status"), ("POST", "/connect"), ("POST", "/disconnect"),
                         ("POST", "/send"), ("GET", "/nope"), ("OPTIONS", "/send")]:
        res = await client.request(method, path)
        assert res.status == 401, (method, path)
        assert (await error_of(res))["code"] == "unauthorized"
        assert res.headers["WWW-Authenticate"] == 'Bearer realm="wa-gateway"'
    for probe in ("/health", "/health/live", "/health/ready"):
        assert (await client.get(probe)).status in (200, 503)


@pytest.mark.parametrize("headers", [
    {"X-API-Key": KEY},
    {"x-api-key": KEY},  # header names are case-insensitive
    {"X-Api-Key": f"  {KEY} "},
    {"Authorization": f"Bearer {KEY}"},
    {"authorization": f"bearer {KEY}"},
    {"Authorization": f"BEARER  {KEY}"},
])
async def test_the_key_is_accepted_in_either_header(client, headers):
    assert (await client.get("/status", headers=headers)).status == 503  # reached the (absent) worker


@pytest.mark.parametrize("headers", [
    {"X-API-Key": "wrong"},
    {"X-API-Key": KEY[:-1]},
    {"X-API-Key": KEY + "x"},
    {"X-API-Key": ""},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": KEY},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong"},
    {"X-API-Key": "caf\u00e9"},
])
async def test_a_wrong_key_is_401_with_invalid_token(client, headers):
    res = await client.get("/status", headers=headers)
    assert res.status == 401
    assert (await error_of(res))["code"] == "unauthorized"
    assert res.headers["WWW-Authenticate"] == 'Bearer realm="wa-gateway", error="invalid_token"'
    # A wrong key is refused on the open paths too: it is a client misconfiguration to report.
    assert (await client.get("/health", headers=headers)).status == 401


async def test_several_keys_rotate(aiohttp_client, tmp_path):
    app = create_app(settings(tmp_path, WA_API_KEY="old-key, new-key"))
    c = await aiohttp_client(app)
    for key in ("old-key", "new-key"):
        assert (await c.get("/status", headers={"X-API-Key": key})).status == 503
    assert (await c.get("/status", headers={"X-API-Key": "old-key,new-key"})).status == 401


async def test_without_wa_api_key_a_generated_key_in_the_data_dir_locks_the_api(aiohttp_client, tmp_path, capsys):
    app = create_app(settings(tmp_path, WA_API_KEY=""))
    c = await aiohttp_client(app)
    key_file = tmp_path / "data" / "api-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    assert (await c.get("/status")).status == 401
    assert (await c.get("/status", headers={"Authorization": f"Bearer {key}"})).status == 503
    out = capsys.readouterr().out
    assert str(key_file) in out and key not in out  # the log says where, never what


# --- /health privacy -----------------------------------------------------------------------------

async def test_health_without_a_key_shows_states_only(client):
    res = await client.get("/health")
    assert res.status == 200
    body = await res.json()
    assert body["status"] == "degraded"
    assert set(body) == {"status", "reasons", "uptime_seconds", "version", "worker", "whatsapp", "accounts", "shards"}
    assert body["worker"] == {"state": "UNKNOWN"} and body["whatsapp"] == {"state": "unknown"}
    assert body["accounts"] == {"unknown": 1} and body["shards"] == [{"name": "worker:worker-0", "state": "UNKNOWN"}]
    # Generic reasons: no error text, which could carry a phone number or a path.
    assert body["reasons"] == ["worker is UNKNOWN", "whatsapp is unknown"]
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/health/ready")).status == 503


async def test_health_with_the_key_shows_details(client):
    body = await (await client.get("/health", headers=AUTH)).json()
    assert {"pid", "rss_bytes", "restarts", "watchdog"} <= set(body["worker"])
    assert any(": " in reason for reason in body["reasons"])  # the detail after the state


# --- content types -------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data",
    "application/json; charset=latin-1", "application/jsonp", "application/json-patch+json", "json", "",
])
async def test_a_body_that_is_not_application_json_is_415(client, content_type):
    for path in ("/send", "/connect", "/disconnect"):
        res = await client.post(path, data=b'{"phone_number": "+1234567890", "message": "hi"}',
                                headers={**AUTH, "Content-Type": content_type})
        if path == "/send" and content_type == "multipart/form-data":  # /send takes a form (media), with a boundary
            assert res.status == 400 and (await error_of(res))["code"] == "invalid_media"
            continue
        assert res.status == 415, (path, content_type)
        assert (await error_of(res))["code"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON; charset=UTF-8", "application/json;charset=utf8"])
async def test_application_json_with_params_is_accepted(client, content_type):
    res = await client.post("/send?wait=0", data=b'{"phone_number": "+1234567890", "message": "hi"}',
                            headers={**AUTH, "Content-Type": content_type})
    assert res.status == 202  # validated, then queued in the outbox (the worker is absent)


async def test_an_empty_post_without_content_type_keeps_working(client):
    """The original contract: `curl -X POST localhost:3001/connect`."""
    for path in ("/connect", "/disconnect"):
        res = await client.post(path, headers=AUTH, skip_auto_headers=["Content-Type"])
        assert res.status == 503, path  # past validation, to the (absent) worker
    res = await client.post("/send", headers=AUTH, skip_auto_headers=["Content-Type"])
    assert res.status == 400 and (await error_of(res))["code"] == "invalid_json"


# --- CORS ----------------------------------------------------------------------------------------

async def test_no_cors_headers_unless_configured(client):
    res = await client.get("/health", headers={"Origin": ORIGIN})
    assert not [h for h in res.headers if h.lower().startswith("access-control-") or h.lower() == "vary"]
    res = await client.options("/send", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert res.status == 401
    assert not [h for h in res.headers if h.lower().startswith("access-control-")]


async def test_cors_answers_listed_origins_only(cors_client):
    pre = await cors_client.options("/send", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type"})
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"x-api-key", "authorization", "content-type", "x-request-id", "idempotency-key"}
    assert "Origin" in pre.headers.getall("Vary")
    res = await cors_client.get("/status", headers={**AUTH, "Origin": ORIGIN})
    assert res.headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in res.headers.getall("Vary")
    res = await cors_client.get("/status", headers={"Origin": ORIGIN})  # errors too, so JS can read them
    assert res.status == 401 and res.headers["Access-Control-Allow-Origin"] == ORIGIN

    for origin in ("https://evil.example", "https://app.example.com.evil.example", "null",
                   "http://app.example.com", ORIGIN + "/"):
        pre = await cors_client.options("/send", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.status == 401, origin  # no preflight answer: the key check refuses it
        res = await cors_client.get("/status", headers={**AUTH, "Origin": origin})
        for r in (pre, res):
            assert not [h for h in r.headers if h.lower().startswith("access-control-")], origin


# --- the rest ------------------------------------------------------------------------------------

async def test_request_id_is_echoed_or_made(client):
    res = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert res.headers["X-Request-ID"] == "abc-123"
    for bad in ("bad id with spaces", "abc;def", "x" * 65):
        res = await client.get("/health/live", headers={"X-Request-ID": bad})
        assert res.headers["X-Request-ID"] != bad
        assert len(res.headers["X-Request-ID"]) == 16


async def test_unknown_route_and_method_are_json(client):
    res = await client.get("/nope", headers=AUTH)
    assert res.status == 404 and (await error_of(res))["code"] == "not_found"
    res = await client.put("/send", headers=AUTH)
    assert res.status == 405 and (await error_of(res))["code"] == "method_not_allowed"


async def test_validation_happens_before_the_worker_is_asked(client):
    res = await client.post("/send", json={"phone_number": "12", "message": "hi"}, headers=AUTH)
    assert res.status == 400
    assert (await error_of(res))["code"] == "invalid_phone_number"


@pytest.mark.parametrize("raw,why", [
    (b"[" * 33 + b"]" * 33, "nest at most 32"),
    (b"[" * 100000 + b"]" * 100000, "nest at most 32"),
    (b'{"a": ' + b"9" * 5000 + b"}", "64 bits"),  # not int()'s own 4300-digit ValueError
    (b"[9223372036854775808]", "64 bits"),
    (b"[-9223372036854775809]", "64 bits"),
    (b"[NaN]", "NaN"), (b"[-Infinity]", "NaN"), (b"[1e999]", "finite"),
    (b'{"a": 1, "a": 2}', "repeats a key"),
    (b'["\\ud800"]', "lone surrogates"), (b'{"\\udc00": 1}', "lone surrogates"),
    (b"\xff", "not UTF-8"), (b'{"a": 1} x', "not valid JSON"),
])
def test_json_limits_say_why(raw, why):
    from service.errors import BadRequest
    from service.http.validation import parse_json

    with pytest.raises(BadRequest, match=why) as info:
        parse_json(raw)
    assert info.value.code == "invalid_json"


def test_json_within_limits_parses():
    from service.http.validation import parse_json

    value = parse_json(b'{"a": ' + b"[" * 31 + b"]" * 31
                       + b', "n": 9223372036854775807, "f": 1.5, "s": "\\ud83d\\ude00"}')
    assert value["n"] == 2**63 - 1 and value["s"] == "\U0001f600"
