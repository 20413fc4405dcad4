"""Server-side runs: `POST /v1/runs` runs a whole α-UMi episode on the server against a tool source, every step
goes to the run store as it happens, `GET /v1/runs/{id}` returns the run with its steps and
`GET /v1/runs/{id}/events` streams them (SSE: `step` events, then one `end` event with the finished run).

Tool sources: an MCP server (a command line, only when the operator allowed commands, or an http(s) URL), a
ToolBench server URL, a replay file of recorded responses, or one of the demo scenarios. A source that fails to
open ends its run with status `error` and the reason; it never takes the server down.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from umi.agent import MultiLLMAgent, read_trace
from umi.models.roles import Roles
from umi.schema import ToolSpec
from umi.serve.protocol import ClientError, RunRequest, ToolDef, ToolSource
from umi.serve.run_store import RunStore, costs_from_steps
from umi.serve.translate import tools_to_specs
from umi.tools.base import Executor

Opened = tuple[list[ToolSpec], Executor, Callable[[], None], str]


def _kind(src: ToolSource) -> str:
    given = [k for k in ("mcp", "toolbench_url", "replay", "demo") if getattr(src, k)]
    if len(given) != 1:
        raise ClientError(
            "tool_source",
            "give exactly one of mcp, toolbench_url, replay, demo" + (f" (got {', '.join(given)})" if given else ""),
        )
    return given[0]


def check_source(src: ToolSource, *, allow_commands: bool) -> str:
    """The source kind, or `ClientError` for a source this server will not open."""
    kind = _kind(src)
    if kind == "mcp" and not src.mcp.startswith(("http://", "https://")) and not allow_commands:  # type: ignore[union-attr]
        raise ClientError(
            "tool_source.mcp",
            "this server does not start commands from requests; give an MCP server URL, or start the server "
            "with --allow-commands",
        )
    if kind in ("toolbench_url", "replay") and not (src.tools or src.tools_file):
        raise ClientError("tool_source.tools", f"a {kind} source needs tool documents: `tools` or `tools_file`")
    return kind


def _specs(src: ToolSource) -> list[ToolSpec]:
    from umi.tools import load_tools

    if src.tools is not None:
        try:
            return tools_to_specs([ToolDef.model_validate(t) for t in src.tools])
        except ValueError as exc:
            raise ClientError("tool_source.tools", f"tools must be OpenAI function tools ({exc})") from None
    return load_tools(str(src.tools_file))


def open_source(src: ToolSource) -> Opened:
    """(specs, executor, close, label) of a checked source. Runs in the worker: MCP start-up can take seconds."""
    kind = _kind(src)
    if kind == "mcp":
        from umi.tools.mcp import MCPTools

        mcp = MCPTools(str(src.mcp))
        return mcp.specs, mcp, mcp.close, f"mcp: {src.mcp}"
    if kind == "demo":
        from umi.demo import build_scenario

        s = build_scenario(str(src.demo))
        return s.tools, s.executor, lambda: None, f"demo: {src.demo}"
    specs = _specs(src)
    if kind == "toolbench_url":
        from umi.tools import ToolBenchServerExecutor

        return (
            specs,
            ToolBenchServerExecutor(str(src.toolbench_url), specs),
            lambda: None,
            f"toolbench: {src.toolbench_url}",
        )
    from umi.tools import ReplayCache

    return specs, ReplayCache.from_recorded(str(src.replay), specs=specs), lambda: None, f"replay: {src.replay}"


def _source_label(src: ToolSource, kind: str) -> str:
    return f"{kind}: {getattr(src, kind)}"


class RunManager:
    """Runs episodes on a small worker pool; the store is the only place their state lives."""

    def __init__(
        self,
        roles: Roles,
        store: RunStore,
        *,
        allow_commands: bool = False,
        workers: int = 2,
        agent_options: dict[str, Any] | None = None,
    ) -> None:
        self.roles = roles
        self.agent_options = dict(agent_options or {})
        self.store = store
        self.allow_commands = allow_commands
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="umi-run")

    def start(self, req: RunRequest) -> str:
        kind = check_source(req.tool_source, allow_commands=self.allow_commands)
        run_id = self.store.create(req.query, _source_label(req.tool_source, kind))
        self._pool.submit(self._run, run_id, req)
        return run_id

    def _run(self, run_id: str, req: RunRequest) -> None:
        self.store.set_status(run_id, "running")
        try:
            specs, executor, close, _ = open_source(req.tool_source)
        except Exception as exc:
            self.store.set_status(run_id, "error", reason=f"could not open the tool source: {exc}")
            return
        try:
            agent = MultiLLMAgent(
                self.roles,
                specs,
                executor,
                max_steps=req.max_steps,
                max_new_tokens=req.max_new_tokens,
                on_event=lambda record: self.store.add_step(run_id, record),
                **self.agent_options,
            )
            episode = agent.run(req.query)
            self.store.set_status(
                run_id, episode.status, answer=episode.answer, reason=episode.reason, costs=episode.costs
            )
        except Exception as exc:  # a worker must always leave its run in a final state
            self.store.set_status(run_id, "error", reason=f"{type(exc).__name__}: {exc}")
        finally:
            close()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def import_traces(store: RunStore, folder: str | Path) -> int:
    """`umi run --trace FILE` traces in `folder` as runs (`trace-<name>`), once each; returns how many were new."""
    n = 0
    for path in sorted(Path(folder).glob("*.jsonl")):
        run_id = "trace-" + re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)
        if store.exists(run_id):
            continue
        records = read_trace(path)
        summary = next((r for r in reversed(records) if r.role == "summarizer"), None)
        gave_up = any(r.role == "planner" and r.parsed.get("route") == "give up" for r in records[-3:])
        failed = any(r.role == "agent" for r in records)
        status = "answered" if summary else "gave_up" if gave_up else "error" if failed else "ended"
        store.create(f"trace file {path.name}", f"trace: {path}", run_id=run_id, status="running")
        for record in records:
            store.add_step(run_id, record)
        steps = store.steps(run_id)
        answer = summary.parsed.get("answer") if summary else None
        store.set_status(run_id, status, answer=answer, costs=costs_from_steps(steps))
        n += 1
    return n


def runs_router(manager: RunManager) -> APIRouter:
    router = APIRouter()
    store = manager.store

    @router.post("/v1/runs")
    def create_run(req: RunRequest) -> dict[str, Any]:
        run_id = manager.start(req)
        run = store.get(run_id, with_steps=False)
        assert run is not None
        return run

    @router.get("/v1/runs")
    def list_runs(limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
        return {"object": "list", "data": store.list(limit)}

    def _get(run_id: str) -> dict[str, Any]:
        run = store.get(run_id)
        if run is None:
            raise ClientError("run_id", f"no run {run_id!r}", status=404, code="run_not_found")
        return run

    @router.get("/v1/runs/{run_id}")
    def get_run(run_id: str) -> dict[str, Any]:
        return _get(run_id)

    @router.get("/v1/runs/{run_id}/events")
    async def run_events(run_id: str, request: Request) -> EventSourceResponse:
        await run_in_threadpool(_get, run_id)
        last = request.headers.get("last-event-id", "")
        after = int(last) if last.isdigit() else -1

        async def events() -> AsyncIterator[dict[str, str]]:
            nonlocal after
            while True:
                # Status first, then steps: a run seen finished has all its steps in the store already.
                run = await run_in_threadpool(store.get, run_id, with_steps=False)
                for step in await run_in_threadpool(store.steps, run_id, after):
                    after = step["seq"]
                    yield {"event": "step", "id": str(after), "data": json.dumps(step, ensure_ascii=False)}
                if run is None or run["done"]:
                    yield {"event": "end", "data": json.dumps(run, ensure_ascii=False)}
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.2)

        return EventSourceResponse(events(), ping=10)

    return router
