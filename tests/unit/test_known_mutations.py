"""Known mutations, and the tests that catch them (issue 7): the list is tests/unit/known_mutations.md (one deliberate
bug per item, applied by hand, and the tests that then failed); here, that every test it names exists."""


from __future__ import annotations

import re

from tests.helpers.stack import REPO

LIST = REPO / "tests/unit/known_mutations.md"


def listed() -> list[tuple[str, str]]:
    return re.findall(r"^    ((?:tests|node_worker/test)/\S+?)::(.+)$", LIST.read_text(), re.M)


def test_the_list_is_not_empty():
    assert len(listed()) >= 14


def test_every_test_the_list_names_exists():
    """A renamed or deleted test would silently drop a mutation from the list."""
    for path, name in listed():
        source = (REPO / path).read_text()
        if path.endswith(".py"):
            assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.M), f"{path}::{name}"
        else:
            assert name in source.replace("\\'", "'"), f"{path}::{name}"
