"""Every command the docs give a reader runs, as written, in order: the README's five-minute path verbatim
(``make sandbox`` and its receiver in the background, the message arriving at the receiver), then each page
of docs/ in the site's order, all against that one sandbox stack. A block that cannot run here says why
above it (``<!-- not run: ... -->``); a block the runner cannot classify fails the test, and so does a
command that fails (a wrong flag, a missing key, a path that moved). What the runner changes (ports, data
dir, directory) and nothing more: tests/helpers/doc_runner.py."""

from __future__ import annotations

import pytest

from tests.helpers import doc_blocks, doc_runner
from tests.helpers.stack import REPO

pytestmark = pytest.mark.system

PAGES = doc_blocks.pages()


@pytest.fixture(scope="module")
def runner():
    problem = doc_runner.installed()
    if problem is not None:
        pytest.fail(problem)
    running = doc_runner.DocRunner()
    yield running
    running.close()


@pytest.mark.parametrize("doc", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_the_blocks_of_each_page_run_in_order(runner, doc):
    """One page after the other (README.md first: the others assume its sandbox, its linked phone and the
    KEY it exported, as a reader who followed it has them)."""
    if runner.failed:
        pytest.skip(f"{runner.failed} failed, and the blocks of the pages after it start where it left off")
    found = doc_blocks.blocks(doc)
    problems = [f"{b.where}: {p}" for b in found if (p := b.problem())]
    assert problems == []
    for block in found:
        try:
            runner.run(block)
        except BaseException:
            runner.failed = block.where
            raise
