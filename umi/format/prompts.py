"""Prompt builders: template + tool documents + history + role cue. The only place prompts are assembled."""

from __future__ import annotations

from collections.abc import Sequence

from umi.format.budget import PromptBudget, budget_docs, budget_history, planner_hint
from umi.format.docs import ToolLike, render_docs, render_tool_names
from umi.format.history import TurnLike, serialize_backbone_history, serialize_history
from umi.format.templates import (
    BACKBONE_CUE,
    CALL_HEAD,
    CALL_MID,
    CALLER_CUE,
    MARKER_SEPARATORS,
    NEXT_CALLER,
    NEXT_CONCLUSION,
    NEXT_GIVE_UP,
    PLANNER_CUE,
    SUMMARIZER_CUE,
    templates_for,
)


def _planner(tools: Sequence[ToolLike], history: Sequence[TurnLike], family: str, hint: bool = False) -> str:
    t = templates_for(family)
    text = serialize_history(history) + (planner_hint(tools, history) if hint else "")
    return t.planner.format(doc=render_docs(tools), history=text) + PLANNER_CUE


def _caller(tools: Sequence[ToolLike], history: Sequence[TurnLike], thought: str, family: str) -> str:
    t = templates_for(family)
    body = t.caller.format(
        doc=render_docs(tools),
        history=serialize_history(history),
        thought=thought,
        tool_names=render_tool_names(tools),
    )
    return body + CALLER_CUE


def _summarizer(history: Sequence[TurnLike], family: str) -> str:
    return templates_for(family).summarizer.format(history=serialize_history(history)) + SUMMARIZER_CUE


def _backbone(tools: Sequence[ToolLike], history: Sequence[TurnLike], family: str) -> str:
    t = templates_for(family)
    body = t.backbone.format(
        doc=render_docs(tools),
        history=serialize_backbone_history(history),
        tool_names=render_tool_names(tools),
    )
    return body + BACKBONE_CUE


def planner_prompt(
    tools: Sequence[ToolLike],
    history: Sequence[TurnLike],
    *,
    family: str = "toolbench",
    budget: PromptBudget | None = None,
) -> str:
    """What the planner sees: tool docs and the whole history, then ` assistant: ` (under `budget` if given)."""
    if budget is None:
        return _planner(tools, history, family)
    docs, hint = budget_docs(tools, budget, history), budget.planner_hint
    fitted = budget_history(history, lambda h: _planner(docs, h, family, hint), budget)
    return _planner(docs, fitted, family, hint)


def caller_prompt(
    tools: Sequence[ToolLike],
    history: Sequence[TurnLike],
    thought: str,
    *,
    family: str = "toolbench",
    budget: PromptBudget | None = None,
) -> str:
    """What the caller sees. `history` already ends with the planner turn whose text is `thought`."""
    if budget is None:
        return _caller(tools, history, thought, family)
    docs = budget_docs(tools, budget, history)
    fitted = budget_history(history, lambda h: _caller(docs, h, thought, family), budget)
    return _caller(docs, fitted, thought, family)


def summarizer_prompt(
    history: Sequence[TurnLike], *, family: str = "toolbench", budget: PromptBudget | None = None
) -> str:
    """What the summarizer sees: the history alone (ending with `assistant: … Next: conclusion.</s>`)."""
    if budget is None:
        return _summarizer(history, family)
    return _summarizer(budget_history(history, lambda h: _summarizer(h, family), budget), family)


def backbone_prompt(
    tools: Sequence[ToolLike],
    history: Sequence[TurnLike],
    *,
    family: str = "toolbench",
    budget: PromptBudget | None = None,
) -> str:
    """What the single-LLM backbone sees; `history` is in the stage-2 layout and is merged here."""
    if budget is None:
        return _backbone(tools, history, family)
    docs = budget_docs(tools, budget, history)
    return _backbone(docs, budget_history(history, lambda h: _backbone(docs, h, family), budget), family)


_MARKERS = {"caller": NEXT_CALLER, "conclusion": NEXT_CONCLUSION, "give up": NEXT_GIVE_UP}


def planner_text(thought: str | None, route: str) -> str:
    """A planner turn as the released data writes it: `<thought>\\n Next: caller.`.

    A missing thought (ChatGPT's `content: null`) gives just ` Next: caller.`.
    """
    marker = _MARKERS[route]
    return thought + MARKER_SEPARATORS[0] + marker if thought else MARKER_SEPARATORS[1] + marker


def caller_text(action: str, action_input: str) -> str:
    """The caller's text: `Action: <name>\\nAction Input: <args>`."""
    return f"{CALL_HEAD}{action}{CALL_MID}{action_input}"
