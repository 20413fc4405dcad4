"""Parsers of model output. They never raise on model text: each returns a typed result saying what was missing.

Model output is data. Nothing here (or anywhere in umi) evaluates it as code; arguments are parsed with
`json.loads` only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from umi.format.templates import (
    ACTION_INPUT_LABEL,
    ACTION_LABEL,
    CALL_HEAD,
    CALL_MID,
    CONCLUSION_LABEL,
    END_OF_TURN,
    NEXT_CALLER,
    NEXT_CONCLUSION,
    NEXT_GIVE_UP,
)

Route = Literal["caller", "conclusion", "give up", "none"]

_ACTION = ACTION_LABEL
_ACTION_INPUT = ACTION_INPUT_LABEL
_CONCLUSION = CONCLUSION_LABEL


def clean_generation(text: str) -> str:
    """Cut a raw generation at the first end-of-turn and drop the leading `: ` some checkpoints emit."""
    text = text.split(END_OF_TURN, 1)[0]
    if text.startswith(": "):
        text = text[2:]
    return text


@dataclass(frozen=True)
class PlannerOutput:
    """The planner's route and its thought, cut right after the marker (what goes into the history)."""

    route: Route
    thought: str
    raw: str
    #: False when the text carried no `Next:` marker (route is then "none": the caller decides the default).
    has_marker: bool

    @property
    def empty(self) -> bool:
        return self.raw.strip() in ("", ".", ",")


def parse_planner(text: str) -> PlannerOutput:
    """Route a planner generation: give up, then conclusion, then caller (the reference's order)."""
    raw = clean_generation(text)
    for marker, route in ((NEXT_GIVE_UP, "give up"), (NEXT_CONCLUSION, "conclusion"), (NEXT_CALLER, "caller")):
        idx = raw.find(marker)
        if idx >= 0:
            return PlannerOutput(route=route, thought=raw[: idx + len(marker)], raw=raw, has_marker=True)  # type: ignore[arg-type]
    return PlannerOutput(route="none", thought=raw, raw=raw, has_marker=False)


@dataclass(frozen=True)
class CallerOutput:
    """The caller's action name and argument text, plus the arguments parsed as a JSON object when they are one."""

    action: str | None
    action_input: str | None
    arguments: dict[str, Any] | None
    raw: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _after_last(text: str, key: str) -> str | None:
    idx = text.rfind(key)
    return None if idx < 0 else text[idx + len(key) :]


def parse_action(text: str) -> tuple[str | None, str | None]:
    """(action, action input) as the reference read them: after the last `Action:` / `Action Input:`."""
    action_input = _after_last(text, _ACTION_INPUT)
    # The last "Action:" that is not the start of "Action Input:".
    action = None
    for m in re.finditer(re.escape(_ACTION), text):
        if not text.startswith(_ACTION_INPUT, m.start()):
            action = text[m.end() :]
    if action is not None:
        cut = action.find(_ACTION_INPUT)
        if cut >= 0:
            action = action[:cut]
        action = action.strip()
    return action, None if action_input is None else action_input.strip()


