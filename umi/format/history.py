"""The flat history string: `user: …</s>assistant: …</s>caller: …</s>observation: …conclusion: …</s>`.

One serializer for training, static evaluation and the running agent, so the three can never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from umi.format.templates import (
    BACKBONE_JOIN,
    CONCLUSION_LABEL,
    END_OF_TURN,
    GIVE_UP_ANSWER,
    NEXT_CALLER,
    NEXT_CONCLUSION,
    NEXT_GIVE_UP,
)
from umi.schema import Turn

TurnLike = Turn | dict[str, Any]

#: Roles whose text is not closed by `</s>`: the next role label follows the observation directly.
_OPEN_ROLES = frozenset({"observation"})


def _role_value(turn: TurnLike) -> tuple[str, str]:
    if isinstance(turn, Turn):
        return turn.role, turn.value
    return str(turn["from"]), str(turn["value"])


def render_turn(role: str, value: str) -> str:
    """One turn in the flat layout."""
    return f"{role}: {value}" + ("" if role in _OPEN_ROLES else END_OF_TURN)


def serialize_history(turns: Iterable[TurnLike]) -> str:
    """The stage-2 history used by the planner, caller and summarizer prompts."""
    return "".join(render_turn(*_role_value(t)) for t in turns)


def strip_marker(thought: str) -> str:
    """The planner thought without its routing marker, stripped (the backbone's thought)."""
    for marker in (NEXT_CALLER, NEXT_CONCLUSION, NEXT_GIVE_UP):
        thought = thought.replace(marker, "")
    return thought.strip()


def backbone_turn_text(thought: str, following: TurnLike | None) -> str:
    """The single-LLM (backbone) text of one planner turn: thought merged with its action or conclusion."""
    bare = strip_marker(thought)
    if NEXT_GIVE_UP in thought:
        return bare + BACKBONE_JOIN + f"{CONCLUSION_LABEL} {GIVE_UP_ANSWER}"
    if following is not None:
        role, value = _role_value(following)
        if role == "caller":
            return bare + BACKBONE_JOIN + value
        if role == "conclusion":
            return bare + BACKBONE_JOIN + f"{CONCLUSION_LABEL} " + value
    return bare


def to_backbone_turns(turns: Sequence[TurnLike]) -> list[tuple[str, str]]:
    """Convert a stage-2 history to backbone turns: each assistant turn absorbs the caller/conclusion after it.

    No `Next:` markers survive and no separate `caller:` turns remain.
    """
    out: list[tuple[str, str]] = []
    pending: str | None = None
    items = [_role_value(t) for t in turns]
    for i, (role, value) in enumerate(items):
        if role == "assistant":
            nxt = items[i + 1] if i + 1 < len(items) else None
            following = {"from": nxt[0], "value": nxt[1]} if nxt and nxt[0] in ("caller", "conclusion") else None
            out.append(("assistant", backbone_turn_text(value, following)))
            pending = nxt[0] if following and nxt else None
        elif role in ("caller", "conclusion") and pending == role:
            pending = None  # merged into the assistant turn before it
        else:
            out.append((role, value))
            pending = None
    return out


def serialize_backbone_history(turns: Sequence[TurnLike]) -> str:
    """The history of the single-LLM (backbone) prompt."""
    return "".join(render_turn(r, v) for r, v in to_backbone_turns(turns))


#: Observations longer than this are cut at run time by the reference (with `...` appended).
COMPAT_OBSERVATION_CHARS = 1024


def render_observation(response: str, error: str = "", *, compat: bool = False, max_chars: int | None = None) -> str:
    """The observation text that joins the history after a tool call.

    Default: the raw response text (what the training rows hold), or `{"error": …}` when the call failed, so
    the model sees at run time what it saw in training. `compat=True` reproduces the reference's run-time form
    instead: `json.dumps` of the response (or `{"message": error}`), cut to 1,024 characters plus `...`.
    """
    import json

    if compat:
        text = json.dumps(response) if response else json.dumps({"message": error})
        limit = max_chars or COMPAT_OBSERVATION_CHARS
        return text[:limit] + "..." if len(text) > limit else text
    # A call that succeeded with an empty body shows as empty, as the training rows hold it (ToolBench records
    # such observations as ""); only a real failure becomes an error object.
    text = response if response or not error else json.dumps({"error": error})
    if max_chars is not None and len(text) > max_chars:
        return text[:max_chars] + "..."
    return text
