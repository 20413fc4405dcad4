"""OpenAI chat messages ↔ the α-UMi history, through `umi.format` only.

The server keeps no conversation state, so every request carries the whole history in OpenAI's shape and this
module rebuilds the α-UMi turns from it:

- `user` → `user`;
- `assistant` with `tool_calls` (its content is the planner's thought) → per call: `assistant` (the thought with
  the caller marker), `caller` (`Action` / `Action Input`), `observation` (the call's `tool` message);
- `assistant` without calls (an earlier answer) → `assistant` (conclusion marker), `conclusion` (the answer);
- `tool` → the observation of the call its `tool_call_id` names;
- `system` / `developer` → nothing: the α-UMi templates own the instructions the roles were trained on.

The planner's thought travels in the assistant message's `content`, so any server process can continue any
conversation. Every text is made by `umi.format` (`planner_text`, `caller_text`, `render_observation`,
`strip_marker`); nothing here writes a byte of the wire format itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from umi.format import caller_text, planner_text, render_observation, strip_marker
from umi.schema import ToolSpec, Turn
from umi.serve.protocol import ClientError, Message, ToolDef
from umi.tools import from_openai_function

_SCHEMA_KEYWORDS_OBJECT = ("properties", "required")


def _turn(role: str, value: str) -> Turn:
    return Turn.model_validate({"from": role, "value": value})


def tools_to_specs(tools: Sequence[ToolDef]) -> list[ToolSpec]:
    """OpenAI function tools → ToolSpecs (through `umi.tools`), refusing schemas a caller could not fill."""
    specs: list[ToolSpec] = []
    seen: dict[str, int] = {}
    for i, tool in enumerate(tools):
        fn = tool.function
        where = f"tools[{i}].function"
        if fn.name in seen:
            raise ClientError(
                f"{where}.name", f"tool name {fn.name!r} is also tools[{seen[fn.name]}]; names must differ"
            )
        seen[fn.name] = i
        schema = fn.parameters
        if schema is not None:
            kind = schema.get("type", "object")
            if kind != "object":
                raise ClientError(
                    f"{where}.parameters",
                    f"the parameters of {fn.name!r} must be a JSON schema of type 'object' (got type {kind!r})",
                )
            props = schema.get("properties", {})
            if not isinstance(props, dict) or not all(isinstance(v, dict) for v in props.values()):
                raise ClientError(f"{where}.parameters.properties", "must map each parameter name to a JSON schema")
            required = schema.get("required", [])
            if not isinstance(required, list) or any(not isinstance(r, str) or r not in props for r in required):
                raise ClientError(f"{where}.parameters.required", "must list parameter names defined in `properties`")
        specs.append(from_openai_function({"name": fn.name, "description": fn.description, "parameters": schema}))
    return specs


@dataclass
class Conversation:
    """The α-UMi history rebuilt from the messages, and the task (the last user message)."""

    history: list[Turn]
    query: str


@dataclass
class _OpenCalls:
    index: int
    thought: str
    calls: list[tuple[str, str, str]]  # (id, name, arguments text)
    answers: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        return [cid for cid, _, _ in self.calls if cid not in self.answers]


def _arguments_text(text: str, where: str) -> str:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ClientError(where, f"arguments are not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise ClientError(where, "arguments must be a JSON object")
    return json.dumps(value, ensure_ascii=False)


def _flush(open_calls: _OpenCalls, conv: Conversation) -> None:
    """One α-UMi step per call: the thought (first call only), the call, its observation."""
    for j, (cid, name, args) in enumerate(open_calls.calls):
        thought = strip_marker(open_calls.thought) if j == 0 else ""
        conv.history.append(_turn("assistant", planner_text(thought or None, "caller")))
        conv.history.append(_turn("caller", caller_text(name, args)))
        text = open_calls.answers[cid]
        conv.history.append(_turn("observation", render_observation(text, "" if text else "the tool returned nothing")))


def messages_to_conversation(messages: Sequence[Message]) -> Conversation:
    """Rebuild the history, or raise `ClientError` naming the message that cannot be where it is."""
    conv = Conversation(history=[], query="")
    open_calls: _OpenCalls | None = None
    last = ""
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if m.role in ("system", "developer"):
            continue
        if m.role != "tool" and open_calls is not None:
            missing = ", ".join(open_calls.missing())
            raise ClientError(
                f"{where}.role",
                f"messages[{open_calls.index}] made tool call(s) {missing} that have no tool message; send one "
                f"'tool' message per call (with its tool_call_id) before this {m.role} message",
            )
        if m.role != "user" and not conv.query:
            raise ClientError(f"{where}.role", f"a {m.role} message before any user message; start with the task")
        if m.role == "user":
            text = m.text()
            if not text.strip():
                raise ClientError(f"{where}.content", "a user message needs text")
            conv.history.append(_turn("user", text))
            conv.query = text
        elif m.role == "assistant" and m.tool_calls:
            calls = []
            ids: set[str] = set()
            for j, tc in enumerate(m.tool_calls):
                if tc.id in ids:
                    raise ClientError(f"{where}.tool_calls[{j}].id", f"tool call id {tc.id!r} is used twice")
                ids.add(tc.id)
                args = _arguments_text(tc.function.arguments, f"{where}.tool_calls[{j}].function.arguments")
                calls.append((tc.id, tc.function.name, args))
            open_calls = _OpenCalls(i, m.text(), calls)
        elif m.role == "assistant":
            conv.history.append(_turn("assistant", planner_text(None, "conclusion")))
            conv.history.append(_turn("conclusion", m.text()))
        else:  # tool
            if open_calls is None:
                raise ClientError(
                    f"{where}.role", "a tool message must follow the assistant message whose call it answers"
                )
            if not m.tool_call_id:
                raise ClientError(
                    f"{where}.tool_call_id", "a tool message needs the tool_call_id of the call it answers"
                )
            known = [cid for cid, _, _ in open_calls.calls]
            if m.tool_call_id not in known:
                raise ClientError(
                    f"{where}.tool_call_id",
                    f"{m.tool_call_id!r} matches no tool call of messages[{open_calls.index}] "
                    f"(its calls: {', '.join(known)})",
                )
            if m.tool_call_id in open_calls.answers:
                raise ClientError(f"{where}.tool_call_id", f"call {m.tool_call_id!r} was already answered")
            open_calls.answers[m.tool_call_id] = m.text()
            if not open_calls.missing():
                _flush(open_calls, conv)
                open_calls = None
        last = m.role
    if open_calls is not None:
        raise ClientError(
            "messages",
            f"messages[{open_calls.index}] made tool call(s) {', '.join(open_calls.missing())} that have no tool "
            "message; run them and send their results as 'tool' messages",
        )
    if not conv.query:
        raise ClientError("messages", "no user message: send the task as a message with role 'user'")
    if last == "assistant":
        raise ClientError(
            f"messages[{len(messages) - 1}].role",
            "the conversation ends with an assistant message; add the next user message",
        )
    return conv


def thought_content(thought: str) -> str:
    """The planner's thought as the assistant message's content: without its routing marker."""
    return strip_marker(thought)
