"""On the last step of its budget a constrained agent concludes from what it has instead of ending with no answer.

The fake engine plays by the grammar it is handed, as an enforcing engine would: its planner wants to call every
time and writes `Next: caller.` unless the grammar leaves that marker out; its backbone likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from umi.agent import DFSDT, MultiLLMAgent, SingleLLMAgent, read_trace
from umi.models.base import Completion, GenerationParams
from umi.models.roles import RoleBinding, Roles
from umi.schema import ToolDoc
from umi.tools.base import Observation, ToolCall

TOOL = ToolDoc(Name="weather_for_meteo", function="Weather of a city.", input={"city": "string, a city"})
CALL = 'Action: weather_for_meteo\nAction Input: {"city": "Paris"}'


class EagerEngine:
    """Always wants one more call; writes what the grammar allows."""

    name = "eager"

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str | None]] = []

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
    ) -> list[Completion]:
        grammar = params.grammar or ""
        may_call = params.grammar is None or "Next: caller." in grammar or '"Action: "' in grammar
        self.calls.append((adapter, params.grammar))
        if adapter == "planner":
            text = "I need the weather of Paris. Next: " + ("caller." if may_call else "conclusion.")
        elif adapter == "caller":
            text = CALL
        elif adapter == "backbone":
            text = "I need the weather of Paris.\n" + (CALL if may_call else "conclusion: It is sunny in Paris.")
        else:
            text = "It is sunny in Paris."
        c = Completion(text, 10, 5, 0.0, finish_reason="stop", constrained=params.grammar is not None)
        return [c for _ in prompts]


class Sunny:
    def execute(self, call: ToolCall) -> Observation:
        return Observation(response='{"sky": "clear"}')


def _multi(engine: EagerEngine) -> Roles:
    return Roles(**{r: RoleBinding(engine, adapter=r) for r in ("planner", "caller", "summarizer")})


def test_the_last_step_concludes_with_the_summarizers_answer(tmp_path: Path) -> None:
    engine = EagerEngine()
    trace = tmp_path / "trace.jsonl"
    ep = MultiLLMAgent(_multi(engine), [TOOL], Sunny(), max_steps=3, constrain=True, trace_path=trace).run("Paris?")
    assert ep.status == "answered" and ep.answer == "It is sunny in Paris." and ep.concluded_at_budget
    assert len(ep.calls) == 2 and ep.steps == 3  # steps 0 and 1 call, step 2 may only conclude
    planners = [r for r in read_trace(trace) if r.role == "planner"]
    assert [r.parsed.get("final_step", False) for r in planners] == [False, False, True]
    assert "Next: caller." not in (engine.calls[-2][1] or "")  # the last planner call's grammar
    assert [t.role for t in ep.history[-2:]] == ["assistant", "conclusion"]


def test_without_it_or_unconstrained_the_budget_runs_out() -> None:
    for kwargs in ({"constrain": True, "conclude_at_budget": False}, {"constrain": False}):
        ep = MultiLLMAgent(_multi(EagerEngine()), [TOOL], Sunny(), max_steps=3, **kwargs).run("Paris?")  # type: ignore[arg-type]
        assert ep.status == "budget_exhausted" and len(ep.calls) == 3 and not ep.concluded_at_budget


def test_the_single_llm_backbone_concludes_on_its_last_step() -> None:
    roles = Roles(backbone=RoleBinding(EagerEngine(), adapter="backbone"))
    ep = SingleLLMAgent(roles, [TOOL], Sunny(), max_steps=2, constrain=True).run("Paris?")
    assert ep.status == "answered" and ep.answer == "It is sunny in Paris." and ep.concluded_at_budget
    assert len(ep.calls) == 1


def test_dfsdt_branches_are_not_final_steps() -> None:
    """A DFSDT branch runs one step at a time; the search, not the branch, holds the budget."""
    engine = EagerEngine()
    agent = MultiLLMAgent(_multi(engine), [TOOL], Sunny(), max_steps=4, constrain=True)
    ep = DFSDT(agent, width=1, max_depth=3).run("Paris?")
    assert ep.status == "budget_exhausted" and not ep.concluded_at_budget
    assert all("Next: caller." in (g or "") for a, g in engine.calls if a == "planner")


def test_umi_run_says_when_the_answer_came_on_the_budgets_last_step() -> None:
    from umi.agent import Episode
    from umi.cli.run import _cost_table

    ep = Episode(query="Paris?", status="answered", answer="Sunny.", steps=3, concluded_at_budget=True)
    assert "last step" in str(_cost_table(ep).title)
    ep.concluded_at_budget = False
    assert "last step" not in str(_cost_table(ep).title)
