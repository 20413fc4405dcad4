"""Role grammars: what each α-UMi role is allowed to write, as llguidance (Lark-like) grammar texts.

Built from the same tool documents and templates the prompts are built from, so the prompt and the grammar
cannot disagree:

* planner — a bounded thought (no end-of-turn text, no `Next: ` inside), then exactly one route marker joined the
  way the released data joins it (`<thought>\\n Next: caller.` or `<thought> Next: caller.`), then nothing;
* caller — `Action: <one of the episode's exact API names>\\nAction Input: <that API's argument object>`;
* backbone — a bounded thought, then the action block or `conclusion: <answer>` (give up is `conclusion: give up.`);
* summarizer — bounded free text without end-of-turn text, route markers or the caller's labels, so it cannot open
  another role's turn; it may end with the end-of-turn text, which closes it.

Grammars are plain text (engines translate them; `umi.models` never builds one) and are cached per tool set:
an episode's tools do not change between steps, so every step reuses the same text (and the engines' compiled
form of it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache

from umi.format.docs import ToolLike, to_tool_doc
from umi.format.grammar_lark import (
    DEFAULT_BOUNDS,
    FORBIDDEN_IN_TEXT,
    LLGUIDANCE_HEADER,
    ArgSpec,
    Bounds,
    at_most,
    free_text_rules,
    literal,
    object_rules,
    value_tokens,
)
from umi.format.history import backbone_turn_text
from umi.format.templates import (
    CALL_HEAD,
    CALL_MID,
    CONCLUSION_LABEL,
    END_OF_TURN,
    NEXT_CALLER,
    NEXT_CONCLUSION,
    NEXT_GIVE_UP,
    templates_for,
)
from umi.schema import ToolSpec

GRAMMAR_ROLES: tuple[str, ...] = ("planner", "caller", "summarizer", "backbone")

#: The word that starts an action block's second line; a backbone thought never writes it.
_INPUT_WORD = "Input:"
#: What every route marker starts with (`Next: `): a thought must not contain it.
_MARKER_PREFIX = os.path.commonprefix([NEXT_CALLER, NEXT_CONCLUSION, NEXT_GIVE_UP])

ToolKey = tuple[str, ...]


def _arg_specs(tool: ToolLike) -> tuple[str, list[ArgSpec] | None]:
    """(API name, its parameters), or None for parameters when the document lists none (unknown, not absent)."""
    if isinstance(tool, ToolSpec):
        args = [ArgSpec(p.name, p.type, tuple(p.enum) if p.enum else None, p.required) for p in tool.parameters]
        return tool.name, args
    doc = to_tool_doc(tool)
    if not doc.input:
        return doc.Name, None
    # α-UMi documents write each parameter as "<type>, <description>" and carry no required flag.
    return doc.Name, [ArgSpec(name, text.split(",", 1)[0].strip() or "string") for name, text in doc.input.items()]


def tool_key(tools: Sequence[ToolLike]) -> ToolKey:
    """A hashable key of a tool set: what the grammar cache is keyed on."""
    out = []
    for t in tools:
        name, args = _arg_specs(t)
        out.append(json.dumps([name, None if args is None else [a.__dict__ for a in args]], default=list))
    return tuple(out)


def _api_alternatives(key: ToolKey, bounds: Bounds) -> list[str]:
    """`api: "<name>\\nAction Input: " api_i_args | …` plus each API's argument rules."""
    rules: list[str] = []
    alts: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(key):
        name, raw_args = json.loads(item)
        if name in seen:  # a repeated name adds nothing the first did not allow
            continue
        seen.add(name)
        args = None if raw_args is None else [ArgSpec(**a) for a in raw_args]
        alts.append(f"{literal(name + CALL_MID)} api{i}_args")
        rules += object_rules(f"api{i}_args", args, bounds)
    if not alts:
        raise ValueError("a caller grammar needs at least one tool; the episode has none")
    return ["api: " + " | ".join(alts), *rules]


