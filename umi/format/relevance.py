"""Tool relevance to the user's query: a BM25 ranking of the tool documents, no model and no tokenizer.

Why here: the order of the tool documents is part of the prompt's bytes, so a prompt budget that orders them by
relevance (`PromptBudget.tool_order = "query"`) must rank them the same way in training rows, the agent and the
evaluators; and the no-model `lexical` baseline (`umi.evaluate.baselines`) uses the same ranking. Position is
something a small model learns from the data — the train part's first call is the first listed tool in 86 of 218
tasks, the test part's in only 51 of 181 — so listing the tools the query names first makes that position the
relevant one (98 and 78 first calls).

Words are lower-case runs of letters and digits (two or more), with `_` splitting API names into their words; a
tool's document is its name and description. Ties keep the given order, so an uninformative query leaves it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from umi.format.docs import ToolLike, to_tool_doc
from umi.format.parse import parse_action

_Tool = TypeVar("_Tool", bound=ToolLike)


def words(text: str) -> list[str]:
    """The ranking's words of `text`."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")) if len(w) > 1]


def query_of(history: Sequence[Any]) -> str:
    """The user's query: the first `user` turn of a history (Turn objects or `{"from", "value"}` dicts)."""
    for t in history:
        role = t.get("from") if isinstance(t, dict) else t.role
        if role == "user":
            return str(t.get("value", "") if isinstance(t, dict) else t.value)
    return ""


def relevance_order(query: str, tools: Sequence[ToolLike]) -> list[int]:
    """Indices of `tools`, most relevant to `query` first (BM25 over name + description; stable on ties)."""
    from rank_bm25 import BM25Okapi

    if not tools:
        return []
    docs = [to_tool_doc(t) for t in tools]
    scores = BM25Okapi([words(d.Name) + words(d.function) or [""] for d in docs]).get_scores(words(query))
    return sorted(range(len(docs)), key=lambda i: -float(scores[i]))


def called_apis(history: Sequence[Any]) -> set[str]:
    """The API names the history's caller turns called (Turn objects or `{"from", "value"}` dicts)."""
    out: set[str] = set()
    for t in history:
        role = t.get("from") if isinstance(t, dict) else t.role
        if role == "caller":
            name = parse_action(str(t.get("value", "") if isinstance(t, dict) else t.value))[0]
            if name:
                out.add(name)
    return out


def shortlist(history: Sequence[Any], tools: Sequence[ToolLike], k: int) -> list[ToolLike]:
    """The `k` tools a constrained caller (or backbone) may call at this step: the BM25 ranking of the tool
    documents against the user's query (`relevance_order`), APIs the history already called moved after the rest
    (a repeat is rarely the gold call: 10 of the test subset's 53 later calls), `Finish` left out. `k <= 0`: all
    tools, unchanged.

    Why: the trained 135M planners name the previous call's API far more often than the gold one (27–34 vs 10–14
    of the subset's 73 call steps, `benchmarks/results/planner_choice.md`) while this ranking alone picks the gold
    API 28 times. A shortlist in the caller's grammar is ToolBench's retriever setting moved into decoding: the
    prompt still lists every tool (the training bytes), only the grammar's API alternatives shrink, so the model
    chooses among the retriever's best and writes the arguments."""
    if k <= 0:
        return list(tools)
    names = [to_tool_doc(t).Name for t in tools]
    callable_ = [i for i, n in enumerate(names) if n != "Finish"]
    if not callable_:
        return list(tools)
    ranked = [callable_[i] for i in relevance_order(query_of(history), [tools[i] for i in callable_])]
    called = called_apis(history)
    ranked = [i for i in ranked if names[i] not in called] + [i for i in ranked if names[i] in called]
    keep = set(ranked[:k])
    return [t for i, t in enumerate(tools) if i in keep]  # the documents' own order: one grammar per set


def thought_tools(thought: str, tools: Sequence[_Tool]) -> list[_Tool]:
    """The tools a caller that follows its planner may call: those whose exact name the thought writes as a whole
    word (not inside a longer name), in the documents' order; every tool when the thought names none.

    Why: the caller's job is to turn the planner's thought into a call, yet the trained callers call the previous
    call's API against a thought that names another (given the gold thought, 13 of the 38 later call steps whose
    thought names a new API, counted from the kept predictions of `glpft2-gold-thought-q8`). Limiting the grammar to the
    named APIs makes the call the planner's choice."""
    named = [
        t for t in tools if re.search(rf"(?<![A-Za-z0-9_]){re.escape(to_tool_doc(t).Name)}(?![A-Za-z0-9_])", thought)
    ]
    return named or list(tools)
