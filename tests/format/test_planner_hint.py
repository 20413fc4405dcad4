"""Prompt budget rule 5: the planner hint names the APIs not called yet, after the history, in the planner's prompt
only, and changes nothing when off."""

from __future__ import annotations

from dataclasses import replace

from umi.data import build_rows
from umi.format import DEFAULT_BUDGET
from umi.format.budget import HINT_HEAD
from umi.format.prompts import caller_prompt, planner_prompt, summarizer_prompt
from umi.schema import ToolDoc, Trajectory, Turn

HINT = replace(DEFAULT_BUDGET, planner_hint=True)
TOOLS = [
    ToolDoc(Name=name, function=f"Does {name}.", input={"q": "string, what to look for"})
    for name in ("alpha_for_x", "beta_for_x", "gamma_for_x")
]


def _history(*calls: str) -> list[Turn]:
    turns = [Turn(role="user", value="Find it.")]
    for name in calls:
        turns += [
            Turn(role="assistant", value=f"I call {name}.\n Next: caller."),
            Turn(role="caller", value=f'Action: {name}\nAction Input: {{"q": "it"}}'),
            Turn(role="observation", value='{"ok": 1}'),
        ]
    return turns


def _hint_line(prompt: str) -> str:
    return next(line for line in prompt.splitlines() if line.startswith(HINT_HEAD))


def test_the_hint_names_the_apis_not_called_yet_in_document_order() -> None:
    assert _hint_line(planner_prompt(TOOLS, _history(), budget=HINT)) == (
        "APIs not called yet: alpha_for_x, beta_for_x, gamma_for_x."
    )
    assert _hint_line(planner_prompt(TOOLS, _history("beta_for_x"), budget=HINT)) == (
        "APIs not called yet: alpha_for_x, gamma_for_x."
    )
    every = _history("alpha_for_x", "beta_for_x", "gamma_for_x")
    assert _hint_line(planner_prompt(TOOLS, every, budget=HINT)) == "APIs not called yet: none."


def test_the_hint_sits_after_the_history_of_the_planner_prompt_only() -> None:
    history = _history("alpha_for_x")
    with_hint, without = (
        planner_prompt(TOOLS, history, budget=HINT),
        planner_prompt(TOOLS, history, budget=DEFAULT_BUDGET),
    )
    assert HINT_HEAD not in without
    at = with_hint.index(HINT_HEAD)
    assert with_hint[: at - 1] == without[: at - 1]  # the same bytes up to the hint: prefixes stay shared
    assert with_hint.index('{"ok": 1}') < at < with_hint.index("You are the assistant")
    thought = history[-3].value
    assert caller_prompt(TOOLS, history[:-2], thought, budget=HINT) == caller_prompt(
        TOOLS, history[:-2], thought, budget=DEFAULT_BUDGET
    )
    assert summarizer_prompt(history, budget=HINT) == summarizer_prompt(history, budget=DEFAULT_BUDGET)


def test_rows_built_with_the_hint_differ_in_their_planner_inputs_only() -> None:
    conv = [
        *_history("alpha_for_x"),
        Turn(role="assistant", value="Done.\n Next: conclusion."),
        Turn(role="conclusion", value="Found."),
    ]
    traj = Trajectory(tools=TOOLS, instruction="Find it.", conversations=conv)
    hinted, plain = build_rows([traj], budget=HINT), build_rows([traj], budget=DEFAULT_BUDGET)
    assert [r.input for r in hinted.caller] == [r.input for r in plain.caller]
    assert [r.input for r in hinted.backbone] == [r.input for r in plain.backbone]
    assert [r.target for r in hinted.planner] == [r.target for r in plain.planner]
    lines = [_hint_line(r.input) for r in hinted.planner]
    assert lines == [
        "APIs not called yet: alpha_for_x, beta_for_x, gamma_for_x.",
        "APIs not called yet: beta_for_x, gamma_for_x.",
    ]
