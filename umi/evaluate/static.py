"""Static evaluation: every gold planner step, teacher-forced, scored with the paper's metrics.

The planner predicts from the gold history; when it routes to the caller (or writes no marker: the reference's
default) the caller answers from the gold history plus the planner's *own* prediction as an `assistant` turn —
the training layout, where the reference's script used a `planner:` label by mistake — and a conclusion goes to
the summarizer the same way. Decoding is greedy (the reference sampled, so its numbers did not repeat), and every
prediction is appended to `predictions.jsonl` as soon as it exists, so re-running the same command resumes where
it stopped.

Order: the steps of one trajectory run in order, so each role's prompt cache carries the trajectory's history from
step to step (step k+1's prompt is step k's plus a few turns). Several trajectories run side by side as one batch
where the engine serves them together (`lanes`), one step of each per batch; an engine that decodes one prompt at a
time gets one trajectory at a time, because interleaving trajectories on one cache would evict each other's
history. Per-role costs (prompt, cached and prefilled tokens) go to `costs.json` beside the predictions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.predict import predict_multi, predict_single
from umi.evaluate.steps import StepKey, kept_planner_turns, select_steps, trajectory_batches
from umi.format import END_OF_TURN, step_text
from umi.models.base import CostLedger, GenerationParams, add_costs
from umi.models.binding import Roles
from umi.schema import Step

Progress = Callable[[int, int], None]  # (done now, total)


def reference_text(step: Step) -> str:
    """The gold step in the reference layout."""
    return step_text(step.planner, step.action if step.route == "caller" else step.answer, step.route)


def done_keys(path: Path) -> set[tuple[int, int]]:
    """(traj, step) pairs already predicted; a truncated last line is ignored (and rewritten on resume)."""
    if not path.exists():
        return set()
    keys: set[tuple[int, int]] = set()
    good: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        keys.add((int(d["traj"]), int(d["step"])))
        good.append(line)
    path.write_text("".join(g + "\n" for g in good), encoding="utf-8")  # drop a half-written line
    return keys


@dataclass
class StaticRun:
    """Where the predictions went, how many steps the run covers and how many an earlier run had done."""

    predictions: Path
    total: int
    skipped: int
    costs: dict[str, dict[str, float]] | None = None  # per role, summed over every run into this folder


def engine_lanes(roles: Roles, role: str, batch_size: int) -> int:
    """How many trajectories to run side by side: an engine with per-role slots (llama.cpp in process, or a
    llama.cpp server behind the HTTP engine) runs as many as each role has slots (`n_parallel`), another HTTP engine
    as many as it sends at once, others (transformers, scripted) a full batch."""
    engine = roles.get(role).engine
    slots = getattr(engine, "slots", None)
    lanes = getattr(slots, "lanes", None) if slots is not None else getattr(engine, "concurrency", None)
    return max(1, min(batch_size, lanes)) if isinstance(lanes, int) else max(1, batch_size)


def run_static(
    data_path: str | Path,
    roles: Roles,
    out_dir: str | Path,
    *,
    single: bool = False,
    limit: int | None = None,
    keys: Sequence[StepKey] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 512,
    on_progress: Progress | None = None,
    roles_source: str = "",
    constrain: bool = False,
    gold_thought: bool = False,
    planner_from: str | Path | None = None,
) -> StaticRun:
    """Predict every (remaining) step and append to `out_dir/predictions.jsonl`.

    `keys` (a subset file) or `limit` choose the steps; what is already in the file is skipped, so the same
    command run again after a crash finishes the job without repeating (or duplicating) a step. `constrain`
    gives every role its grammar (`umi.format.grammar`); each row records whether it ran constrained.
    `gold_thought` (multi-LLM only) gives the caller and summarizer the gold planner turn (see `predict_multi`);
    `planner_from` (an earlier run's folder or predictions file, same planner) gives them its planner's turns.
    """
    if (gold_thought or planner_from) and single:
        raise ValueError("gold_thought and planner_from apply to the multi-LLM roles; drop --single")
    if gold_thought and planner_from:
        raise ValueError("give gold_thought or planner_from, not both")
    turns = None
    if planner_from is not None:
        kept = Path(planner_from)
        kept = kept / "predictions.jsonl" if kept.is_dir() else kept
        if not kept.exists():
            raise ValueError(f"planner_from: {kept} not found; give an earlier run folder of `umi eval static`")
        turns = kept_planner_turns(kept)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trajectories = load_trajectories(data_path).items
    steps = select_steps(iter_steps(trajectories), limit, keys)
    pred_path = out / "predictions.jsonl"
    done = done_keys(pred_path)
    stray = done - {(s.traj, s.step) for s in steps}
    if stray:  # scoring reads the whole file: a smaller selection in the same folder would mix runs silently
        raise ValueError(
            f"{pred_path} already holds {len(stray)} step(s) outside this selection (first {min(stray)}); "
            "use a new --out folder, or the selection that folder was started with"
        )
    (out / "run.json").write_text(
        json.dumps(
            {
                "data": str(Path(data_path).resolve()),
                "roles": roles_source,
                "single": single,
                "limit": limit,
                "subset": None if keys is None else len(keys),
                "batch_size": batch_size,
                "max_new_tokens": max_new_tokens,
                "constrain": constrain,
                "gold_thought": gold_thought,
                "planner_from": None if planner_from is None else str(Path(planner_from).resolve()),
                "shortlist": max((b.shortlist for b in roles.bound().values()), default=0),
                "follow_thought": roles.caller is not None and roles.caller.follow_thought,
                "steps": len(steps),
            },
            indent=2,
        )
    )
    todo = [s for s in steps if (s.traj, s.step) not in done]
    params = GenerationParams(max_new_tokens=max_new_tokens, stop=(END_OF_TURN,))
    predict = predict_single if single else partial(predict_multi, gold_thought=gold_thought, planner_turns=turns)
    lanes = engine_lanes(roles, "backbone" if single else "planner", batch_size)
    ledger = CostLedger()
    finished = len(steps) - len(todo)
    if on_progress:
        on_progress(finished, len(steps))
    try:
        with pred_path.open("a", encoding="utf-8") as f:
            for batch in trajectory_batches(todo, lanes):
                details: list[dict[str, object]] = []
                preds = predict(roles, batch, params, ledger, constrain=constrain, details=details)
                for s, pred, extra in zip(batch, preds, details, strict=True):
                    row = {
                        "traj": s.traj,
                        "step": s.step,
                        "reference": reference_text(s),
                        "prediction": pred,
                        **extra,
                    }
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                finished += len(batch)
                if on_progress:
                    on_progress(finished, len(steps))
    finally:
        write_costs(out / "costs.json", ledger.totals)
    return StaticRun(
        predictions=pred_path, total=len(steps), skipped=len(steps) - len(todo), costs=read_costs(out / "costs.json")
    )


def read_costs(path: Path) -> dict[str, dict[str, float]]:
    """Per-role costs of every run into one output folder (`{}` before the first)."""
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}


def write_costs(path: Path, costs: dict[str, dict[str, float]]) -> None:
    """Add this run's per-role costs to the folder's totals (a resumed run adds its part)."""
    path.write_text(json.dumps(add_costs(read_costs(path), costs), indent=2), encoding="utf-8")
