"""`POST /v1/chat/completions`: the OpenAI tools protocol in front of the α-UMi roles.

A caller step answers with `tool_calls` and `finish_reason: "tool_calls"` (the planner's thought as `content`,
which is how it reaches the next request: see `umi.serve.translate`); a conclusion answers with the
summarizer's text and `finish_reason: "stop"`; a give-up answers with text that says so. `usage` adds up every
role's tokens; `usage.roles` and the top-level `umi` object give them per role. `stream: true` sends the same
message as OpenAI's SSE chunks (`tool_calls` deltas keyed by `index`, arguments in fragments), then `[DONE]`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from umi.models.roles import Roles
from umi.serve.chat_step import StepResult, decide
from umi.serve.protocol import ChatRequest, ClientError, NamedToolChoice, error_body
from umi.serve.translate import messages_to_conversation, thought_content, tools_to_specs

#: Pieces a streamed text or argument string is cut into (the protocol only promises fragments concatenate).
_CHUNK_CHARS = 24


class StepFailed(RuntimeError):
    """The roles could not run (an engine failed): the server's fault, answered with a 500 error object."""


def _resolve_choice(req: ChatRequest, names: list[str]) -> tuple[str, str | None]:
    choice = req.tool_choice
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in names:
            raise ClientError(
                "tool_choice.function.name",
                f"tool_choice names {choice.function.name!r}, which is not in `tools` ({', '.join(names) or 'none'})",
            )
        return "named", choice.function.name
    if choice in ("required",) and not names:
        raise ClientError("tool_choice", "tool_choice 'required' needs at least one entry in `tools`")
    return choice or "auto", None


def assistant_message(result: StepResult) -> tuple[dict[str, Any], str]:
    """The OpenAI assistant message and finish reason of a decision."""
    if result.kind == "error":
        raise StepFailed(result.reason)
    if result.kind == "tool_call" and result.call is not None:
        call = {
            "id": "call_" + uuid.uuid4().hex[:24],
            "type": "function",
            "function": {"name": result.call.name, "arguments": json.dumps(result.call.arguments, ensure_ascii=False)},
        }
        return {"role": "assistant", "content": thought_content(result.thought) or None, "tool_calls": [call]}, (
            "tool_calls"
        )
    if result.kind == "answer":
        return {"role": "assistant", "content": result.answer}, "stop"
    if result.kind == "gave_up":
        return {"role": "assistant", "content": f"I gave up on this task: {result.reason or 'no reason given'}"}, "stop"
    return {"role": "assistant", "content": f"No valid tool call could be made: {result.reason}"}, "stop"


def usage(result: StepResult) -> dict[str, Any]:
    p, c = result.prompt_tokens, result.completion_tokens
    roles = {
        r: {"prompt_tokens": int(v.get("prompt_tokens", 0)), "completion_tokens": int(v.get("new_tokens", 0))}
        for r, v in result.costs.items()
    }
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c, "roles": roles}


def _umi_extra(result: StepResult) -> dict[str, Any]:
    return {"step": result.kind, "costs": result.costs, "reason": result.reason}


def _pieces(text: str) -> list[str]:
    return [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]


def stream_chunks(base: dict[str, Any], message: dict[str, Any], finish: str) -> list[dict[str, Any]]:
    """The chunks OpenAI would send for `message` (after the first, role-only chunk)."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    out = []
    if message.get("content"):
        out += [chunk({"content": piece}) for piece in _pieces(message["content"])]
    for index, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        head = {"index": index, "id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}
        out.append(chunk({"tool_calls": [head]}))
        out += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in _pieces(fn["arguments"])
        ]
    out.append(chunk({}, finish))
    return out


def chat_router(
    roles: Roles,
    model_id: str,
    *,
    attempts: int = 3,
    agent_options: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> APIRouter:
    """The chat route; `attempts` bounds the planner steps one request may take to reach a valid call."""
    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(req: ChatRequest) -> JSONResponse | StreamingResponse:
        specs = tools_to_specs(req.tools)
        conv = messages_to_conversation(req.messages)
        choice, named = _resolve_choice(req, [s.name for s in specs])
        max_new = req.max_completion_tokens or req.max_tokens or 256
        base = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "created": int(time.time()), "model": model_id}

        def run() -> StepResult:
            return decide(
                roles,
                specs,
                conv.history,
                tool_choice=choice,
                named=named,
                max_new_tokens=max_new,
                attempts=attempts,
                agent_options=agent_options,
            )

        if not req.stream:
            result = await run_in_threadpool(run)
            message, finish = assistant_message(result)
            body = {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage(result),
                "umi": _umi_extra(result),
            }
            return JSONResponse(body)

        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        chunk_base = {**base, "object": "chat.completion.chunk"}

        async def events() -> AsyncIterator[str]:
            first = {**chunk_base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None, "logprobs": None}]}  # fmt: skip
            yield f"data: {json.dumps(first)}\n\n"
            try:
                result = await run_in_threadpool(run)
                message, finish = assistant_message(result)
            except Exception as exc:  # headers are sent: the error travels as an SSE event, as OpenAI's does
                if log:
                    log(f"chat step failed: {type(exc).__name__}: {exc}")
                yield f"data: {json.dumps(error_body(str(exc), kind='server_error'))}\n\n"
                return
            for c in stream_chunks(chunk_base, message, finish):
                yield f"data: {json.dumps(c, ensure_ascii=False)}\n\n"
            if include_usage:
                yield f"data: {json.dumps({**chunk_base, 'choices': [], 'usage': usage(result)})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return router
