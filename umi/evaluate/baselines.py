"""Reference predictions of our own, no model: gold (must score 100/100/0/100/100), "always call the first tool with
{}", "call the first tool not yet called with {}" (the first name of the planner hint, prompt budget rule 5), and
"call the tool whose document best matches the query (BM25), not yet called, with {}".

Why the lexical one: the first-tool floor says what class balance alone scores; the lexical baseline says what
plain word overlap between the user's query and the tool documents scores at choosing the API — the part of the
planner's job that training must teach a small model (measured on the split's test part, it picks the gold API
more often than the trained 135M roles do).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.static import reference_text
from umi.evaluate.steps import StepKey, select_steps
from umi.format import caller_text, planner_text, step_text
from umi.format.relevance import called_apis, query_of, relevance_order
from umi.schema import Step

BASELINES = ("gold", "first-tool", "first-uncalled", "lexical")


def first_uncalled(step: Step) -> str | None:
    """The first tool in the given order that the history has not called (the first tool when every one has been);
    None when the task has no tools. What a planner that always names the hint's first API would call."""
    tools = [t.Name for t in step.tools if t.Name != "Finish"]
    called = called_apis(step.history)
    return next((name for name in tools if name not in called), tools[0] if tools else None)


def lexical_choice(step: Step) -> str | None:
    """The API a BM25 ranking of the tool documents against the user's query puts first
    (`umi.format.relevance`), skipping APIs the history already called (a repeat is rarely the gold call: 10 of
    the subset's 53 later calls); None when the task has no tools."""
    tools = [t for t in step.tools if t.Name != "Finish"]
    if not tools:
        return None
    ranked = [tools[i].Name for i in relevance_order(query_of(step.history), tools)]
    called = called_apis(step.history)
    return next((name for name in ranked if name not in called), ranked[0])


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
    beat: the call-heavy class balance alone gives it ~74 Plan ACC on the out-of-domain set; `lexical` routes like
    `first-tool` but calls `lexical_choice`'s API. `limit` or `keys` (a subset file's steps) choose the steps, as in
    `run_static`.
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
                if kind == "lexical":
                    api = lexical_choice(s) or "none"
                elif kind == "first-uncalled":
                    api = first_uncalled(s) or "none"
                else:
                    api = first
                pred = step_text(planner_text(None, "caller"), caller_text(api, "{}"), "caller")
            f.write(json.dumps({"traj": s.traj, "step": s.step, "reference": ref, "prediction": pred}) + "\n")
    (out / "run.json").write_text(
        json.dumps({"data": str(Path(data_path).resolve()), "baseline": kind, "limit": limit}, indent=2)
    )
    return path
