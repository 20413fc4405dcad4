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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from umi.agent.marker import finish_backbones, finish_markers, needs_marker, needs_tail
from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.steps import StepKey, kept_planner_turns, select_steps, trajectory_batches
from umi.format import (
    END_OF_TURN,
    PromptBudget,
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
from umi.format.grammar import role_grammar
from umi.format.relevance import shortlist
from umi.models.base import Completion, CostLedger, GenerationParams, add_costs
from umi.models.binding import RoleBinding, Roles
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
    """Where the predictions went, how many steps the run covers and how many an earlier run had done."""

    predictions: Path
    total: int
    skipped: int
    costs: dict[str, dict[str, float]] | None = None  # per role, summed over every run into this folder


def complete_constrained(
    role: str,
    binding: RoleBinding,
    prompts: Sequence[str],
    steps: Sequence[Step],
    params: GenerationParams,
    *,
    family: str,
    constrain: bool,
) -> list[Completion]:
    """`binding.complete` with each step's role grammar when `constrain` (and the role allows it): prompts that
    share a grammar (the same tools) go to the engine together, results come back in order."""
    if not (constrain and binding.constrain):
        return binding.complete(prompts, params)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        groups.setdefault(role_grammar(role, shortlist(s.history, s.tools, binding.shortlist), family), []).append(i)
    out: dict[int, Completion] = {}
    for grammar, idx in groups.items():
        done = binding.complete([prompts[i] for i in idx], replace(params, grammar=grammar))  # enforced or raises
        out.update(zip(idx, done, strict=True))
    return [out[i] for i in range(len(prompts))]


def _finish_markers(
    planner: RoleBinding,
    prompts: Sequence[str],
    outs: Sequence[Completion],
    params: GenerationParams,
    family: str,
    ledger: CostLedger,
) -> list[str]:
    """The planner texts, cut constrained thoughts finished with their marker as the agent does
    (`umi.agent.marker`), so constrained turns always carry a route."""
    texts = [c.text for c in outs]
    cut = [i for i, c in enumerate(outs) if needs_marker(c)]
    done = finish_markers(planner, [prompts[i] for i in cut], [texts[i] for i in cut], params, family)
    ledger.add("planner", [d.completion for d in done])
    for i, d in zip(cut, done, strict=True):
        texts[i] = d.text
    return texts


def _fill(
    outputs: dict[int, str],
    role: str,
    idx: Sequence[int],
    prompts: Sequence[str],
    roles: Roles,
    steps: Sequence[Step],
    params: GenerationParams,
    ledger: CostLedger,
    *,
    family: str,
    constrain: bool,
) -> None:
    """Run `role` on the steps `idx` (their `prompts`), cost it, and put each stripped text into `outputs`."""
    done = complete_constrained(
        role, roles.get(role), prompts, [steps[i] for i in idx], params, family=family, constrain=constrain
    )
    ledger.add(role, done)
    for i, c in zip(idx, done, strict=True):
        outputs[i] = c.text.strip()


def predict_multi(
    roles: Roles,
    steps: Sequence[Step],
    params: GenerationParams,
    ledger: CostLedger | None = None,
    *,
    constrain: bool = False,
    details: list[dict[str, object]] | None = None,
    gold_thought: bool = False,
    planner_turns: Mapping[StepKey, tuple[str, str]] | None = None,
) -> list[str]:
    """Predictions for a batch of steps with planner, caller and summarizer (their costs added to `ledger`).
    Prompts are rendered under the roles' prompt budget (their manifest's), as in training. `details` (if given)
    gets one record per step: whether the planner wrote a marker and which roles ran constrained.

    `gold_thought` skips the planner and hands the caller (or summarizer) the gold thought and route instead of
    the planner's own: a diagnostic that separates what the caller can do from what the planner gives it (Plan
    ACC is then 100 by construction and says nothing).

    `planner_turns` ((thought, route) per step, `kept_planner_turns`) skips the planner too, handing on the turns
    an earlier run's planner wrote: with the same planner, greedy, those are the turns it would write again, so a
    change to the caller or summarizer (a shortlist, another adapter) is measured without paying the planner, the
    costliest role, again."""
    family = roles.family
    budget = PromptBudget.from_dict(roles.prompt_budget)
    ledger = ledger if ledger is not None else CostLedger()
    thoughts: list[str]
    routes: list[str]
    flags: list[dict[str, object]]
    if gold_thought:
        thoughts, routes = [s.planner for s in steps], [s.route for s in steps]
        flags = [{"planner_marker": True, "constrained": constrain, "gold_thought": True} for _ in steps]
    elif planner_turns is not None:
        missing = [(s.traj, s.step) for s in steps if (s.traj, s.step) not in planner_turns]
        if missing:
            raise ValueError(f"the kept planner turns have no step {missing[0]}; rerun that run on these steps first")
        thoughts, routes = map(list, zip(*(planner_turns[(s.traj, s.step)] for s in steps), strict=True))
        flags = [{"planner_marker": True, "constrained": constrain, "planner_kept": True} for _ in steps]
    else:
        thoughts, routes, flags = _plan(roles, steps, params, ledger, family, budget, constrain)
    call_idx = [i for i, r in enumerate(routes) if r in ("caller", "none")]
    sum_idx = [i for i, r in enumerate(routes) if r == "conclusion"]
    outputs: dict[int, str] = {}
    if call_idx:
        prompts = [
            caller_prompt(
                steps[i].tools,
                [*steps[i].history, _assistant(thoughts[i])],
                thoughts[i],
                family=family,
                budget=budget,
            )
            for i in call_idx
        ]
        _fill(outputs, "caller", call_idx, prompts, roles, steps, params, ledger, family=family, constrain=constrain)
    if sum_idx:
        prompts = [
            summarizer_prompt([*steps[i].history, _assistant(thoughts[i])], family=family, budget=budget)
            for i in sum_idx
        ]
        _fill(outputs, "summarizer", sum_idx, prompts, roles, steps, params, ledger, family=family, constrain=constrain)
    if details is not None:
        details.extend(flags)
    return [step_text(thoughts[i], outputs.get(i), routes[i]) for i in range(len(steps))]  # type: ignore[arg-type]


def _plan(
    roles: Roles,
    steps: Sequence[Step],
    params: GenerationParams,
    ledger: CostLedger,
    family: str,
    budget: PromptBudget | None,
    constrain: bool,
) -> tuple[list[str], list[str], list[dict[str, object]]]:
    """The planner's turns for `steps` (markers finished where a constrained turn was cut): each step's thought as
    the caller and summarizer will see it, its route, and its record (marker written, constrained)."""
    planner = roles.get("planner")
    planner_prompts = [planner_prompt(s.tools, s.history, family=family, budget=budget) for s in steps]
    planner_out = complete_constrained(
        "planner",
        planner,
        planner_prompts,
        steps,
        params,
        family=family,
        constrain=constrain,
    )
    ledger.add("planner", planner_out)
    texts = _finish_markers(planner, planner_prompts, planner_out, params, family, ledger)
    thoughts: list[str] = []
    routes: list[str] = []
    flags: list[dict[str, object]] = []
    for text, c in zip(texts, planner_out, strict=True):
        p = parse_planner(text)
        # The reference's post-processing: an empty, "." or "," output becomes "none" (leading ": " is already cut).
        thoughts.append("none" if p.empty else (p.thought if p.has_marker else p.raw))
        routes.append(p.route)
        flags.append({"planner_marker": p.has_marker, "constrained": c.constrained})
    return thoughts, routes, flags


def predict_single(
    roles: Roles,
    steps: Sequence[Step],
    params: GenerationParams,
    ledger: CostLedger | None = None,
    *,
    constrain: bool = False,
    details: list[dict[str, object]] | None = None,
) -> list[str]:
    """Predictions of a single backbone model, mapped into the same reference layout."""
    family = roles.family
    budget = PromptBudget.from_dict(roles.prompt_budget)
    prompts = [backbone_prompt(s.tools, s.history, family=family, budget=budget) for s in steps]
    outs = complete_constrained(
        "backbone", roles.get("backbone"), prompts, steps, params, family=family, constrain=constrain
    )
    texts = [c.text for c in outs]
    cut = [i for i, c in enumerate(outs) if needs_tail(c)]  # finished as the agent finishes them
    done = finish_backbones(
        roles.get("backbone"),
        [prompts[i] for i in cut],
        [texts[i] for i in cut],
        [shortlist(steps[i].history, steps[i].tools, roles.get("backbone").shortlist) for i in cut],
        params,
    )
    for i, d in zip(cut, done, strict=True):
        texts[i] = d.text
    if ledger is not None:
        ledger.add("backbone", [*outs, *(d.completion for d in done)])
    if details is not None:
        details.extend({"constrained": c.constrained, "tail_finished": i in cut} for i, c in enumerate(outs))
    preds: list[str] = []
    for text in texts:
        b = parse_backbone(text)
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
