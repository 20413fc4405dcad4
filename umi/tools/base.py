"""Tool calls, observations and the `Executor` protocol every tool back end implements.

An executor never raises on a bad call: an unknown API name, arguments that are not a JSON object or miss a
required parameter, a timeout, an HTTP error or an exception inside a Python tool all come back as an
`Observation` with `error` set, which the agent writes into the history for the planner to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from umi.schema import ToolSpec

#: Default cap on observation text (characters); the reference cut run-time observations at 1,024.
DEFAULT_MAX_OBSERVATION = 2048


@dataclass(frozen=True)
class ToolCall:
    """A call the caller asked for: an exact API name and JSON-object arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """What a tool gave back. `response` is the tool's text; `error` says what went wrong, if anything."""

    response: str = ""
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error


@runtime_checkable
class Executor(Protocol):
    """Runs one tool call. Must not raise for anything a model could cause."""

    def execute(self, call: ToolCall) -> Observation: ...


def truncate(text: str, limit: int | None) -> str:
    """Cut an observation to `limit` characters, marking the cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + "..."


def validate_call(call: ToolCall, tools: dict[str, ToolSpec]) -> str | None:
    """Why a call cannot run against these tools (exact names only), or None when it can."""
    if not call.name:
        return "empty API name; use one of: " + ", ".join(tools)
    spec = tools.get(call.name)
    if spec is None:
        return f"No such function name: {call.name}. Available: " + ", ".join(tools)
    missing = [p for p in spec.required if p not in call.arguments]
    if missing:
        return f"missing required parameter(s) {', '.join(missing)} for {call.name}"
    return None
