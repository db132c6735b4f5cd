"""The chats tests' fixtures: ``db``, the store (SQLite, or PostgreSQL with WA_TEST_DATABASE=postgresql), and ``api``,
a builder of the in-process app in front of a ``StandInWorker``: the outbox tests' own, shared."""

from tests.app.outbox.conftest import api, db  # noqa: F401  (pytest finds fixtures by name in a conftest)
