"""MCP tools: the tools of a Model Context Protocol server (a stdio command, or a streamable-HTTP URL) as umi
`ToolSpec`s, and an `Executor` that calls them.

```python
with MCPTools.connect("python my_server.py") as mcp:      # or "http://127.0.0.1:8000/mcp"
    agent = MultiLLMAgent(roles, mcp.specs, mcp)
    agent.run("…")
```

The `mcp` SDK is asynchronous; umi's agent loop is not. One background thread owns an event loop and the one
open client session (so a stdio server is started once per episode, not once per call), and `execute` hands it
calls. Everything the server or the transport does wrong comes back as an `Observation.error`: a result with
`is_error`, an unknown tool, a crashed child process, a timeout. Nothing raises into the agent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any

from umi.schema import ToolSpec
from umi.tools.base import Observation, ToolCall
from umi.tools.specs import from_openai_function

#: Environment variables never handed to a tool server child process.
_PRIVATE_ENV = ("UMI_API_KEY",)


class MCPError(RuntimeError):
    """The MCP server could not be started or listed (the message names the source and the cause)."""


def server_parameters(source: str) -> Any:
    """`"COMMAND ARGS"` → stdio parameters; an `http(s)://` URL is returned as is (streamable HTTP).

    The child gets this process's environment (minus umi's own API key), so a server found on PATH or needing
    PYTHONPATH starts the way it does in the operator's shell."""
    from mcp import StdioServerParameters

    source = source.strip()
    if source.startswith(("http://", "https://")):
        return source
    try:
        argv = shlex.split(source)
    except ValueError as exc:
        raise MCPError(f"MCP command {source!r} does not parse as a shell command line ({exc})") from None
    if not argv:
        raise MCPError("empty MCP command; give a command line such as 'python server.py' or an http(s) URL")
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    return StdioServerParameters(command=argv[0], args=argv[1:], env=env)


def spec_from_mcp_tool(tool: Any) -> ToolSpec:
    """An MCP `Tool` (name, description, JSON-schema `input_schema`) as a ToolSpec."""
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    spec = from_openai_function({"name": tool.name, "description": tool.description or "", "parameters": schema})
    spec.meta["mcp"] = True
    return spec


def result_observation(result: Any, seconds: float) -> Observation:
    """A `CallToolResult` as an observation: text blocks joined (structured content when there is no text);
    `is_error` results become the observation's error."""
    texts = [str(getattr(block, "text", "")) for block in result.content or [] if getattr(block, "type", "") == "text"]
    text = "\n".join(t for t in texts if t)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    if result.is_error:
        return Observation(error=text or "the tool reported an error without a message", seconds=seconds)
    return Observation(response=text, seconds=seconds)


class MCPTools:
    """One open session with an MCP server: `specs` (its tools) and `execute(call)`. Use as a context manager,
    or call `close()`; the stdio child stops with the session."""

    def __init__(self, source: str, *, timeout: float = 60.0, connect_timeout: float = 60.0) -> None:
        self.source = source
        self.timeout = timeout
        self.specs: list[ToolSpec] = []
        self._params = server_parameters(source)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="umi-mcp", daemon=True)
        self._thread.start()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], Future[Any]] | None] | None = None
        self._ready: Future[list[Any]] = Future()
        self._owner = asyncio.run_coroutine_threadsafe(self._own_session(), self._loop)
        try:
            tools = self._ready.result(timeout=connect_timeout)
        except Exception as exc:
            self.close()
            raise MCPError(f"MCP server {source!r}: {_describe(exc)}") from None
        self.specs = [spec_from_mcp_tool(t) for t in tools]
        self.names = {s.name for s in self.specs}

    @classmethod
    def connect(cls, source: str, **kwargs: Any) -> MCPTools:
        return cls(source, **kwargs)

    async def _own_session(self) -> None:
        """Open the client, list every tool (following cursors), then serve calls until told to stop. One task
        owns the session, so the SDK's task-bound scopes are entered and left in the same task."""
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        self._queue = asyncio.Queue()
        # The SDK's default errlog is whatever `sys.stderr` was when it was imported (under a test runner or a
        # captured CLI: a stream without a file descriptor, which the child process cannot inherit).
        server: Any = (
            stdio_client(self._params, errlog=_errlog())
            if isinstance(self._params, StdioServerParameters)
            else self._params
        )
        try:
            async with Client(server, read_timeout_seconds=self.timeout) as client:
                tools: list[Any] = []
                cursor: str | None = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                self._ready.set_result(tools)
                while (item := await self._queue.get()) is not None:
                    name, arguments, done = item
                    try:
                        done.set_result(await client.call_tool(name, arguments))
                    except Exception as exc:  # transport failures become the call's observation
                        done.set_exception(exc)
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            if not isinstance(exc, Exception):
                raise

    def execute(self, call: ToolCall) -> Observation:
        """Run one call on the server. Unknown names are refused here (exact names only, as every executor)."""
        if call.name not in self.names:
            return Observation(error=f"No such function name: {call.name}. Available: " + ", ".join(sorted(self.names)))
        if self._owner.done() or self._queue is None:
            return Observation(error=f"MCP server {self.source!r} is not connected any more")
        start = time.perf_counter()
        done: Future[Any] = Future()
        self._submit(self._queue.put((call.name, dict(call.arguments), done)))
        try:
            result = done.result(timeout=self.timeout + 5)
        except Exception as exc:
            return Observation(error=f"{call.name} failed: {_describe(exc)}", seconds=time.perf_counter() - start)
        return result_observation(result, time.perf_counter() - start)

    def _submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._queue is not None and not self._owner.done():
            self._submit(self._queue.put(None))
            try:
                self._owner.result(timeout=10)
            except Exception:  # a server that died on its own has nothing left to close
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> MCPTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping the task groups the SDK raises through."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _errlog() -> Any:
    """Where an MCP stdio child's stderr goes: ours if it is a real file, else the process's original stderr."""
    try:
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__
