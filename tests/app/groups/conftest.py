"""The group tests' fixtures: ``api`` (the in-process app in front of a ``StandInWorker``, whose ``groups`` answer the
worker's group routes) and ``db``, shared with the outbox tests."""

from tests.app.outbox.conftest import api, db  # noqa: F401  (pytest finds fixtures by name in a conftest)
