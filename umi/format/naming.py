"""ToolBench's naming rules: the API names a ToolBench-trained model has seen (`<api>_for_<tool>`, ≤ 64 chars)."""

from __future__ import annotations

import re

#: Python keywords (and a few literals) ToolBench renamed to `is_<x>` so they could be Python identifiers.
KEYWORD_RENAMES = frozenset({"from", "class", "return", "false", "true", "id", "and"})
MAX_NAME = 64

_NON_WORD = re.compile(r"[^a-zA-Z0-9_\u4e00-\u9fff]")
_RUNS = re.compile(r"_+")


def standardize(name: str) -> str:
    """Every character outside `[a-zA-Z0-9_]` and CJK becomes `_`, runs collapse, lower case, `_` trimmed."""
    return _RUNS.sub("_", _NON_WORD.sub("_", name)).lower().strip("_")


def standardize_category(category: str) -> str:
    """Category folders: spaces, commas and slashes become `_`, and `__` collapses."""
    out = category.replace(" ", "_").replace(",", "_").replace("/", "_")
    while "__" in out:
        out = out.replace("__", "_")
    return out


def change_name(name: str) -> str:
    """`from` → `is_from` and the like."""
    return f"is_{name}" if name in KEYWORD_RENAMES else name


def api_function_name(api_name: str, tool_name: str) -> str:
    """The function name a ToolBench model calls: `change_name(standardize(api)) + "_for_" + standardize(tool)`,
    keeping the last 64 characters (so near-duplicates can collide; umi reports such collisions)."""
    full = f"{change_name(standardize(api_name))}_for_{standardize(tool_name)}"
    return full[-MAX_NAME:]


def tool_of(function_name: str) -> str:
    """The tool part of a `<api>_for_<tool>` name (the whole name when there is no `_for_`)."""
    return function_name.rsplit("_for_", 1)[-1]