def parse_arguments(action_input: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """JSON-object arguments, or the reason they are not one. An absent input means `{}`."""
    if action_input is None or action_input == "":
        return {}, None
    try:
        value = json.loads(action_input)
    except json.JSONDecodeError as exc:
        return None, f"Action Input is not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return None, f"Action Input must be a JSON object, got {type(value).__name__}"
    return value, None


def parse_caller(text: str, *, structured: bool = False) -> CallerOutput:
    """Parse `Action: <name>\\nAction Input: <json>`; problems name what is missing or malformed.

    By default as the reference read it (the text after the *last* `Action:` / `Action Input:`; evaluation scores
    it so). `structured`: the output was written under the caller grammar, which fixes its layout, so the name is
    its first line and the input everything after the first `Action Input:` — an argument string that itself
    holds `Action: …` (seen live: `{"Question": "Action: getUserProfile"}`) stays an argument instead of becoming
    the call. (Forbidding the labels inside strings in the grammar instead overran llguidance's lexer limits.)"""
    raw = clean_generation(text)
    if structured and raw.startswith(CALL_HEAD) and CALL_MID in raw:
        cut = raw.index(CALL_MID)
        action: str | None = raw[len(CALL_HEAD) : cut].strip()
        action_input: str | None = raw[cut + len(CALL_MID) :].strip()
    else:
        action, action_input = parse_action(raw)
    problems: list[str] = []
    if not action:
        problems.append("no API name after 'Action:'")
    arguments, why = parse_arguments(action_input)
    if why:
        problems.append(why)
    return CallerOutput(
        action=action or None, action_input=action_input, arguments=arguments, raw=raw, problems=problems
    )


BackboneKind = Literal["call", "conclusion", "give up", "none"]


@dataclass(frozen=True)
class BackboneOutput:
    """A single-LLM output: thought plus an action, a conclusion, or give up."""

    kind: BackboneKind
    thought: str
    raw: str
    action: str | None = None
    action_input: str | None = None
    arguments: dict[str, Any] | None = None
    answer: str | None = None
    problems: list[str] = field(default_factory=list)


def parse_backbone(text: str) -> BackboneOutput:
    """`<thought>\\nAction: …\\nAction Input: …`, `<thought>\\nconclusion: <answer>` or `… conclusion: give up.`."""
    raw = clean_generation(text)
    c_idx = raw.rfind(_CONCLUSION)
    a_idx = raw.find(_ACTION)
    if c_idx >= 0 and (a_idx < 0 or c_idx > a_idx):
        thought = raw[:c_idx].strip()
        answer = raw[c_idx + len(_CONCLUSION) :].strip()
        if answer.rstrip(".").strip().lower() == "give up":
            return BackboneOutput(kind="give up", thought=thought, raw=raw)
        return BackboneOutput(kind="conclusion", thought=thought, raw=raw, answer=answer)
    if a_idx >= 0:
        action, action_input = parse_action(raw)
        arguments, why = parse_arguments(action_input)
        problems = [p for p in ("no API name after 'Action:'" if not action else None, why) if p]
        return BackboneOutput(
            kind="call",
            thought=raw[:a_idx].strip(),
            raw=raw,
            action=action or None,
            action_input=action_input,
            arguments=arguments,
            problems=problems,
        )
    return BackboneOutput(kind="none", thought=raw.strip(), raw=raw, problems=["neither 'Action:' nor 'conclusion:'"])


# --- the static-evaluation step text ------------------------------------------------------------------------

PlanClass = Literal["call", "finish", "give up"]


@dataclass(frozen=True)
class StepText:
    """A static-eval reference or prediction parsed exactly as the reference's `parse_output` did."""

    plan: PlanClass
    action: str = "none"
    action_input: str = "{}"
    answer: str = ""


def step_text(planner: str, role_output: str | None, route: Route) -> str:
    """The static-eval layout: `assistant: <planner></s>caller: <out>`, `…</s>conclusion: <out>`, or planner."""
    from umi.format.history import render_turn

    if route == "give up" or role_output is None:
        return planner
    label = "caller" if route in ("caller", "none") else "conclusion"
    return render_turn("assistant", planner) + f"{label}: {role_output}"


def parse_step_text(text: str) -> StepText:
    """Classify a step text: `Next: give up` → give up; `Next: conclusion` → finish; otherwise a call."""
    if "Next: give up" in text:
        return StepText(plan="give up")
    if "Next: conclusion" in text:
        answer = text.split("conclusion: ")[-1].replace(END_OF_TURN, "")
        return StepText(plan="finish", answer=answer)
    parts = text.split(END_OF_TURN)
    seg = parts[1] if len(parts) > 1 else ""
    action, action_input = parse_action(seg)
    return StepText(
        plan="call",
        action=action if action is not None else "none",
        action_input=action_input if action_input is not None else "{}",
    )
