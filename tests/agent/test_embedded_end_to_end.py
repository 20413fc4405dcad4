"""The real embedded model runs the landscape demo task end to end; the trace must be complete and well formed.

This checks the plumbing with a real model, tokenizer and generation, not that a 135M model answers well.
"""

from __future__ import annotations

from pathlib import Path

from umi.agent import MultiLLMAgent, read_trace
from umi.demo import build_scenario
from umi.format import CALLER_CUE
from umi.models.roles import load_roles


def test_embedded_model_runs_a_demo_task(tmp_path: Path, shared_data: Path) -> None:
    scenario = build_scenario("landscape")
    roles = load_roles("embedded")
    trace = tmp_path / "trace.jsonl"
    agent = MultiLLMAgent(roles, scenario.tools, scenario.executor, max_steps=1, max_new_tokens=32, trace_path=trace)
    ep = agent.run(scenario.query)
    assert ep.status in ("answered", "gave_up", "budget_exhausted")
    records = read_trace(trace)
    assert records, "no trace written"
    assert len(trace.read_text().splitlines()) == len(records)  # every line is a complete record
    planner = [r for r in records if r.role == "planner"]
    assert planner and all(r.prompt.startswith("You have assess to the following apis:") for r in planner)
    assert all(r.prompt_tokens > 200 and r.seconds > 0 for r in planner)
    for r in records:
        if r.role == "caller":
            assert r.prompt.endswith(CALLER_CUE)
        if r.role == "tool":
            assert r.tool_call is not None and r.observation is not None
    assert ep.costs["planner"]["calls"] >= 1 and ep.costs["planner"]["seconds"] > 0
    # every step of the episode's history is in the trace, in order
    assert [r.step for r in records] == sorted(r.step for r in records)
