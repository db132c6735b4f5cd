"""The documentation's links hold: every relative link and #anchor of README.md and docs/*.md resolves (as
GitHub renders them), every page is in the site, the site builds with `mkdocs build --strict` (which also
fails on a link between pages that does not resolve), and every fenced block says what it is, so the docs
test (tests/system/test_docs_blocks.py) runs each command or knows why not (tests/helpers/doc_blocks.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import doc_blocks
from tests.helpers.stack import REPO

PAGES = doc_blocks.pages()
IDS = [str(p.relative_to(REPO)) for p in PAGES]


def broken_links(doc: Path) -> list[str]:
    broken = []
    for number, target in doc_blocks.links(doc):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{doc.name}:{number}: {target}: no such file")
        elif not file.is_relative_to(REPO):
            broken.append(f"{doc.name}:{number}: {target}: outside the repository")
        elif anchor and (file.suffix != ".md" or anchor not in doc_blocks.anchors(file)):
            broken.append(f"{doc.name}:{number}: {target}: no heading makes #{anchor}")
    return broken


@pytest.mark.parametrize("doc", PAGES, ids=IDS)
def test_every_relative_link_and_anchor_resolves(doc):
    assert broken_links(doc) == []


@pytest.mark.parametrize("doc", PAGES, ids=IDS)
def test_every_fenced_block_says_what_it_is(doc):
    problems = [f"{b.where}: {p}" for b in doc_blocks.blocks(doc) if (p := b.problem())]
    assert problems == []


def test_every_page_of_docs_is_in_the_site():
    assert sorted((REPO / "docs").glob("*.md")) == sorted(PAGES[1:])


def test_the_readme_links_every_page():
    """The README is the way in on GitHub: a page it does not name is a page nobody finds."""
    linked = {(REPO / target.partition("#")[0]).resolve() for _, target in doc_blocks.links(REPO / "README.md")}
    assert [str(p.relative_to(REPO)) for p in PAGES[1:] if p not in linked and p.name != "index.md"] == []


def test_the_site_builds_strict(tmp_path):
    """mkdocs --strict: a link between pages or an #anchor that does not resolve is an error."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()
