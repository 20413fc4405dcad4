"""The single-LLM baseline, DFSDT search, and traces that survive a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from umi.agent import DFSDT, MultiLLMAgent, SingleLLMAgent, read_trace
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles

from .conftest import make_roles


def _single(script: list[str]) -> Roles:
    return Roles(backbone=RoleBinding(ScriptedEngine(script)))


def test_single_llm_call_then_conclusion(toolbox) -> None:
    specs, ex = toolbox
    roles = _single(['I search.\nAction: search_video\nAction Input: {"query": "sea"}', "Found it.\nconclusion: v1"])
    ep = SingleLLMAgent(roles, specs, ex).run("q")
    assert ep.status == "answered" and ep.answer == "v1" and [c.name for c in ep.calls] == ["search_video"]
    second = roles.backbone.engine.prompts[1][0]  # type: ignore[union-attr]
    assert "assistant: I search.\nAction: search_video" in second and "Next: caller." not in second


def test_single_llm_give_up_and_bad_output(toolbox) -> None:
    specs, ex = toolbox
    roles = _single(["hmm", "Nothing works.\nconclusion: give up."])
    ep = SingleLLMAgent(roles, specs, ex).run("q")
    assert ep.status == "gave_up" and ep.parse_issues and not ep.calls


def test_dfsdt_backtracks_after_give_up(toolbox) -> None:
    specs, ex = toolbox
    planner = [
        "first idea\n Next: caller.",  # root child 1: a call
        "stuck\n Next: give up.",  # its child 1 gives up
        "other idea\n Next: caller.",  # its child 2 (after diversity prompt): a different call
        "done\n Next: conclusion.",
    ]
    caller = [
        'Action: broken_video\nAction Input: {"search": "x"}',
        'Action: search_video\nAction Input: {"query": "x"}',
    ]
    roles = make_roles(planner, caller, ["answer"])
    ep = DFSDT(MultiLLMAgent(roles, specs, ex), width=2, max_depth=4).run("q")
    assert ep.status == "answered" and ep.answer == "answer"
    prompts = [p for p, _ in roles.planner.engine.prompts]  # type: ignore[union-attr]
    assert "This is not the first time you try this task" in prompts[2]
    assert "stuck" in prompts[2]


def test_dfsdt_respects_model_call_budget(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["no\n Next: give up."] * 10)
    ep = DFSDT(MultiLLMAgent(roles, specs, ex), width=3, max_depth=3, max_model_calls=2).run("q")
    assert ep.status in ("gave_up", "budget_exhausted")
    assert roles.planner.engine._i == 2  # type: ignore[union-attr]


def test_tool_failure_mid_run_keeps_the_trace(tmp_path: Path) -> None:
    """A tool hangs mid-run and the process is killed: every record before it is intact and readable."""
    trace = tmp_path / "trace.jsonl"
    script = textwrap.dedent(
        f"""
        import time
        from umi.agent import MultiLLMAgent
        from umi.models import ScriptedEngine
        from umi.models.roles import RoleBinding, Roles
        from umi.tools import PythonExecutor, tool

        @tool
        def fast(q: str) -> str:
            "Fast."
            return "ok"

        @tool
        def hang(q: str) -> str:
            "Hangs."
            print("HANGING", flush=True)
            time.sleep(60)
            return "never"

        roles = Roles(
            planner=RoleBinding(ScriptedEngine(["a\\n Next: caller.", "b\\n Next: caller."])),
            caller=RoleBinding(ScriptedEngine(['Action: fast\\nAction Input: {{"q": "1"}}',
                                               'Action: hang\\nAction Input: {{"q": "2"}}'])),
            summarizer=RoleBinding(ScriptedEngine([])),
        )
        MultiLLMAgent(roles, [fast.spec, hang.spec], PythonExecutor([fast, hang]), trace_path={str(trace)!r}).run("q")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "HANGING"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    records = read_trace(trace)
    assert [r.role for r in records] == ["planner", "caller", "tool", "planner", "caller"]
    assert records[2].tool_call == {"name": "fast", "arguments": {"q": "1"}} and records[2].observation == "ok"
    for line in trace.read_text().splitlines():
        json.loads(line)  # every line on disk is complete JSON


def test_dfsdt_continues_a_multi_turn_history(toolbox) -> None:
    from umi.agent.base import turn

    specs, ex = toolbox
    roles = make_roles(["done\n Next: conclusion."], [], ["second answer"])
    earlier = [turn("user", "first question"), turn("conclusion", "first answer")]
    ep = DFSDT(MultiLLMAgent(roles, specs, ex), width=2, max_depth=2).run("second question", history=earlier)
    assert ep.status == "answered" and ep.answer == "second answer"
    ((prompt, _),) = roles.planner.engine.prompts  # type: ignore[union-attr]
    assert prompt.index("first question") < prompt.index("first answer") < prompt.index("second question")
