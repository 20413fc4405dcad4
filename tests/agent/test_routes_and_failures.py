"""Every route's edge: defaults, exhausted retries, exact names, engine failures, events, search budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from umi.agent import DFSDT, MultiLLMAgent, SingleLLMAgent, TraceRecord, read_trace
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles

from .conftest import make_roles

CALL = 'Action: search_video\nAction Input: {"query": "landscape"}'


def test_partial_name_is_never_suffix_matched(toolbox) -> None:
    """`video` ends two tool names; it must be an error observation, not a call to either."""
    specs, ex = toolbox
    partial = "Action: video\nAction Input: {}"
    roles = make_roles(["call\n Next: caller.", "x\n Next: give up."], [partial, partial])
    ep = MultiLLMAgent(roles, specs, ex, caller_repairs=1).run("q")
    assert ep.calls == [] and ep.status == "gave_up"
    obs = ep.history[3]
    assert obs.role == "observation" and "unknown API name 'video'" in obs.value
    assert "search_video" in obs.value  # the observation lists the exact names to use


def test_repair_retry_fixes_an_unknown_name(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(
        ["call\n Next: caller.", "ok\n Next: conclusion."],
        ['Action: search\nAction Input: {"query": "landscape"}', CALL],
        ["done"],
    )
    ep = MultiLLMAgent(roles, specs, ex, caller_repairs=1).run("q")
    assert [c.name for c in ep.calls] == ["search_video"]
    assert ep.history[2].value == CALL  # the history keeps the repaired call only, in the training layout
    assert "unknown API name 'search'" in roles.caller.engine.prompts[1][0]  # type: ignore[union-attr]


def test_no_repair_when_disabled(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["call\n Next: caller."], ["Action: search_video\nAction Input: {bad"], [])
    ep = MultiLLMAgent(roles, specs, ex, caller_repairs=0, max_steps=1).run("q")
    assert roles.caller.engine._i == 1 and "not valid JSON" in ep.history[-1].value  # type: ignore[union-attr]


def test_empty_planner_after_all_retries_takes_the_default_route(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["", " ", "", "done\n Next: conclusion."], [CALL], ["ans"])
    ep = MultiLLMAgent(roles, specs, ex, planner_retries=2).run("q")
    assert ep.costs["planner"]["calls"] == 4 and ep.calls and ep.status == "answered"
    assert any("no Next: marker" in i for i in ep.parse_issues)


def test_default_route_is_configurable(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["I know the answer already"], [], ["42"])
    ep = MultiLLMAgent(roles, specs, ex, default_route="conclusion").run("q")
    assert ep.status == "answered" and ep.answer == "42" and not ep.calls
    assert ep.history[1].value == "I know the answer already\n Next: conclusion."


def test_engine_failure_ends_with_error_and_is_traced(toolbox, tmp_path: Path) -> None:
    specs, ex = toolbox
    roles = make_roles(["call\n Next: caller."], [], [])  # the caller's engine has nothing to say: it raises
    trace = tmp_path / "t.jsonl"
    ep = MultiLLMAgent(roles, specs, ex, trace_path=trace).run("q")
    assert ep.status == "error" and "ran out of answers" in ep.reason
    records = read_trace(trace)
    assert [r.role for r in records] == ["planner", "agent"] and records[-1].error == ep.reason


def test_unbound_role_fails_at_construction(toolbox) -> None:
    specs, ex = toolbox
    with pytest.raises(ValueError, match="planner"):
        MultiLLMAgent(Roles(backbone=RoleBinding(ScriptedEngine([]))), specs, ex)
    with pytest.raises(ValueError, match="backbone"):
        SingleLLMAgent(make_roles([]), specs, ex)


def test_on_event_sees_every_record_as_it_happens(toolbox, tmp_path: Path) -> None:
    specs, ex = toolbox
    seen: list[TraceRecord] = []
    roles = make_roles(["s\n Next: caller.", "e\n Next: conclusion."], [CALL], ["ans"])
    trace = tmp_path / "t.jsonl"

    def on_event(record: TraceRecord) -> None:
        # the record is already on disk when the display sees it
        assert len(read_trace(trace)) == len(seen) + 1
        seen.append(record)

    ep = MultiLLMAgent(roles, specs, ex, trace_path=trace, on_event=on_event).run("q")
    assert [r.role for r in seen] == ["planner", "caller", "tool", "planner", "summarizer"]
    planner, caller, tool = seen[:3]
    assert planner.parsed["route"] == "caller" and planner.prompt_tokens > 0 and planner.output
    assert caller.parsed["action"] == "search_video" and caller.parsed["arguments"] == {"query": "landscape"}
    assert tool.tool_call == {"name": "search_video", "arguments": {"query": "landscape"}}
    assert tool.observation == ep.history[3].value
    assert len({r.episode for r in seen}) == 1


def test_observations_are_cut_to_the_configured_size(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["s\n Next: caller.", "x\n Next: give up."], [CALL])
    ep = MultiLLMAgent(roles, specs, ex, max_observation=20).run("q")
    assert len(ep.history[3].value) == 23 and ep.history[3].value.endswith("...")


def test_single_llm_unknown_name_and_step_budget(toolbox) -> None:
    specs, ex = toolbox
    roles = Roles(backbone=RoleBinding(ScriptedEngine(["try\nAction: video\nAction Input: {}", "again\n" + CALL])))
    ep = SingleLLMAgent(roles, specs, ex, max_steps=2).run("q")
    assert ep.status == "budget_exhausted" and ep.steps == 2
    assert [c.name for c in ep.calls] == ["search_video"]
    assert "unknown API name 'video'" in ep.history[3].value


def test_dfsdt_counts_every_model_call_and_keeps_one_trace(toolbox, tmp_path: Path) -> None:
    specs, ex = toolbox
    roles = make_roles(["go\n Next: caller."] * 20, [CALL.replace("landscape", str(i)) for i in range(20)], [])
    trace = tmp_path / "t.jsonl"
    ep = DFSDT(MultiLLMAgent(roles, specs, ex, trace_path=trace), width=2, max_depth=3, max_model_calls=5).run("q")
    assert ep.status == "budget_exhausted"
    used = roles.planner.engine._i + roles.caller.engine._i  # type: ignore[union-attr]
    assert 5 <= used <= 6 and ep.model_calls == used  # the budget is checked before each two-call step
    records = read_trace(trace)
    assert len({r.episode for r in records}) == 1
    assert [r.step for r in records if r.role == "planner"] == [0, 1, 2]
