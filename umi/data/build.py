"""One entry function per data job: read any supported input, build and write the row sets."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from umi.data.io import DataError, Loaded, load_trajectories, write_json, write_rows
from umi.data.rows import ROW_SETS, RowSets, build_rows
from umi.data.toolbench import load_answer_folder
from umi.format import PromptBudget

BUDGET_FILE = "budget.json"


def read_budget(rows_dir: str | Path) -> PromptBudget | None:
    """The prompt budget a `umi data build` folder was written with (None: unbudgeted)."""
    path = Path(rows_dir) / BUDGET_FILE
    return PromptBudget.from_dict(json.loads(path.read_text())) if path.exists() else None


def load_any(path: str | Path, *, compat: bool = False, skip_invalid: bool = False) -> Loaded:
    """A trajectory file (stage-2 layout) or a folder of ToolBench answer files."""
    p = Path(path)
    if p.is_dir():
        return load_answer_folder(p, compat=compat, skip_invalid=skip_invalid)
    if not p.exists():
        raise DataError(p, "no such file or folder; give a trajectory JSON file or a ToolBench answer folder")
    return load_trajectories(p, skip_invalid=skip_invalid)


@dataclass
class BuildResult:
    rows: RowSets
    loaded: Loaded
    seconds: float
    out_dir: Path


def build_dataset(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    compat: bool = False,
    skip_invalid: bool = False,
    family: str = "toolbench",
    budget: PromptBudget | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BuildResult:
    """`umi data build`: write backbone/planner/caller/summarizer/multitask JSON files into `out_dir`.

    Under a `budget`, `out_dir/budget.json` records it: `umi train` copies it into the run's manifest, so every
    prompt the trained roles see later is rendered the way their rows were."""
    start = time.perf_counter()
    loaded = load_any(input_path, compat=compat, skip_invalid=skip_invalid)
    rows = build_rows(loaded.items, compat=compat, family=family, budget=budget, on_progress=on_progress)
    seconds = time.perf_counter() - start
    out = Path(out_dir)
    for name in ROW_SETS:
        write_rows(out / f"{name}.json", rows.get(name))
    if budget is not None:
        write_json(out / BUDGET_FILE, budget.as_dict())
    elif (out / BUDGET_FILE).exists():
        (out / BUDGET_FILE).unlink()
    return BuildResult(rows=rows, loaded=loaded, seconds=seconds, out_dir=out)


def file_hash(path: str | Path) -> str:
    """sha256 of a data file (recorded in training manifests)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_trajectories(path: str | Path, loaded: Loaded) -> None:
    write_json(path, [t.as_json_dict() for t in loaded.items])
