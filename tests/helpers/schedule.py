"""The order in which ``make test`` hands its test files to the xdist workers: the longest first.

``--dist loadfile`` gives each worker a whole file at a time, taking the next one from a queue as it
finishes. xdist's own queue order (``--loadscope-reorder``, its default) is by number of tests, most
first, which put the files with one or two very long tests (the fuzzers, the chaos tests) at the very end:
one worker ran them alone while the others had nothing left. Handing the longest files out first and the
short ones last (the longest-processing-time rule) lets the many short files fill the gaps at the end.

The expected seconds per file come from ``tests/timings.json``, a whole run's per-file totals (set-up, call
and teardown of its tests, as the run measured them under its load: only their ranking matters).
``WA_TEST_TIMINGS=path make test`` writes a new one (the Makefile passes ``--no-loadscope-reorder`` so that
xdist keeps this order). A file the table does not know yet is expected to take its directory's median.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

TIMINGS = Path(__file__).resolve().parent.parent / "timings.json"


class _Item(Protocol):
    nodeid: str


Item = TypeVar("Item", bound=_Item)


def test_file(nodeid: str) -> str:
    """``tests/system/test_x.py::test_y[z]`` -> ``tests/system/test_x.py``."""
    return nodeid.split("::", 1)[0]


def load(path: Path = TIMINGS) -> dict[str, float]:
    """The recorded seconds per test file; an empty table when there is none."""
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except FileNotFoundError:
        return {}


def expected(files: Sequence[str], table: dict[str, float]) -> dict[str, float]:
    """Each file's expected seconds: recorded, else the median of its directory's recorded files (a new
    system test starts stacks as its neighbours do), else 0."""
    by_dir: dict[str, list[float]] = defaultdict(list)
    for name, seconds in table.items():
        by_dir[name.rsplit("/", 1)[0]].append(seconds)
    medians = {d: statistics.median(v) for d, v in by_dir.items()}
    return {f: table.get(f, medians.get(f.rsplit("/", 1)[0], 0.0)) for f in files}


def longest_first(items: list[Item], table: dict[str, float]) -> list[Item]:
    """The items, their files in descending expected time (ties: the collection's order); each file's tests
    stay together and in their own order, so a module's fixtures and its ordered tests are as before."""
    files = list(dict.fromkeys(test_file(item.nodeid) for item in items))
    seconds = expected(files, table)
    collected = {f: i for i, f in enumerate(files)}
    rank = {f: i for i, f in enumerate(sorted(files, key=lambda f: (-seconds[f], collected[f])))}
    return sorted(items, key=lambda item: rank[test_file(item.nodeid)])


class Recorder:
    """Per-file totals of the reports a run produced (on xdist's controller: every worker's reports)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, nodeid: str, duration: float) -> None:
        self.seconds[test_file(nodeid)] += duration

    def write(self, path: Path) -> None:
        table = {f: round(s, 1) for f, s in sorted(self.seconds.items(), key=lambda kv: (-kv[1], kv[0]))}
        path.write_text(json.dumps(table, indent=1) + "\n")
