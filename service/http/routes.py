"""Puts the public URL map (``route_table.py``) on an app, with the contract that documents it.

The table is data in ``route_table.py``; the OpenAPI document is built from that same table
(``service/http/openapi/``) and handed to the docs view through ``docs.DOCUMENT``, so that neither the
document nor the views import the routes (no import cycle).
"""

from __future__ import annotations

from aiohttp import web

from service.http.openapi import OPERATIONS
from service.http.openapi.document import document
from service.http.route_table import PER_ACCOUNT, ROUTES, Route
from service.http.strict_input import QUERY_PARAMS, allowed_query
from service.http.views import docs

__all__ = ["PER_ACCOUNT", "ROUTES", "Route", "setup_routes"]


def setup_routes(app: web.Application) -> None:
    for route in ROUTES:
        if route.head:
            app.router.add_get(route.path, route.handler)
        else:
            app.router.add_route(route.method, route.path, route.handler)
    app[docs.DOCUMENT] = document  # what GET /openapi.json serves (views/docs.py)
    # what each operation takes in its query, as documented: anything else is 400 unknown_field
    app[QUERY_PARAMS] = allowed_query(
        {handler: [p.name for p in op.params if p.where == "query"] for handler, op in OPERATIONS.items()})
