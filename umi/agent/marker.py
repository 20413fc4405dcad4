"""Finishing a constrained turn that the token cap cut inside its thought.

Thoughts are bounded in words, not tokens (`umi.format.grammar.Bounds`), so `max_new_tokens` can end a constrained
turn mid-thought. A planner turn is then finished by one short call under the marker-only grammar (the route after
the cut thought); a backbone turn by one call under its tail grammar (the action block or the conclusion after the
cut thought) — without it, a cut inside the thought's own `Action: <prose>` would be read as a call of an API named
by that prose. The agent and static evaluation both finish turns this way, through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from umi.format import parse_planner
from umi.format.docs import ToolLike
from umi.format.grammar import backbone_continuation, backbone_tail_grammar, marker_continuation, marker_grammar
from umi.format.templates import ACTION_INPUT_LABEL, CONCLUSION_LABEL
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
    planner: RoleBinding,
    prompts: Sequence[str],
    cut_texts: Sequence[str],
    params: GenerationParams,
    family: str,
    *,
    final: bool = False,
) -> list[MarkerFinish]:
    """Continue each cut planner text (after its prompt) under the marker-only grammar, in one batch (`final`: the
    budget's last step's markers, no `Next: caller.`)."""
    if not prompts:
        return []
    conts = [marker_continuation(p, t) for p, t in zip(prompts, cut_texts, strict=True)]
    marker_params = replace(params, grammar=marker_grammar(family, final), max_new_tokens=MARKER_TOKENS)
    outs = planner.complete([p for p, _ in conts], marker_params)
    return [MarkerFinish(p, c, thought + c.text) for (p, thought), c in zip(conts, outs, strict=True)]


def needs_tail(c: Completion) -> bool:
    """A constrained backbone output the token cap cut inside its thought (before the action block's
    `Action Input:` and before any conclusion)."""
    return (
        c.constrained
        and c.finish_reason == "length"
        and ACTION_INPUT_LABEL not in c.text
        and CONCLUSION_LABEL not in c.text
    )


def finish_backbones(
    backbone: RoleBinding,
    prompts: Sequence[str],
    cut_texts: Sequence[str],
    tools: Sequence[Sequence[ToolLike]],
    params: GenerationParams,
    *,
    final: bool = False,
) -> list[MarkerFinish]:
    """Continue each cut backbone text (after its prompt) under the tail grammar of its own tools: one engine call
    per distinct grammar, so the cut turns of steps that share a tool set are finished as one batch."""
    conts = [backbone_continuation(prompt, cut) for prompt, cut in zip(prompts, cut_texts, strict=True)]
    groups: dict[str, list[int]] = {}
    for i, step_tools in enumerate(tools):
        groups.setdefault(backbone_tail_grammar(step_tools, final=final), []).append(i)
    done: dict[int, MarkerFinish] = {}
    for grammar, idx in groups.items():
        outs = backbone.complete([conts[i][0] for i in idx], replace(params, grammar=grammar))
        for i, c in zip(idx, outs, strict=True):
            cont, thought = conts[i]
            done[i] = MarkerFinish(cont, c, thought + c.text)
    return [done[i] for i in range(len(conts))]
