"""The worker's own error text never reaches an API client: for a 5xx the gateway passes the code and says
in general terms what happened; the worker's words (a library's error, a path, a database's message) go to
the gateway's log. A 4xx, the client's own doing, keeps its message and details."""

from __future__ import annotations

from aiohttp import web

from service.errors import ApiError
from service.runtime.worker_client import WorkerClient


async def test_a_worker_5xx_keeps_its_code_and_loses_its_words(tmp_path):
    secret = "ECONNREFUSED 10.1.2.3:5432 /var/lib/wa/session password=hunter2"

    async def failing(request):
        code = request.match_info["code"]
        status = 409 if code == "not_connected" else 500
        return web.json_response({"error": {"code": code, "message": secret, "state": "connecting"}}, status=status)

    app = web.Application()
    app.router.add_post("/fail/{code}", failing)
    runner = web.AppRunner(app)
    await runner.setup()
    socket_path = str(tmp_path / "worker.sock")
    await web.UnixSite(runner, socket_path).start()
    client = WorkerClient(socket_path, timeout=5)
    await client.start()
    try:
        for code in ("session_store_error", "worker_error", "something_new"):
            try:
                await client.request("POST", f"/fail/{code}", json={})
            except ApiError as exc:
                assert (exc.status, exc.code) == (500, code)
                assert secret not in exc.message and "10.1.2.3" not in exc.message and not exc.details
            else:
                raise AssertionError("no error")
        try:
            await client.request("POST", "/fail/not_connected", json={})
        except ApiError as exc:  # the client's own doing (or a state): its message and details as they are
            assert (exc.status, exc.code, exc.details) == (409, "not_connected", {"state": "connecting"})
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_5xx_of_the_gateway_names_its_request_id_and_nothing_else(aiohttp_client, tmp_path):
    """No worker runs here: /status is 503 worker_unavailable, a failure the caller can quote by its id."""
    from service.http.app import create_app
    from tests.helpers.inprocess import AUTH, settings
    client = await aiohttp_client(create_app(settings(tmp_path)))
    res = await client.get("/status", headers={**AUTH, "X-Request-ID": "req-5xx-check"})
    body = await res.json()
    assert res.status == 503 and body["error"]["code"] == "worker_unavailable"
    assert body["error"]["request_id"] == res.headers["X-Request-ID"] == "req-5xx-check"
    bad = await client.post("/send", json={"phone_number": "nope", "message": "x"}, headers=AUTH)
    assert "request_id" not in (await bad.json())["error"]  # a 4xx is the client's own: no id needed
