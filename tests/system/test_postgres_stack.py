"""The store on PostgreSQL (service/store/pg.py) against a real server the tests start and stop
(tests/helpers/postgres.py): the SQL translators, the connection facade, migrations (idempotent, two instances
at once), group commit, concurrent writers from two gateways, the event log's commit order, and the
URL's password kept out of every log and error. Skips, saying why, when PostgreSQL is not installed
(the translator tests run regardless).

(The part without a stack is in tests/app/test_postgres_store.py.)
"""

from __future__ import annotations

import os
import subprocess

from service.store.pg import (
    PostgresDatabase,
)
from tests.helpers.stack import BIN, REPO, Stack, free_port, wait_for

# --- against a server ------------------------------------------------------------------------------

def test_a_stack_on_postgresql_logs_no_password_survives_a_lost_connection_and_backup_refuses(url, postgres_server):
    name = url.rsplit("/", 1)[1]
    with Stack({"WA_DATABASE_URL": url}) as stack:
        assert stack.health()["store"]["writable"] is True
        created = stack.post("/accounts", {"name": "sales"})
        assert created.status == 201, created.raw
        assert stack.post("/accounts", {"name": "sales"}).status == 409
        # The server drops the gateway's connection: the next write reconnects and goes through.
        postgres_server.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        created = stack.post("/accounts", {"name": "support"})
        assert created.status == 201, created.raw
        # PostgreSQL refuses the gateway: /health says the store is not writable (no 500), then recovers.
        postgres_server.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                              f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        down = wait_for(lambda: (h := stack.get("/health")).json()["store"]["writable"] is False and h, 30,
                        "/health: store down")
        assert down.status in (200, 503) and "store is not writable: DatabaseError" in down.json()["reasons"]
        postgres_server.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        wait_for(lambda: stack.get("/health").json()["store"]["writable"] is True, 30, "/health: store back")
        opened = [e for e in stack.log_events() if e.get("event") == "store.opened"]
        assert opened and opened[0]["engine"] == "postgresql" and "***" in opened[0]["location"]
        backup = subprocess.run([str(BIN / "wa-gateway"), "backup", str(stack.tmp / "copy")], env=stack.env,
                                cwd=REPO, capture_output=True, text=True, timeout=60)
        logs = stack.logs()
    assert backup.returncode == 1 and "pg_dump" in backup.stderr, backup.stderr
    assert not (stack.tmp / "copy").exists()
    for text in (logs, backup.stdout, backup.stderr):
        assert postgres_server.password not in text
    rows = PostgresDatabase(url).open()
    try:
        registered = rows.call(lambda c: sorted(r[0] for r in c.execute(
            "SELECT account FROM accounts WHERE registered = 1")))
        assert registered == ["default", "sales", "support"]
    finally:
        rows.close()


def test_a_gateway_that_cannot_reach_postgresql_says_so_in_one_record_without_the_password():
    stack = Stack({"WA_DATABASE_URL": f"postgresql://gw:TopSecret-{os.getpid()}@127.0.0.1:{free_port()}/wa"})
    try:
        stack.start(wait=False)
        record = wait_for(lambda: next((e for e in stack.log_events() if e["event"] == "gateway.store_unavailable"),
                                       None), 30, "gateway.store_unavailable")
        assert "cannot connect to PostgreSQL at postgresql://gw:***@127.0.0.1:" in record["error"]
        logs = stack.logs()
        assert "TopSecret" not in logs and "Traceback" not in logs
    finally:
        stack.cleanup()