def _markers(family: str, final: bool = False) -> list[str]:
    """The route markers a planner may write; on an episode's `final` step not `Next: caller.` (a call whose
    observation no later step would read)."""
    markers = [NEXT_CONCLUSION] if final else [NEXT_CALLER, NEXT_CONCLUSION]
    if templates_for(family).allows_give_up:
        markers.append(NEXT_GIVE_UP)
    return markers


@lru_cache(maxsize=16)
def planner_grammar(family: str = "toolbench", bounds: Bounds = DEFAULT_BOUNDS, final: bool = False) -> str:
    """Thought words, one marker, end. `final`: the step budget's last step, where only the conclusion (or give
    up) may follow, so an episode whose budget runs out still ends with the summarizer's answer.

    A word cannot contain `Next: `, so where a word could start, `Next: ` can only begin the marker: the lexer
    never has to guess where the thought stops. The whitespace before the marker is any whitespace run (the
    released `\n ` and ` ` among them): llguidance's lexer cannot tell a separator that belongs to the
    marker from one that belongs to the thought without looking ahead.
    """
    marks = " | ".join(literal(m) for m in _markers(family, final))
    return LLGUIDANCE_HEADER + "\n".join(
        [
            "start: thought marker",
            f"marker: {marks}",
            *free_text_rules("thought", bounds.thought_words, (*FORBIDDEN_IN_TEXT, _MARKER_PREFIX), bounds),
        ]
    )


@lru_cache(maxsize=8)
def marker_grammar(family: str = "toolbench", final: bool = False) -> str:
    """Exactly one route marker: the planner's turn finished when its thought ran into the token cap (`final`:
    the markers of the budget's last step, as in `planner_grammar`).

    A thought is bounded in words, not tokens (see `Bounds`), so a constrained planner can still reach the
    caller's `max_new_tokens` mid-thought; the agent and static evaluation then continue the same text with this
    grammar (`umi.format.marker_continuation`), so every constrained planner turn ends with a marker."""
    return LLGUIDANCE_HEADER + "start: " + " | ".join(literal(m) for m in _markers(family, final))


@lru_cache(maxsize=256)
def _caller_cached(key: ToolKey, bounds: Bounds) -> str:
    return LLGUIDANCE_HEADER + "\n".join(
        [f"start: {literal(CALL_HEAD)} api", *_api_alternatives(key, bounds), value_tokens(bounds)]
    )


def caller_grammar(tools: Sequence[ToolLike], bounds: Bounds = DEFAULT_BOUNDS) -> str:
    """`Action: <exact API name>\\nAction Input: <that API's argument object>`, nothing after."""
    return _caller_cached(tool_key(tools), bounds)


#: `\nconclusion: ` and `\nconclusion: give up.` as the backbone rows write them.
_CONCLUSION_JOIN = backbone_turn_text("", {"from": "conclusion", "value": "\x00"}).split("\x00")[0]
#: What joins a backbone thought to its tail (the newline of `_CONCLUSION_JOIN`).
_TAIL_JOIN = _CONCLUSION_JOIN[: len(_CONCLUSION_JOIN) - len(_CONCLUSION_JOIN.lstrip())]


#: What an answer's words never contain: end-of-turn text, a route marker, the caller's labels (no released
#: conclusion of the test set has any of them; a summarizer that copies the history writes them).
_ANSWER_FORBIDDEN = (*FORBIDDEN_IN_TEXT, _MARKER_PREFIX, "Action:", "Input:")


def _answer_rules(bounds: Bounds) -> list[str]:
    """`answer`: bounded words, then optionally the end-of-turn text, which ends it. The roles were trained to end
    an answer with the literal `</s>` (not the tokenizer's end-of-sequence token): an answer that could not write
    it could only stop at the token cap; after it the grammar is complete and the engines' stop string cuts it."""
    return [
        f"answer: answer_word answer_more ANSWER_SPACE? {literal(END_OF_TURN)}?",
        *at_most("answer_more", "ANSWER_SPACE answer_word", bounds.answer_words),
        *free_text_rules(
            "answer", bounds.answer_words, _ANSWER_FORBIDDEN, bounds, bounds.answer_word_tokens, lt_first_only=True
        )[1:],
    ]


