"""Trajectories → the five row sets of GLPFT: backbone (stage 1), planner / caller / summarizer (stage 2), and
the multi-task union.

`compat=True` reproduces the released α-UMi rows byte for byte, defects included; the default fixes them:

* **stale give-up input** — the reference gave each backbone give-up row the *previous* row's prompt (without
  the last call and observation). Default: the give-up row's own prompt.
* **hallucinated calls in global data** — calls to `invalid_hallucination_function_name` were dropped from the
  role rows but kept as backbone targets. Default: dropped from both (they stay in later histories, as in the
  reference's role data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from umi.format import (
    NEXT_CALLER,
    NEXT_CONCLUSION,
    NEXT_GIVE_UP,
    PromptBudget,
    backbone_prompt,
    backbone_turn_text,
    caller_prompt,
    planner_prompt,
    summarizer_prompt,
)
from umi.schema import Row, Step, Trajectory

HALLUCINATION = "invalid_hallucination_function_name"
ROW_SETS: tuple[str, ...] = ("backbone", "planner", "caller", "summarizer", "multitask")


@dataclass
class RowSets:
    """The five row sets built from one list of trajectories."""

    backbone: list[Row] = field(default_factory=list)
    planner: list[Row] = field(default_factory=list)
    caller: list[Row] = field(default_factory=list)
    summarizer: list[Row] = field(default_factory=list)

    @property
    def multitask(self) -> list[Row]:
        """Single-LLM multi-task data: the union of the three role row sets."""
        return [*self.planner, *self.caller, *self.summarizer]

    def get(self, name: str) -> list[Row]:
        if name not in ROW_SETS:
            raise ValueError(f"unknown row set {name!r}; use one of {list(ROW_SETS)}")
        rows: list[Row] = getattr(self, name)
        return rows

    def counts(self) -> dict[str, int]:
        return {name: len(self.get(name)) for name in ROW_SETS}


def _route_of(value: str) -> str | None:
    if NEXT_GIVE_UP in value:
        return "give up"
    if NEXT_CONCLUSION in value:
        return "conclusion"
    if NEXT_CALLER in value:
        return "caller"
    return None


def _history(traj: Trajectory, end: int) -> list[dict[str, str]]:
    return [t.as_json_dict() for t in traj.conversations[:end]]


def _tools(traj: Trajectory) -> list[dict[str, object]]:
    return [t.as_json_dict() for t in traj.tools]


def _planner_turns(traj: Trajectory) -> Iterable[tuple[int, str, str | None]]:
    """(index, route, following text) for every assistant turn that is a step: followed by a caller or a
    conclusion turn, or a give-up. Content-only assistant turns (no marker and nothing after) are not steps."""
    conv = traj.conversations
    for i, turn in enumerate(conv):
        if turn.role != "assistant":
            continue
        nxt = conv[i + 1] if i + 1 < len(conv) else None
        if nxt is not None and nxt.role in ("caller", "conclusion"):
            yield i, nxt.role, nxt.value
        elif NEXT_GIVE_UP in turn.value:
            yield i, "give up", None


def build_rows(
    trajectories: Sequence[Trajectory],
    *,
    compat: bool = False,
    family: str = "toolbench",
    budget: PromptBudget | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RowSets:
    """Build every row set from stage-2 trajectories (see the module docstring for `compat`).

    `budget` renders every input under that prompt budget (`umi.format.budget`), as the agent will at run time;
    None keeps the unbudgeted, byte-exact rendering of the released rows."""
    if compat and budget is not None:
        raise ValueError("compat rows reproduce the released bytes; a prompt budget would change them (drop one)")
    sets = RowSets()
    last_backbone_input = ""  # the reference's stale variable, carried across trajectories as it was
    for traj in trajectories:
        tools = _tools(traj)
        conv = traj.conversations
        for i, role, following in _planner_turns(traj):
            thought = conv[i].value
            hallucinated = role == "caller" and following is not None and HALLUCINATION in following
            history = _history(traj, i)
            # Stage 1 (backbone / global).
            if compat or not hallucinated:
                if role == "give up" and compat:
                    b_input = last_backbone_input
                else:
                    b_input = backbone_prompt(traj.tools, conv[:i], family=family, budget=budget)
                nxt = conv[i + 1] if role != "give up" else None
                sets.backbone.append(
                    Row(tools=tools, history=history, input=b_input, target=backbone_turn_text(thought, nxt))
                )
                last_backbone_input = b_input
            if hallucinated:
                continue
            # Stage 2: the planner.
            sets.planner.append(
                Row(
                    tools=tools,
                    history=history,
                    input=planner_prompt(traj.tools, conv[:i], family=family, budget=budget),
                    target=thought,
                )
            )
            if role == "caller" and following is not None:
                sets.caller.append(
                    Row(
                        tools=tools,
                        history=_history(traj, i + 1),
                        input=caller_prompt(traj.tools, conv[: i + 1], thought, family=family, budget=budget),
                        target=following,
                    )
                )
            elif role == "conclusion" and following is not None and following != "none":
                sets.summarizer.append(
                    Row(
                        tools=tools,
                        history=_history(traj, i + 1),
                        input=summarizer_prompt(conv[: i + 1], family=family, budget=budget),
                        target=following,
                    )
                )
        if on_progress:
            on_progress(1)
    return sets


def iter_steps(trajectories: Sequence[Trajectory]) -> list[Step]:
    """Every teacher-forced planner step (assistant turns carrying a `Next:` marker), in file order."""
    steps: list[Step] = []
    for t_idx, traj in enumerate(trajectories):
        conv = traj.conversations
        s_idx = 0
        for i, turn in enumerate(conv):
            if turn.role != "assistant":
                continue
            route = _route_of(turn.value)
            if route is None:
                continue
            nxt = conv[i + 1] if i + 1 < len(conv) else None
            steps.append(
                Step(
                    traj=t_idx,
                    step=s_idx,
                    tools=traj.tools,
                    history=list(conv[:i]),
                    planner=turn.value,
                    route=route,  # type: ignore[arg-type]
                    action=nxt.value if route == "caller" and nxt is not None and nxt.role == "caller" else None,
                    answer=nxt.value
                    if route == "conclusion" and nxt is not None and nxt.role == "conclusion"
                    else None,
                )
            )
            s_idx += 1
    return steps
