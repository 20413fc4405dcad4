"""Static evaluation: every gold planner step, teacher-forced, scored with the paper's metrics.

The planner predicts from the gold history; when it routes to the caller (or writes no marker: the reference's
default) the caller answers from the gold history plus the planner's *own* prediction as an `assistant` turn —
the training layout, where the reference's script used a `planner:` label by mistake — and a conclusion goes to
the summarizer the same way. Decoding is greedy (the reference sampled, so its numbers did not repeat), prompts
are batched in order of length, and every prediction is appended to `predictions.jsonl` as soon as it exists, so
re-running the same command resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.format import (
    END_OF_TURN,
    backbone_prompt,
    caller_prompt,
    caller_text,
    parse_backbone,
    parse_planner,
    planner_prompt,
    planner_text,
    step_text,
    summarizer_prompt,
)
from umi.models.base import GenerationParams
from umi.models.roles import Roles
from umi.schema import Step, Turn

Progress = Callable[[int, int], None]  # (done now, total)


def reference_text(step: Step) -> str:
    """The gold step in the reference layout."""
    return step_text(step.planner, step.action if step.route == "caller" else step.answer, step.route)


def _assistant(value: str) -> Turn:
    return Turn.model_validate({"from": "assistant", "value": value})


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
    predictions: Path
    total: int
    skipped: int


def predict_multi(roles: Roles, steps: Sequence[Step], params: GenerationParams) -> list[str]:
    """Predictions for a batch of steps with planner, caller and summarizer."""
    family = roles.family
    planner_out = roles.get("planner").complete(
        [planner_prompt(s.tools, s.history, family=family) for s in steps], params
    )
    thoughts: list[str] = []
    routes: list[str] = []
    for c in planner_out:
        p = parse_planner(c.text)
        text = p.thought if p.has_marker else p.raw
        thoughts.append(text if text.strip(" .,") else "none")
        routes.append(p.route)
    call_idx = [i for i, r in enumerate(routes) if r in ("caller", "none")]
    sum_idx = [i for i, r in enumerate(routes) if r == "conclusion"]
    outputs: dict[int, str] = {}
    if call_idx:
        prompts = [
            caller_prompt(steps[i].tools, [*steps[i].history, _assistant(thoughts[i])], thoughts[i], family=family)
            for i in call_idx
        ]
        for i, c in zip(call_idx, roles.get("caller").complete(prompts, params), strict=True):
            outputs[i] = c.text.strip()
    if sum_idx:
        prompts = [summarizer_prompt([*steps[i].history, _assistant(thoughts[i])], family=family) for i in sum_idx]
        for i, c in zip(sum_idx, roles.get("summarizer").complete(prompts, params), strict=True):
            outputs[i] = c.text.strip()
    return [step_text(thoughts[i], outputs.get(i), routes[i]) for i in range(len(steps))]  # type: ignore[arg-type]


def predict_single(roles: Roles, steps: Sequence[Step], params: GenerationParams) -> list[str]:
    """Predictions of a single backbone model, mapped into the same reference layout."""
    family = roles.family
    outs = roles.get("backbone").complete([backbone_prompt(s.tools, s.history, family=family) for s in steps], params)
    preds: list[str] = []
    for c in outs:
        b = parse_backbone(c.text)
        thought = b.thought or None
        if b.kind == "call":
            preds.append(
                step_text(
                    planner_text(thought, "caller"), caller_text(b.action or "none", b.action_input or "{}"), "caller"
                )
            )
        elif b.kind == "conclusion":
            preds.append(step_text(planner_text(thought, "conclusion"), b.answer or "", "conclusion"))
        elif b.kind == "give up":
            preds.append(planner_text(thought, "give up"))
        else:
            preds.append(step_text(b.raw.strip() or "none", "", "none"))
    return preds


def select_steps(steps: list[Step], limit: int | None) -> list[Step]:
    """A fixed, documented subset: the first `limit` steps in file order (all when None)."""
    return steps if limit is None else steps[:limit]


def run_static(
    data_path: str | Path,
    roles: Roles,
    out_dir: str | Path,
    *,
    single: bool = False,
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 512,
    on_progress: Progress | None = None,
    roles_source: str = "",
) -> StaticRun:
    """Predict every (remaining) step and append to `out_dir/predictions.jsonl`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trajectories = load_trajectories(data_path).items
    steps = select_steps(iter_steps(trajectories), limit)
    (out / "run.json").write_text(
        json.dumps(
            {
                "data": str(Path(data_path).resolve()),
                "roles": roles_source,
                "single": single,
                "limit": limit,
                "steps": len(steps),
            },
            indent=2,
        )
    )
    pred_path = out / "predictions.jsonl"
    done = done_keys(pred_path)
    todo = [s for s in steps if (s.traj, s.step) not in done]
    family = roles.family

    def length(s: Step) -> int:
        return len(
            backbone_prompt(s.tools, s.history, family=family)
            if single
            else planner_prompt(s.tools, s.history, family=family)
        )

    todo.sort(key=length)
    params = GenerationParams(max_new_tokens=max_new_tokens, stop=(END_OF_TURN,))
    predict = predict_single if single else predict_multi
    finished = len(steps) - len(todo)
    if on_progress:
        on_progress(finished, len(steps))
    with pred_path.open("a", encoding="utf-8") as f:
        for i in range(0, len(todo), batch_size):
            batch = todo[i : i + batch_size]
            for s, pred in zip(batch, predict(roles, batch, params), strict=True):
                row = {"traj": s.traj, "step": s.step, "reference": reference_text(s), "prediction": pred}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            finished += len(batch)
            if on_progress:
                on_progress(finished, len(steps))
    return StaticRun(predictions=pred_path, total=len(steps), skipped=len(steps) - len(todo))
