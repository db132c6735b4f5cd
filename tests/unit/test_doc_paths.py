"""Every file or directory of the repository that the README and docs/ name exists: a module moved or
renamed without its docs fails here (the rooms in docs/architecture.md are only useful while true)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.stack import REPO

DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
# A path under one of the repository's top-level directories, as the docs write them (`service/http/app.py`,
# node_worker/src/session/, tests/system/test_fuzz.py::a_test); globs and placeholders are not paths.
PATH = re.compile(r"(?<![\w./-])((?>(?:service|node_worker|tests|bench|clients|conf|deploy|docs)/[\w./-]*[\w/]))"
                  r"(?![.-]?[*+<])")
# A section that names files still to be written (docs/architecture.md: where new code goes).
FUTURE = re.compile(r"^## Where new code goes$.*?(?=^## |\Z)", re.M | re.S)


def _named(text: str) -> set[str]:
    return set(PATH.findall(FUTURE.sub("", text)))


def _ignored(path: str) -> bool:
    """A file the user makes (deploy/.env) is git-ignored, and named before it exists."""
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_doc_names_exists(doc):
    named = _named((REPO / doc).read_text())
    missing = sorted(p for p in named if not (REPO / p.split("::")[0]).exists() and not _ignored(p))
    assert missing == []