def _tail_rules(key: ToolKey, bounds: Bounds) -> list[str]:
    """What a backbone tail refers to, shared by the whole backbone grammar and the tail grammar alone: the
    conclusion's answer, every API's action block, the value lexemes."""
    return [*_answer_rules(bounds), *_api_alternatives(key, bounds), value_tokens(bounds)]


@lru_cache(maxsize=256)
def _backbone_cached(key: ToolKey, family: str, bounds: Bounds, final: bool = False) -> str:
    # `Input:` never in a thought (no gold thought of OOD-400 has it): a thought may write `Action: <prose>` as
    # released thoughts do, but never a whole fake action block that the paper-exact parser would read as the call
    # and `needs_tail` as a started block (seen with a shortlist: `Action: Bitcoinist News\nAction Input: {…`).
    forbidden = (*FORBIDDEN_IN_TEXT, CONCLUSION_LABEL, _MARKER_PREFIX, _INPUT_WORD)
    head, concl = literal(CALL_HEAD), literal(_CONCLUSION_JOIN.lstrip())
    if final:  # the budget's last step: the thought, then the conclusion (`give up.` is one of its answers)
        return LLGUIDANCE_HEADER + "\n".join(
            [
                f"start: thought {concl} answer",
                *free_text_rules("thought", bounds.thought_words, forbidden, bounds),
                *_tail_rules(key, bounds),
            ]
        )
    # 39 released backbone thoughts write `Action: <prose>` before the real action block. After `Action: ` an
    # API name goes on as the action block, anything else goes on as thought (at most three times).
    depth = 3
    tails = [f"tail{i}: {head} (api | more{i}) | {concl} answer" for i in range(depth)]
    mores = [f"more{i}: THOUGHT_SPACE? thought_word THOUGHT_SPACE thought tail{i + 1}" for i in range(depth - 1)]
    return LLGUIDANCE_HEADER + "\n".join(
        [
            "start: thought tail0",
            *tails[:-1],
            f"tail{depth - 1}: {head} api | {concl} answer",
            *mores,
            *free_text_rules("thought", bounds.thought_words, forbidden, bounds),
            *_tail_rules(key, bounds),
        ]
    )


def backbone_grammar(
    tools: Sequence[ToolLike], family: str = "toolbench", bounds: Bounds = DEFAULT_BOUNDS, final: bool = False
) -> str:
    """Thought, then `\\nAction: …\\nAction Input: {…}` or `\\nconclusion: <answer>` (`give up.` included);
    `final` (the step budget's last step): the conclusion only."""
    return _backbone_cached(tool_key(tools), family, bounds, final)


@lru_cache(maxsize=256)
def _backbone_tail_cached(key: ToolKey, bounds: Bounds, final: bool = False) -> str:
    concl = literal(_CONCLUSION_JOIN.lstrip())
    start = f"{concl} answer" if final else f"{literal(CALL_HEAD)} api | {concl} answer"
    return LLGUIDANCE_HEADER + "\n".join([f"start: {start}", *_tail_rules(key, bounds)])


def backbone_tail_grammar(tools: Sequence[ToolLike], bounds: Bounds = DEFAULT_BOUNDS, final: bool = False) -> str:
    """What ends a backbone turn after its thought: the action block or the conclusion (the backbone grammar's
    tail alone; `final`: the conclusion only). A backbone thought the token cap cut is finished under it, as a
    cut planner thought is finished under `marker_grammar`."""
    return _backbone_tail_cached(tool_key(tools), bounds, final)


@lru_cache(maxsize=4)
def summarizer_grammar(bounds: Bounds = DEFAULT_BOUNDS) -> str:
    """A bounded answer: words (at least one) that never write end-of-turn text, a route marker or the caller's
    labels, then optionally the end-of-turn text that ends the turn (see `_answer_rules`)."""
    return LLGUIDANCE_HEADER + "\n".join(["start: answer", *_answer_rules(bounds)])


