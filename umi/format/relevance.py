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
from typing import Any

from umi.format.docs import ToolLike, to_tool_doc


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
