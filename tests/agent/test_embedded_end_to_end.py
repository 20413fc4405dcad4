"""The real embedded model runs the landscape demo task end to end, constrained as `umi run` and `umi demo` run it,
once with the bare base and once with the shipped GLPFT roles (the default); the trace must be complete, well
formed, in the order the loop runs, and every role output must be in the wire format (the grammars' doing).

This checks the plumbing with a real model, tokenizer and greedy generation, not that a 135M model answers well:
the record sequence each role set produces here is pinned (measured, greedy: one call, then the budget's last step
concludes), so a change in the loop, the prompts or the shipped roles shows up as a diff in it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from umi.agent import MultiLLMAgent, read_trace
from umi.demo import build_scenario
from umi.format import CALLER_CUE, PLANNER_CUE, parse_caller, parse_planner
from umi.models.roles import default_roles, load_roles

STEPS = 2
#: (step, role, tool or route) of every trace record, as measured with greedy decoding.
EXPECTED: dict[str, list[tuple[int, str, str]]] = {
    "embedded": [
        (0, "planner", "caller"),
        (0, "caller", "search_for_simple_youtube_search"),
        (0, "tool", "search_for_simple_youtube_search"),
        # the budget's last step: the planner may only conclude (or give up), and the summarizer answers
        (1, "planner", "conclusion"),
        (1, "summarizer", ""),
    ],
}
# the shipped roles (planner and caller trained two epochs) call the playlist API the planner's thought names
EXPECTED["default"] = [
    (0, "planner", "caller"),
    (0, "caller", "playlist_for_simple_youtube_search"),
    (0, "tool", "playlist_for_simple_youtube_search"),
    (1, "planner", "conclusion"),
    (1, "summarizer", ""),
]


def _key(r: object) -> tuple[int, str, str]:
    role = r.role  # type: ignore[attr-defined]
    if role == "planner":
        return (r.step, role, parse_planner(r.output).route)  # type: ignore[attr-defined]
    if role == "caller":
        return (r.step, role, parse_caller(r.output).action)  # type: ignore[attr-defined]
    if role == "tool":
        return (r.step, role, (r.tool_call or {}).get("name", ""))  # type: ignore[attr-defined]
    return (r.step, role, "")  # type: ignore[attr-defined]


@pytest.mark.parametrize("which", ["embedded", "default"])
def test_embedded_model_runs_a_demo_task_constrained(which: str, tmp_path: Path, shared_data: Path) -> None:
    scenario = build_scenario("landscape")
    names = {t.name for t in scenario.tools}
    roles = load_roles("embedded") if which == "embedded" else default_roles()
    trace = tmp_path / "trace.jsonl"
    agent = MultiLLMAgent(
        roles,
        scenario.tools,
        scenario.executor,
        max_steps=STEPS,
        max_new_tokens=96,
        trace_path=trace,
        constrain=True,
    )
    ep = agent.run(scenario.query)
    roles.get("planner").engine.close()  # type: ignore[attr-defined]
    records = read_trace(trace)
    assert len(trace.read_text().splitlines()) == len(records)  # every line is a complete record
    assert [_key(r) for r in records] == EXPECTED[which], [(_key(r), r.output[:80]) for r in records]
    models = [r for r in records if r.role != "tool"]
    assert all(r.constrained is True for r in models)
    assert all(r.prompt_tokens > 200 and r.new_tokens > 0 and r.seconds > 0 for r in models)
    planners = [r for r in records if r.role == "planner"]
    assert all(r.prompt.startswith("You have assess to the following apis:") for r in planners)
    # each step's planner turn ends with a route marker: at once, or by the marker-only call that finishes a turn
    # the token cap cut (`umi.agent.marker`), whose prompt continues the cut one
    last = {r.step: r for r in planners}
    assert all(parse_planner(r.output).has_marker for r in last.values())
    assert all(r.prompt.endswith(PLANNER_CUE) for r in planners if r is not last[r.step])
    assert all(r.prompt.endswith(PLANNER_CUE) or r.prompt.endswith("\n ") for r in last.values())
    callers = [r for r in records if r.role == "caller"]
    assert all(r.prompt.endswith(CALLER_CUE) and r.error is None for r in callers)
    for r in callers:  # a valid call of a real API: the grammar's doing
        call = parse_caller(r.output)
        assert call.action in names and isinstance(call.arguments, dict) and not call.problems
    tools = [r for r in records if r.role == "tool"]
    assert [t.tool_call for t in tools] == [{"name": c.name, "arguments": c.arguments} for c in ep.calls]
    assert [(t.tool_call or {}).get("arguments") for t in tools] == [parse_caller(c.output).arguments for c in callers]
    # each observation is what the next planner turn reads
    for t in tools:
        nxt = [p for p in planners if p.step == t.step + 1]
        assert not nxt or (t.observation or "")[:40] in nxt[0].prompt
    assert ep.costs["planner"]["calls"] == len(planners)
    assert last[STEPS - 1].parsed.get("final_step") is True
    assert ep.status == "answered" and ep.concluded_at_budget and ep.answer
    summary = [r for r in records if r.role == "summarizer"]
    assert len(summary) == 1 and summary[0].output.strip() == ep.answer and summary[0].constrained
