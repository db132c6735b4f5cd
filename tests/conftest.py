import os
from pathlib import Path

import pytest

from tests.helpers import postgres, schedule
from tests.helpers import stack as stack_module
from tests.helpers.stack import (
    BOUND_PORTS,
    STARTED_SESSIONS,
    Stack,
    listening,
    session_processes,
)

TIMINGS: list[schedule.Recorder] = []  # one when WA_TEST_TIMINGS names a file to write the per-file seconds to


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL for this test session (one per xdist worker), stopped at its end; the
    tests that need it skip, saying why, when the server binaries are missing (tests/helpers/postgres.py)."""
    try:
        server = postgres.PostgresServer()
    except postgres.PostgresUnavailable as exc:
        pytest.skip(str(exc))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _database_switch(request):
    """WA_TEST_DATABASE=postgresql: every Stack and every ``postgres.store_database()`` gets a fresh
    database on the session's PostgreSQL instead of SQLite in its data dir."""
    if not postgres.wanted():
        yield
        return
    server = request.getfixturevalue("postgres_server")
    stack_module.DATABASE_FACTORY = server.create_database
    postgres.SERVER = server
    yield
    stack_module.DATABASE_FACTORY = None
    postgres.SERVER = None


@pytest.fixture
def url(postgres_server):
    """A fresh database on the session's PostgreSQL: its URL (the store tests and the stack on PostgreSQL)."""
    return postgres_server.create_database()


@pytest.fixture(scope="module")
def secrets() -> dict[str, str]:
    """A generated API key and webhook secret, as the deploy docs tell an operator to make (tests/helpers/deploy.py)."""
    from tests.helpers.deploy import generated_secrets  # imported here: only the deploy tests need its libraries

    return generated_secrets()


@pytest.fixture
def make_stack():
    """Build stacks with extra settings; every one is stopped and its files removed afterwards."""
    stacks: list[Stack] = []

    def build(extra_env=None, *, sandbox=False, start=True) -> Stack:
        stack = Stack(extra_env, sandbox=sandbox)
        stacks.append(stack)
        return stack.start() if start else stack

    yield build
    for stack in stacks:
        stack.cleanup()


@pytest.fixture(scope="module")
def stack():
    """One running stack shared by the read-mostly tests of a module."""
    with Stack() as running:
        yield running


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any process a test started is still alive or any port it used still listens:
    a leak here means some cleanup path does not work, and the next tests inherit its processes."""
    for recorder in TIMINGS:
        recorder.write(Path(os.environ["WA_TEST_TIMINGS"]))
    leaked = {sid: pids for sid in STARTED_SESSIONS if (pids := session_processes(sid))}
    ports = sorted(port for port in BOUND_PORTS if listening(port))
    if leaked or ports:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"LEAK: processes still alive by stack session {leaked}; ports still listening {ports}"
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED



def pytest_configure(config):
    """``WA_TEST_TIMINGS=path``: record each test file's total seconds there at the end (tests/helpers/schedule.py);
    on xdist's controller only, which sees every worker's reports."""
    if os.environ.get("WA_TEST_TIMINGS") and not hasattr(config, "workerinput"):
        TIMINGS.append(schedule.Recorder())


def pytest_runtest_logreport(report):
    for recorder in TIMINGS:
        recorder.add(report.nodeid, report.duration)


def pytest_collection_modifyitems(config, items):
    """On an xdist worker (``make test``), the longest files first: the order the workers are handed them in."""
    if hasattr(config, "workerinput"):
        items[:] = schedule.longest_first(items, schedule.load())
