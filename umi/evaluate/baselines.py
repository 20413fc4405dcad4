"""Reference predictions of our own: gold (must score 100/100/0/100/100) and "always call the first tool with {}"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.static import reference_text
from umi.evaluate.steps import StepKey, select_steps
from umi.format import caller_text, planner_text, step_text

BASELINES = ("gold", "first-tool")


def write_baseline(
    kind: str,
    data_path: str | Path,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    keys: Sequence[StepKey] | None = None,
) -> Path:
    """Write a run folder (`predictions.jsonl`, `run.json`) that `umi eval score`/`report` read like a model's.

    `gold` checks the scorer end to end (it must give 100/100/0/100/100); `first-tool` is the floor a model must
    beat: the call-heavy class balance alone gives it ~74 Plan ACC on the out-of-domain set. `limit` or `keys` (a
    subset file's steps) choose the steps, as in `run_static`.
    """
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; use one of {', '.join(BASELINES)}")
    trajectories = load_trajectories(data_path).items
    steps = select_steps(iter_steps(trajectories), limit, keys)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "predictions.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for s in steps:
            ref = reference_text(s)
            if kind == "gold":
                pred = ref
            else:
                first = trajectories[s.traj].tool_names[0] if trajectories[s.traj].tools else "none"
                pred = step_text(planner_text(None, "caller"), caller_text(first, "{}"), "caller")
            f.write(json.dumps({"traj": s.traj, "step": s.step, "reference": ref, "prediction": pred}) + "\n")
    (out / "run.json").write_text(
        json.dumps({"data": str(Path(data_path).resolve()), "baseline": kind, "limit": limit}, indent=2)
    )
    return path
