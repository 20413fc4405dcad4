"""Serialize → parse round trips on every planner step of the α-UMi out-of-domain test set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.data.io import load_trajectories
from umi.data.rows import build_rows, iter_steps
from umi.format import (
    backbone_turn_text,
    caller_text,
    parse_backbone,
    parse_caller,
    parse_planner,
    parse_step_text,
    step_text,
)


@pytest.fixture(scope="module")
def ood(ood_path: Path):
    return load_trajectories(ood_path).items


def test_step_counts_match_the_paper(ood) -> None:
    steps = iter_steps(ood)
    routes = [s.route for s in steps]
    assert len(steps) == 1547
    assert (routes.count("caller"), routes.count("conclusion"), routes.count("give up")) == (1146, 294, 107)


def test_planner_caller_and_step_text_round_trip(ood) -> None:
    for s in iter_steps(ood):
        p = parse_planner(s.planner)
        assert p.route == s.route and p.has_marker
        assert p.thought == s.planner  # released thoughts end with their marker
        text = step_text(s.planner, s.action if s.route == "caller" else s.answer, s.route)
        parsed = parse_step_text(text)
        assert parsed.plan == {"caller": "call", "conclusion": "finish", "give up": "give up"}[s.route]
        if s.route == "caller":
            assert s.action is not None
            c = parse_caller(s.action)
            assert c.action is not None
            assert caller_text(c.action, c.action_input or "") == s.action.rstrip()
            assert parsed.action == c.action
        if s.route == "conclusion":
            assert parsed.answer == s.answer


def test_backbone_targets_round_trip(ood) -> None:
    rows = build_rows(ood)
    steps = iter_steps(ood)
    assert len(rows.backbone) == len(steps)
    for row, s in zip(rows.backbone, steps, strict=True):
        b = parse_backbone(row.target)
        kind = {"caller": "call", "conclusion": "conclusion", "give up": "give up"}[s.route]
        if kind == "conclusion" and s.answer and s.answer.rstrip(".").strip().lower() == "give up":
            kind = "give up"
        assert b.kind == kind, row.target[-200:]
        if kind == "call":
            assert s.action is not None
            assert b.action == parse_caller(s.action).action


def test_backbone_history_has_no_markers_or_caller_turns(ood) -> None:
    rows = build_rows(ood)
    for row in rows.backbone[:200]:
        hist = row.input.split("The conversation history is:\n", 1)[1]
        assert "Next: caller." not in hist and "Next: conclusion." not in hist
        assert "caller: Action:" not in hist


def test_tool_lines_are_plain_json_dumps(ood) -> None:
    from umi.format import render_docs

    traj = ood[0]
    doc = render_docs(traj.tools)
    lines = doc.split("\n")
    assert lines[-1] == "" and len(lines) == len(traj.tools) + 1
    assert [json.loads(line)["Name"] for line in lines[:-1]] == traj.tool_names


def test_backbone_turn_text_cases() -> None:
    assert backbone_turn_text(
        "I will search.\n Next: caller.", {"from": "caller", "value": "Action: a\nAction Input: {}"}
    ) == ("I will search.\nAction: a\nAction Input: {}")
    assert (
        backbone_turn_text("Done.\n Next: conclusion.", {"from": "conclusion", "value": "42"})
        == "Done.\nconclusion: 42"
    )
    assert backbone_turn_text("No luck.\n Next: give up.", None) == "No luck.\nconclusion: give up."
