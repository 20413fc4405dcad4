"""The static-subset tables list, under each row, the commands that produced its predictions.

A row of `constrained_static.md` / `glpft_small.md` can be resumed over several sessions, so the file's header (the
last command, often `--report-only`) does not say where the row's numbers came from; `benchmarks/_static_subset.py`
appends one provenance record per command that added predictions, and the report lists them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _static_subset as subset  # noqa: E402


def _write_rows(path: Path, n: int) -> None:
    path.write_text("".join(json.dumps({"traj": 0, "step": i}) + "\n" for i in range(n)), encoding="utf-8")


def test_rows_from_two_commands_and_older_rows_are_each_named(tmp_path: Path) -> None:
    kept = tmp_path / "cfg.jsonl"
    _write_rows(kept, 8)  # 8 rows made before records were kept
    subset.record_provenance(kept, "python benchmarks/a.py", 8, 8, "t0", 0.5)  # added nothing: no record
    _write_rows(kept, 20)
    subset.record_provenance(kept, "python benchmarks/a.py --threads 1", 8, 20, "t1", 1.0)
    _write_rows(kept, 30)
    subset.record_provenance(kept, "python benchmarks/b.py", 20, 30, "t2", 2.04)
    assert subset.provenance_lines(kept) == [
        "rows 1–8: runs before provenance was recorded (commands not kept)",
        "rows 9–20: `python benchmarks/a.py --threads 1`, started t1, load 1.0",
        "rows 21–30: `python benchmarks/b.py`, started t2, load 2.04",
    ]


def test_a_crash_cut_last_line_is_not_counted(tmp_path: Path) -> None:
    kept = tmp_path / "cfg.jsonl"
    _write_rows(kept, 3)
    with kept.open("a", encoding="utf-8") as f:
        f.write('{"traj": 0, "st')
    assert subset.count_rows(kept) == 3
    assert subset.count_rows(tmp_path / "missing.jsonl") == 0
    assert subset.provenance_lines(tmp_path / "missing.jsonl") == []