#: Nesting depth of a simulated API response (objects and arrays inside objects).
SIMULATOR_DEPTH = 3


@lru_cache(maxsize=4)
def simulator_grammar(bounds: Bounds = DEFAULT_BOUNDS) -> str:
    """A tool simulator's reply in the shape its prompt asks for (`umi.serve.tool_server.simulator_prompt`):
    `{"error": <string>, "response": <JSON value>}`, objects nested at most `SIMULATOR_DEPTH` deep, every piece
    bounded like an argument object's. StableToolBench's virtual-API protocol answers in this shape, so a
    constrained simulator can always be parsed (no retry loop for a reply that is not JSON)."""
    ws = "SIM_WS?"  # pretty-printed replies indent deeper than argument objects do
    error, response = literal('"error": '), literal('"response": ')
    rules = [f'start: "{{" {ws} {error} string "," {ws} {response} value0 {ws} "}}"']
    for d in range(SIMULATOR_DEPTH):
        inner = f"value{d + 1}" if d + 1 < SIMULATOR_DEPTH else "leaf"
        rules += [
            f"value{d}: scalar | list{d} | dict{d}",
            f'list{d}: "[]" | "[" {ws} {inner} list{d}_more {ws} "]"',
            *at_most(f"list{d}_more", f'"," {ws} {inner}', bounds.array_items - 1),
            f'dict{d}: "{{}}" | "{{" {ws} FREE_KEY ": " {inner} dict{d}_more {ws} "}}"',
            *at_most(f"dict{d}_more", f'"," {ws} FREE_KEY ": " {inner}', bounds.free_pairs - 1),
        ]
    rules += ["leaf: scalar | array", f"SIM_WS: /[ \\n]{{1,{bounds.whitespace}}}/"]
    return LLGUIDANCE_HEADER + "\n".join([*rules, value_tokens(bounds)])


def role_grammar(
    role: str,
    tools: Sequence[ToolLike],
    family: str = "toolbench",
    bounds: Bounds = DEFAULT_BOUNDS,
    *,
    final: bool = False,
) -> str:
    """The grammar of `role` for an episode with `tools` (one entry point for agents and evaluation). `final`:
    the agent's last step of its budget, where the planner and the backbone may only conclude or give up."""
    if role == "planner":
        return planner_grammar(family, bounds, final)
    if role == "caller":
        return caller_grammar(tools, bounds)
    if role == "backbone":
        return backbone_grammar(tools, family, bounds, final)
    if role == "summarizer":
        return summarizer_grammar(bounds)
    raise ValueError(f"no grammar for role {role!r}; use one of {', '.join(GRAMMAR_ROLES)}")


__all__ = [
    "DEFAULT_BOUNDS",
    "marker_grammar",
    "marker_continuation",
    "GRAMMAR_ROLES",
    "Bounds",
    "backbone_continuation",
    "backbone_grammar",
    "backbone_tail_grammar",
    "caller_grammar",
    "planner_grammar",
    "role_grammar",
    "simulator_grammar",
    "summarizer_grammar",
    "tool_key",
]


#: What separates a cut thought from the marker written after it: the released rows' layout (`planner_text`).
MARKER_SEPARATOR = "\n "


def marker_continuation(prompt: str, cut_thought: str) -> tuple[str, str]:
    """(the prompt to continue, the thought text so far) for a planner output cut by the token cap."""
    thought = cut_thought.rstrip()
    return prompt + thought + MARKER_SEPARATOR, thought + MARKER_SEPARATOR


def backbone_continuation(prompt: str, cut_thought: str) -> tuple[str, str]:
    """(the prompt to continue, the text so far) for a backbone output cut by the token cap inside its thought:
    the thought, then what the released rows put between a thought and its `Action:` / `conclusion:`."""
    thought = cut_thought.rstrip() + _TAIL_JOIN
    return prompt + thought, thought
