"""The OpenAI Chat Completions request shapes the agent server accepts, and its OpenAI-style error objects.

Every client mistake becomes `ClientError(param, message)` and then HTTP 400 with
`{"error": {"message", "type": "invalid_request_error", "param", "code"}}`, `param` naming the field the way
OpenAI does (`messages[2].tool_call_id`), so a client sees what to fix instead of a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ClientError(ValueError):
    """A request the client must fix. `param` is the offending field (`messages[1].role`), or None."""

    def __init__(self, param: str | None, message: str, *, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.status = status
        self.code = code


def error_body(
    message: str, *, param: str | None = None, kind: str = "invalid_request_error", code: Any = None
) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def param_path(loc: Sequence[Any]) -> str:
    """pydantic's `("body", "messages", 1, "role")` → OpenAI's `messages[1].role`."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union", "literal[")) or "[" in str(part):
            continue  # pydantic's names for union branches say nothing to a client
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


class _Open(BaseModel):
    """OpenAI adds optional fields over time; unknown ones are accepted and ignored, not rejected."""

    model_config = ConfigDict(extra="allow")


class FunctionDef(_Open):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    parameters: dict[str, Any] | None = None


class ToolDef(_Open):
    type: Literal["function"]
    function: FunctionDef


class FunctionCall(_Open):
    name: str = Field(min_length=1)
    arguments: str = "{}"


class MessageToolCall(_Open):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class ContentPart(_Open):
    type: str
    text: str | None = None


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text: a string, or its text parts joined (images and audio are not for these models)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type in ("text", "input_text"))


class NamedFunction(_Open):
    name: str = Field(min_length=1)


class NamedToolChoice(_Open):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Open):
    include_usage: bool = False


class ChatRequest(_Open):
    model: str = "umi"
    messages: list[Message] = Field(min_length=1)
    tools: list[ToolDef] = Field(default_factory=list)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=1)


class ToolSource(BaseModel):
    """Where a server-side run's tools come from: exactly one of the fields."""

    model_config = ConfigDict(extra="forbid")

    mcp: str | None = Field(default=None, description="An MCP server: a command line (stdio) or an http(s) URL.")
    toolbench_url: str | None = Field(default=None, description="A ToolBench/StableToolBench server URL.")
    replay: str | None = Field(default=None, description="A replay file of recorded responses (server path).")
    tools_file: str | None = Field(default=None, description="Tool documents for toolbench_url or replay.")
    tools: list[dict[str, Any]] | None = Field(default=None, description="Tool documents given inline.")
    demo: Literal["music", "landscape"] | None = None


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    tool_source: ToolSource
    max_steps: int = Field(default=8, ge=1, le=64)
    max_new_tokens: int = Field(default=256, ge=1, le=8192)
