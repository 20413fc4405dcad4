"""The α-UMi loop driven by scripted planner, caller and summarizer outputs."""

from __future__ import annotations

import json
from pathlib import Path

from umi.agent import DROPPED, MultiLLMAgent, read_trace
from umi.format import CALLER_CUE, END_OF_TURN, PLANNER_CUE, SUMMARIZER_CUE, serialize_history

from .conftest import make_roles

CALL = 'Action: search_video\nAction Input: {"query": "landscape"}'


def test_caller_then_conclusion(toolbox, tmp_path: Path) -> None:
    specs, ex = toolbox
    roles = make_roles(
        ["I should search videos.\n Next: caller.", "I have the video.\n Next: conclusion."],
        [CALL],
        ["The most viewed video is v1."],
    )
    agent = MultiLLMAgent(roles, specs, ex, trace_path=tmp_path / "t.jsonl")
    ep = agent.run("Find a landscape tutorial")
    assert ep.status == "answered" and ep.answer == "The most viewed video is v1."
    assert [c.name for c in ep.calls] == ["search_video"]
    assert [t.role for t in ep.history] == ["user", "assistant", "caller", "observation", "assistant", "conclusion"]
    # the caller saw the planner's thought as the last assistant turn, in the training layout
    caller_prompt = roles.caller.engine.prompts[0][0]  # type: ignore[union-attr]
    assert caller_prompt.endswith(CALLER_CUE)
    assert "assistant: I should search videos.\n Next: caller." + END_OF_TURN in caller_prompt
    summary_prompt = roles.summarizer.engine.prompts[0][0]  # type: ignore[union-attr]
    assert summary_prompt.endswith("Next: conclusion." + END_OF_TURN + SUMMARIZER_CUE)
    assert "You have assess" not in summary_prompt  # the summarizer sees the history alone
    assert roles.planner.engine.prompts[1][0].endswith(PLANNER_CUE)  # type: ignore[union-attr]
    records = read_trace(tmp_path / "t.jsonl")
    assert [r.role for r in records] == ["planner", "caller", "tool", "planner", "summarizer"]
    assert ep.costs["planner"]["calls"] == 2 and ep.costs["caller"]["calls"] == 1


def test_give_up_ends_with_reason(toolbox) -> None:
    specs, ex = toolbox
    ep = MultiLLMAgent(make_roles(["No API can do this.\n Next: give up."]), specs, ex).run("Book a flight")
    assert ep.status == "gave_up" and "No API can do this" in ep.reason and not ep.calls


