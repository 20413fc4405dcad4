"""Tool documents as the model sees them: one `json.dumps` line per tool, `{"Name", "function", "input"}`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from umi.schema import ToolDoc, ToolSpec

ToolLike = ToolDoc | ToolSpec | dict[str, Any]


def to_tool_doc(tool: ToolLike, *, max_description: int | None = None) -> ToolDoc:
    """Bring any tool form to the released layout.

    A `ToolSpec` flattens each parameter to `"<type>, <description>"` (α-UMi's lossy form; the spec keeps the
    rest for validation). A dict must already be in the released layout.
    """
    if isinstance(tool, ToolDoc):
        return tool
    if isinstance(tool, dict):
        return ToolDoc.model_validate(tool)
    description = tool.description if max_description is None else tool.description[:max_description]
    inputs = {p.name: f"{p.type}, {p.description}" for p in tool.parameters}
    return ToolDoc(Name=tool.name, function=description, input=inputs)


def render_tool_line(tool: ToolLike) -> str:
    """One tool's line, without the newline. Plain `json.dumps` (ASCII escapes, `", "` separators)."""
    return json.dumps(to_tool_doc(tool).as_json_dict())


def render_docs(tools: Sequence[ToolLike]) -> str:
    """The `{doc}` slot: every tool's line followed by a newline."""
    return "".join(render_tool_line(t) + "\n" for t in tools)


def tool_names(tools: Sequence[ToolLike]) -> list[str]:
    return [to_tool_doc(t).Name for t in tools]


def render_tool_names(tools: Sequence[ToolLike]) -> str:
    """The `{tool_names}` slot: names joined by `", "`."""
    return ", ".join(tool_names(tools))
