import pytest

from tests.stack import Stack


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
