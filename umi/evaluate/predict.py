"""Predictions of the static evaluation for one batch of steps: the multi-LLM roles (planner, then caller or
summarizer on the planner's own turn) or the single backbone, each step teacher-forced on its gold history and
mapped into the reference's layout. Apart from `umi.evaluate.static`, which owns the run (selection, order,
resuming, costs on file), so that this module holds only what turns steps into texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from umi.agent.marker import finish_backbones, finish_markers, needs_marker, needs_tail
from umi.evaluate.steps import StepKey
from umi.format import (
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
from umi.format.relevance import shortlist, thought_tools
from umi.models.base import Completion, CostLedger, GenerationParams
from umi.models.binding import RoleBinding, Roles
from umi.schema import Step, Turn


def _assistant(value: str) -> Turn:
    return Turn.model_validate({"from": "assistant", "value": value})


def complete_constrained(
    role: str,
    binding: RoleBinding,
    prompts: Sequence[str],
    steps: Sequence[Step],
    params: GenerationParams,
    *,
    family: str,
    constrain: bool,
    thoughts: Sequence[str] | None = None,
) -> list[Completion]:
    """`binding.complete` with each step's role grammar when `constrain` (and the role allows it): prompts that
    share a grammar (the same tools) go to the engine together, results come back in order. `thoughts` (the
    caller's: each step's planner thought) limit a caller that follows its thought (`thought_tools`)."""
    if not (constrain and binding.constrain):
        return binding.complete(prompts, params)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        tools = list(s.tools)
        if binding.follow_thought and thoughts is not None:
            tools = thought_tools(thoughts[i], tools)
        groups.setdefault(role_grammar(role, shortlist(s.history, tools, binding.shortlist), family), []).append(i)
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
    thoughts: Sequence[str] | None = None,
) -> None:
    """Run `role` on the steps `idx` (their `prompts`; `thoughts`: the planner's, one per step of `idx`), cost it,
    and put each stripped text into `outputs`."""
    done = complete_constrained(
        role,
        roles.get(role),
        prompts,
        [steps[i] for i in idx],
        params,
        family=family,
        constrain=constrain,
        thoughts=thoughts,
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
        _fill(
            outputs,
            "caller",
            call_idx,
            prompts,
            roles,
            steps,
            params,
            ledger,
            family=family,
            constrain=constrain,
            thoughts=[thoughts[i] for i in call_idx],
        )
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
