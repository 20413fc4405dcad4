"""Finishing a constrained planner turn that the token cap cut before its route marker.

A planner thought is bounded in words, not tokens (`umi.format.grammar.Bounds`), so `max_new_tokens` can end a
constrained turn mid-thought. One short call under the marker-only grammar then writes the route after the cut
thought. The agent and static evaluation both finish turns this way, through this one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from umi.format import parse_planner
from umi.format.grammar import marker_continuation, marker_grammar
from umi.models.base import Completion, GenerationParams
from umi.models.binding import RoleBinding

#: New tokens the marker-only call may write (the longest marker is a handful of tokens).
MARKER_TOKENS = 16


@dataclass(frozen=True)
class MarkerFinish:
    """One finished turn: the prompt continued, the marker call's completion, and the planner text now whole."""

    prompt: str
    completion: Completion
    text: str


def needs_marker(c: Completion) -> bool:
    """A constrained planner output the token cap cut before any route marker."""
    return c.constrained and c.finish_reason == "length" and not parse_planner(c.text).has_marker


def finish_markers(
    planner: RoleBinding, prompts: Sequence[str], cut_texts: Sequence[str], params: GenerationParams, family: str
) -> list[MarkerFinish]:
    """Continue each cut planner text (after its prompt) under the marker-only grammar, in one batch."""
    if not prompts:
        return []
    conts = [marker_continuation(p, t) for p, t in zip(prompts, cut_texts, strict=True)]
    marker_params = replace(params, grammar=marker_grammar(family), max_new_tokens=MARKER_TOKENS)
    outs = planner.complete([p for p, _ in conts], marker_params)
    return [MarkerFinish(p, c, thought + c.text) for (p, thought), c in zip(conts, outs, strict=True)]
