"""``h``: the harness of the (global) webhook tests (tests/helpers/webhook_harness.py)."""

from __future__ import annotations

import pytest

from tests.helpers.webhook_harness import Harness


@pytest.fixture
async def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    await harness.stop_services()
    harness.db.close()
    for rec in harness.receivers:
        rec.stop()
