"""The image holds every file the programs load: the Node programs' relative imports, followed from their
entry points, all lie under a directory the Dockerfile copies (a new shared directory, such as
node_worker/lib/, must not be left out of the image while every test on this machine passes)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.dockerfile import instructions
from tests.helpers.stack import REPO

ENTRY_POINTS = ["node_worker/src/main.js", "node_worker/emulator/main.js"]
RELATIVE_IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*['"](\.\.?/[^'"]+)['"]""")


def _loaded(entry: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for target in RELATIVE_IMPORT.findall(path.read_text()):
            todo.append((path.parent / target).resolve())
    return seen


def test_every_file_the_node_programs_import_is_copied_into_the_image():
    copied = []
    for line in instructions("COPY"):
        *sources, _dest = line.split()
        copied += [(REPO / src).resolve() for src in sources]
    loaded = set().union(*(_loaded(REPO / entry) for entry in ENTRY_POINTS))
    assert len(loaded) > 20  # the walk found the programs' modules
    missing = sorted(str(p.relative_to(REPO)) for p in loaded
                     if not any(p == c or c in p.parents for c in copied))
    assert missing == []
