"""The framework baseline: a bare aiohttp app answering ``POST /`` by parsing the small JSON body and
echoing it back. ``.venv/bin/python -m bench.echo_server PORT`` (runs until terminated)."""

from __future__ import annotations

import sys

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await request.json())


def main() -> None:
    app = web.Application()
    app.router.add_post("/", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