def test_broken_tool_then_switch(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(
        [
            "Try the video API.\n Next: caller.",
            "The video API failed with an error; I will use search instead.\n Next: caller.",
            "Done.\n Next: conclusion.",
        ],
        ['Action: broken_video\nAction Input: {"search": "landscape"}', CALL],
        ["v1 by channel c9"],
    )
    ep = MultiLLMAgent(roles, specs, ex).run("most popular landscape tutorial")
    assert ep.status == "answered"
    assert [c.name for c in ep.calls] == ["broken_video", "search_video"]
    first_obs = ep.history[3]
    assert first_obs.role == "observation" and "503 Service Unavailable" in first_obs.value
    # the planner's second prompt shows it the error
    assert "503 Service Unavailable" in roles.planner.engine.prompts[1][0]  # type: ignore[union-attr]


def test_missing_marker_defaults_to_caller_and_is_recorded(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["search for it", "ok\n Next: conclusion."], [CALL], ["done"])
    ep = MultiLLMAgent(roles, specs, ex).run("q")
    assert ep.status == "answered" and ep.calls and "no Next: marker" in ep.parse_issues[0]
    assert ep.history[1].value == "search for it\n Next: caller."


def test_empty_planner_output_is_retried(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["", ".", "fine\n Next: give up."])
    ep = MultiLLMAgent(roles, specs, ex, planner_retries=2).run("q")
    assert ep.status == "gave_up" and ep.costs["planner"]["calls"] == 3


def test_unknown_and_partial_names_are_errors_not_suffix_matches(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(
        ["call\n Next: caller.", "give up\n Next: give up."],
        ["Action: video\nAction Input: {}", "Action: \nAction Input: {}"],
    )
    ep = MultiLLMAgent(roles, specs, ex, caller_repairs=1).run("q")
    assert ep.calls == []  # neither "video" (a suffix of two tools) nor "" ran anything
    # "video" is refused by name, and the repair prompt says so and lists the exact names
    repair_prompt = roles.caller.engine.prompts[1][0]  # type: ignore[union-attr]
    assert (
        "(The previous call was invalid: unknown API name 'video' (use exactly one of: broken_video, "
        "channel_details, search_video). Fix it.)"
    ) in repair_prompt
    # the repair ("") is refused too; that last failure is the step's observation and its parse issue
    assert [(t.role, t.value) for t in ep.history[2:4]] == [
        ("caller", "Action: \nAction Input: {}"),
        ("observation", '{"error": "no API name after \'Action:\'"}'),
    ]
    assert ep.parse_issues == ["step 0: caller output unusable: no API name after 'Action:'"]
    assert ep.status == "gave_up"


def test_repair_retry_fixes_bad_json(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(
        ["call\n Next: caller.", "ok\n Next: conclusion."],
        ['Action: search_video\nAction Input: {"query": landscape}', CALL],
        ["done"],
    )
    ep = MultiLLMAgent(roles, specs, ex, caller_repairs=1).run("q")
    assert [c.name for c in ep.calls] == ["search_video"] and ep.status == "answered"
    second_caller_prompt = roles.caller.engine.prompts[1][0]  # type: ignore[union-attr]
    assert "The previous call was invalid: Action Input is not valid JSON" in second_caller_prompt


def test_repair_is_bounded(toolbox) -> None:
    specs, ex = toolbox
    bad = "Action: search_video\nAction Input: not json"
    roles = make_roles(["call\n Next: caller."], [bad, bad], [])
    ep = MultiLLMAgent(roles, specs, ex, caller_repairs=1, max_steps=1).run("q")
    assert ep.status == "budget_exhausted" and roles.caller.engine._i == 2  # type: ignore[union-attr]
    assert "not valid JSON" in ep.history[-1].value


def test_missing_required_parameter_is_an_observation(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["call\n Next: caller.", "x\n Next: give up."], ["Action: channel_details\nAction Input: {}"])
    ep = MultiLLMAgent(roles, specs, ex).run("q")
    assert "missing required parameter(s) channel_id" in ep.history[3].value


def test_step_budget(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(
        ["again\n Next: caller."] * 3, [CALL, CALL.replace("landscape", "a"), CALL.replace("landscape", "b")]
    )
    ep = MultiLLMAgent(roles, specs, ex, max_steps=3).run("q")
    assert ep.status == "budget_exhausted" and ep.steps == 3 and len(ep.calls) == 3


def test_repeated_identical_call_is_refused(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["again\n Next: caller."] * 3, [CALL] * 3)
    ep = MultiLLMAgent(roles, specs, ex, max_steps=3, repeat_limit=2).run("q")
    assert "already made 2 times" in ep.history[-1].value


def test_token_budget_drops_oldest_observations_keeps_docs(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(
        ["a\n Next: caller.", "b\n Next: caller.", "c\n Next: give up."],
        [CALL, CALL.replace("landscape", "other")],
    )
    big = MultiLLMAgent(roles, specs, ex, context_tokens=None).run("q")
    full_len = len(roles.planner.engine.prompts[2][0]) // 4  # type: ignore[union-attr]
    roles2 = make_roles(
        ["a\n Next: caller.", "b\n Next: caller.", "c\n Next: give up."],
        [CALL, CALL.replace("landscape", "other")],
    )
    MultiLLMAgent(roles2, specs, ex, context_tokens=full_len - 3).run("q")
    last = roles2.planner.engine.prompts[2][0]  # type: ignore[union-attr]
    assert DROPPED in last
    assert last.count(DROPPED) == 1  # only the oldest observation went
    assert "other tutorial" in last  # the newest observation stayed
    assert json.dumps({"Name": "search_video"})[:-1][:20] in last  # tool docs kept
    assert "user: q" + END_OF_TURN in last  # the instruction kept
    assert big.status == "gave_up"


def test_history_matches_training_serializer(toolbox) -> None:
    specs, ex = toolbox
    roles = make_roles(["s\n Next: caller.", "e\n Next: conclusion."], [CALL], ["ans"])
    ep = MultiLLMAgent(roles, specs, ex).run("q")
    planner2 = roles.planner.engine.prompts[1][0]  # type: ignore[union-attr]
    assert serialize_history(ep.history[:4]) in planner2
