"""The published contract: an OpenAPI 3.1 document built from the route table and the models.

Served as ``GET /openapi.json`` (any valid key, scoped keys too) and read by the page at ``GET /docs``.
``document.py`` assembles it from the route table (``service/http/route_table.py``) and one ``Op`` per
handler (``operations/``, one module per resource); ``operation.py`` makes one operation of it and
``webhook_events.py`` the ``webhooks`` a receiver gets. A route whose handler has no ``Op`` is left out,
and tests/app/test_openapi.py fails: document a route when you add it.
"""

from __future__ import annotations

from service.http.openapi.document import build, document
from service.http.openapi.operations import OPERATIONS
from service.http.openapi.spec import Op, Param

__all__ = ["OPERATIONS", "Op", "Param", "build", "document"]
