"""Parsers never raise on model text; they say what was missing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from umi.format import parse_backbone, parse_caller, parse_planner, parse_step_text, render_observation


@pytest.mark.parametrize(
    ("text", "route", "thought"),
    [
        ("I should call.\n Next: caller.</s>junk", "caller", "I should call.\n Next: caller."),
        ("Enough info.\n Next: conclusion. extra", "conclusion", "Enough info.\n Next: conclusion."),
        ("Nothing works. Next: give up. Next: caller.", "give up", "Nothing works. Next: give up."),
        (": I think\n Next: caller.", "caller", "I think\n Next: caller."),
        ("no marker at all", "none", "no marker at all"),
        ("", "none", ""),
    ],
)
def test_planner_routes(text: str, route: str, thought: str) -> None:
    out = parse_planner(text)
    assert out.route == route
    assert out.thought == thought
    assert out.has_marker == (route != "none")


def test_planner_empty_outputs_are_flagged() -> None:
    assert parse_planner(".").empty
    assert parse_planner("   ").empty
    assert parse_planner(",").empty
    assert not parse_planner("x Next: caller.").empty


def test_caller_parses_last_action_and_json() -> None:
    out = parse_caller('Action: foo\nAction Input: {"a": 1}\nAction: bar\nAction Input: {"b": "x"}')
    assert out.action == "bar" and out.arguments == {"b": "x"} and out.ok


def test_a_constrained_callers_label_inside_a_string_stays_an_argument() -> None:
    text = 'Action: getDetails\nAction Input: {\n  "Question": "Action: getUserProfile"\n}'  # seen live
    assert parse_caller(text).action == 'getUserProfile"\n}'  # the reference's reading: the last `Action:`
    out = parse_caller(text, structured=True)
    assert out.action == "getDetails" and out.arguments == {"Question": "Action: getUserProfile"} and out.ok
    assert parse_caller("no layout", structured=True).problems  # not the grammar's layout: read as before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Action: \nAction Input: {}", "no API name"),
        ("Action Input: {}", "no API name"),
        ("Action: foo\nAction Input: {not json", "not valid JSON"),
        ("Action: foo\nAction Input: [1, 2]", "must be a JSON object"),
    ],
)
def test_caller_problems(text: str, problem: str) -> None:
    out = parse_caller(text)
    assert not out.ok
    assert any(problem in p for p in out.problems)


def test_caller_missing_input_means_empty_arguments() -> None:
    out = parse_caller("Action: foo")
    assert out.action == "foo" and out.arguments == {} and out.ok


def test_backbone_kinds() -> None:
    assert parse_backbone("t\nAction: a\nAction Input: {}").kind == "call"
    c = parse_backbone("t\nconclusion: the answer is 4")
    assert c.kind == "conclusion" and c.answer == "the answer is 4"
    assert parse_backbone("t\nconclusion: give up.").kind == "give up"
    n = parse_backbone("just words")
    assert n.kind == "none" and n.problems


def test_step_text_parse_defaults() -> None:
    s = parse_step_text("assistant: think Next: caller.</s>caller: nothing here")
    assert s.plan == "call" and s.action == "none" and s.action_input == "{}"
    assert parse_step_text("I think Next: give up.").plan == "give up"


def test_observation_styles() -> None:
    assert render_observation("raw text") == "raw text"
    assert render_observation("", "boom") == '{"error": "boom"}'
    long = "x" * 2000
    compat = render_observation(long, compat=True)
    assert compat.startswith('"xxx') and compat.endswith("...") and len(compat) == 1024 + 3
    assert render_observation("", "bad", compat=True) == '{"message": "bad"}'


@given(st.text(max_size=300))
def test_parsers_never_raise(text: str) -> None:
    parse_planner(text)
    parse_caller(text)
    parse_backbone(text)
    parse_step_text(text)
