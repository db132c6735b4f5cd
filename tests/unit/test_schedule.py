"""The order ``make test`` hands test files to its xdist workers (tests/helpers/schedule.py): the longest files
first, each file's tests together and in their own order; the table it reads and the one a run records."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.helpers import schedule


@dataclass
class Item:
    nodeid: str


def ids(items: list[Item]) -> list[str]:
    return [item.nodeid for item in items]


COLLECTED = [Item(n) for n in (
    "tests/app/test_a.py::test_1", "tests/app/test_a.py::test_2",
    "tests/system/test_long.py::test_1", "tests/system/test_long.py::test_2[x]", "tests/system/test_long.py::test_2[y]",
    "tests/system/test_new.py::test_1",
    "tests/system/test_short.py::test_1",
    "tests/unit/test_u.py::test_1", "tests/unit/test_u.py::test_2",
)]
TABLE = {"tests/system/test_long.py": 200.0, "tests/system/test_short.py": 10.0, "tests/system/test_mid.py": 30.0,
         "tests/app/test_a.py": 3.0, "tests/unit/test_u.py": 1.0}


def test_the_longest_files_go_first_and_each_file_stays_whole_and_in_order():
    ordered = schedule.longest_first(COLLECTED, TABLE)
    assert ids(ordered) == [
        "tests/system/test_long.py::test_1", "tests/system/test_long.py::test_2[x]",
        "tests/system/test_long.py::test_2[y]",
        "tests/system/test_new.py::test_1",  # unknown: its directory's median (20 s), before the 10 s file
        "tests/system/test_short.py::test_1",
        "tests/app/test_a.py::test_1", "tests/app/test_a.py::test_2",
        "tests/unit/test_u.py::test_1", "tests/unit/test_u.py::test_2",
    ]


def test_without_a_table_the_collection_order_stays():
    assert ids(schedule.longest_first(COLLECTED, {})) == ids(COLLECTED)


def test_a_run_records_per_file_totals_that_the_next_run_reads(tmp_path):
    recorder = schedule.Recorder()
    for nodeid, seconds in (("tests/system/test_long.py::test_1", 1.5), ("tests/system/test_long.py::test_2[x]", 2.0),
                            ("tests/unit/test_u.py::test_1", 0.25), ("tests/system/test_long.py::test_1", 0.5)):
        recorder.add(nodeid, seconds)
    path = tmp_path / "timings.json"
    recorder.write(path)
    assert json.loads(path.read_text()) == {"tests/system/test_long.py": 4.0, "tests/unit/test_u.py": 0.2}
    assert schedule.load(path) == {"tests/system/test_long.py": 4.0, "tests/unit/test_u.py": 0.2}
    assert schedule.load(tmp_path / "none.json") == {}


def test_the_committed_table_knows_the_long_poles():
    """Without it (or with it emptied) make test would hand out the files in collection order again."""
    table = schedule.load()
    assert table["tests/system/test_worker_fuzz.py"] > 10 * table["tests/unit/test_layering.py"]
