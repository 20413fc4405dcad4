"""Which steps a static evaluation runs, and in which order: subsets (the first N, a seeded sample, a subset
file) and the trajectory-ordered batches that let each role's prompt cache carry a trajectory's history from step
to step. Apart from `umi.evaluate.static` so that baselines and benchmarks choose the same steps without loading
the model-calling code.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from umi.format.history import render_turn
from umi.schema import Step

StepKey = tuple[int, int]


def trajectory_batches(steps: Sequence[Step], lanes: int) -> Iterator[list[Step]]:
    """Batches of at most `lanes` steps, each from another trajectory, every trajectory's steps in step order:
    lane j keeps one trajectory until its last step, then takes the next trajectory in file order."""
    by_traj: dict[int, list[Step]] = {}
    for s in steps:
        by_traj.setdefault(s.traj, []).append(s)
    waiting = deque(deque(sorted(v, key=lambda s: s.step)) for _, v in sorted(by_traj.items()))
    active: list[deque[Step]] = []
    while waiting or active:
        while len(active) < lanes and waiting:
            active.append(waiting.popleft())
        yield [q.popleft() for q in active]
        active = [q for q in active if q]


def select_steps(steps: list[Step], limit: int | None = None, keys: Sequence[StepKey] | None = None) -> list[Step]:
    """A fixed, documented subset: the steps named in `keys` (from `--steps FILE`), else the first `limit` steps in
    file order, else all. Unknown keys are an error, so a subset file for another test set cannot pass silently."""
    if keys is not None:
        by_key = {(s.traj, s.step): s for s in steps}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise ValueError(f"{len(missing)} step(s) of the subset are not in the data, first {missing[0]}")
        return [by_key[k] for k in dict.fromkeys(keys)]
    return steps if limit is None else steps[:limit]


def sample_step_keys(steps: Sequence[Step], n: int, seed: int) -> list[StepKey]:
    """`n` steps drawn without replacement by `random.Random(seed)`, in file order: a subset spread over many
    trajectories (the first N steps in file order cover only a handful), and the same one on every machine."""
    import random

    picked = random.Random(seed).sample(range(len(steps)), min(n, len(steps)))
    return sorted((steps[i].traj, steps[i].step) for i in picked)


def read_step_keys(path: str | Path) -> list[StepKey]:
    """A subset file: a JSON list of `[traj, step]` pairs or `{"traj", "step"}` objects, or JSON lines of such
    objects (a `predictions.jsonl` works, to re-run exactly the steps of another run)."""
    text = Path(path).read_text(encoding="utf-8").strip()
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(items, dict):
        items = items.get("steps", [])
    keys: list[StepKey] = []
    for item in items:
        if isinstance(item, dict):
            keys.append((int(item["traj"]), int(item["step"])))
        else:
            keys.append((int(item[0]), int(item[1])))
    return keys


def kept_planner_turns(predictions: str | Path) -> dict[StepKey, tuple[str, str]]:
    """(thought, route) per step from an earlier run's `predictions.jsonl`: the planner text each step's caller or
    summarizer was handed (`step_text` writes it first, as an `assistant` turn), and its route."""
    out: dict[StepKey, tuple[str, str]] = {}
    head = render_turn("assistant", "\x00").split("\x00")
    for n, line in enumerate(Path(predictions).read_text(encoding="utf-8").splitlines()):
        try:
            row = json.loads(line)
            pred, key = str(row["prediction"]), (int(row["traj"]), int(row["step"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{predictions}, line {n + 1}: not a prediction row ({exc})") from exc
        for label, route in (("caller", "caller"), ("conclusion", "conclusion")):
            cut = pred.find(f"{head[1]}{label}: ")
            if pred.startswith(head[0]) and cut >= 0:
                out[key] = (pred[len(head[0]) : cut], route)
                break
        else:
            out[key] = (pred, "give up")
    return out
