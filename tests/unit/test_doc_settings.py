"""Every setting has its row: each WA_* variable the gateway's or the worker's settings read is a row of the
table in docs/configuration.md, and each row names a variable some program still reads (the emulator's own
WA_EMULATOR_* are in node_worker/emulator/README.md). A setting added without docs, or removed with its
docs left behind, fails here."""

from __future__ import annotations

import re

from tests.helpers.stack import REPO

READERS = {  # the settings modules and how each names a variable it reads
    REPO / "service" / "settings.py": re.compile(r"""["'](WA_[A-Z0-9_]+)["']"""),
    REPO / "service" / "media" / "config.py": re.compile(r"""["'](WA_[A-Z0-9_]+)["']"""),
    REPO / "service" / "media" / "store_config.py": re.compile(r"""["'](WA_[A-Z0-9_]+)["']"""),
    REPO / "node_worker" / "src" / "settings.js": re.compile(r"""(?:env\.|["'])(WA_[A-Z0-9_]+)"""),
}
CODE = [REPO / "service", REPO / "node_worker" / "src", REPO / "node_worker" / "lib", REPO / "node_worker" / "emulator",
        REPO / "conf"]


def documented() -> set[str]:
    rows = set()
    for line in (REPO / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("| `WA_"):
            rows |= set(re.findall(r"`(WA_[A-Z0-9_]+)`", line.split("|")[1]))
    return rows


def read_by_settings() -> set[str]:
    return {name for path, pattern in READERS.items() for name in pattern.findall(path.read_text())}


def read_anywhere(name: str) -> bool:
    return any(name in path.read_text(errors="replace") for root in CODE for path in root.rglob("*")
               if path.suffix in {".py", ".js", ".conf"} and "node_modules" not in path.parts)


def test_every_setting_the_programs_read_has_a_row():
    assert sorted(read_by_settings() - documented()) == []


def test_every_row_names_a_setting_a_program_reads():
    assert sorted(name for name in documented() if not read_anywhere(name)) == []
