"""`umi run` (one query against tools) and `umi demo` (the announcement's two scenarios, offline)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from umi.cli._common import console, cost_table, fail, print_json_last, shortlist_option

ROLE_STYLE = {"planner": "cyan", "caller": "magenta", "summarizer": "green", "backbone": "cyan", "tool": "yellow"}


def _show(record) -> None:  # type: ignore[no-untyped-def]
    """Print one trace record as it happens."""
    style = ROLE_STYLE.get(record.role, "white")
    if record.role == "tool":
        call = record.tool_call or {}
        body = f"{call.get('name')}({call.get('arguments')})\n→ {(record.observation or '')[:400]}"
    else:
        body = record.output.strip()[:800] or "(empty output)"
    title = f"step {record.step + 1} · {record.role}" + (f" · [red]{record.error}[/]" if record.error else "")
    left_out = (record.parsed or {}).get("left_out")
    if left_out:  # the agent's loop steering (`AgentBase.choices`): say why the call is not the thought's API
        title += f" · [yellow]looped, left out of the grammar: {', '.join(left_out)}[/]"
    console.print(Panel(body, title=title, title_align="left", border_style=style, highlight=False))


def _cost_table(episode) -> Table:  # type: ignore[no-untyped-def]
    title = f"status: {episode.status} · steps: {episode.steps} · tool calls: {len(episode.calls)}"
    if episode.concluded_at_budget:
        title += " · concluded on the step budget's last step"
    return cost_table(episode.costs, title)


def _load_roles(roles: str | None):  # type: ignore[no-untyped-def]
    from umi.models.base import EngineError
    from umi.models.roles import default_roles, load_roles

    try:
        return load_roles(roles) if roles else default_roles()
    except EngineError as exc:
        fail(str(exc))


def _agent(roles, tools, executor, *, single: bool, dfsdt: bool, **kwargs):  # type: ignore[no-untyped-def]
    from umi.agent import DFSDT, MultiLLMAgent, SingleLLMAgent

    agent = (SingleLLMAgent if single else MultiLLMAgent)(roles, tools, executor, on_event=_show, **kwargs)
    return DFSDT(agent) if dfsdt else agent


def _run_one(
    query, specs, executor, roles, single, dfsdt, max_steps, max_new_tokens, trace, as_json, constrain, shortlist=None
) -> None:  # type: ignore[no-untyped-def]
    """One query on the agent, shown live, then the answer and the cost table."""
    bound = _load_roles(roles)
    if shortlist is not None:
        bound.set_shortlist(shortlist)
    agent = _agent(
        bound,
        specs,
        executor,
        single=single,
        dfsdt=dfsdt,
        max_steps=max_steps,
        max_new_tokens=max_new_tokens,
        trace_path=trace,
        constrain=constrain,
    )
    episode = agent.run(query)
    console.print(Panel(episode.answer or episode.reason or "(no answer)", title="answer", border_style="bold green"))
    console.print(_cost_table(episode))
    if as_json:
        print_json_last(episode.summary())


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        query: str = typer.Argument(..., help="The task, in plain words."),
        tools: Path | None = typer.Option(
            None, "--tools", help="Tools: ToolSpec list, api_list, OpenAI functions or OpenAPI."
        ),
        mcp: str | None = typer.Option(
            None, "--mcp", help='An MCP server for tools and calls: "COMMAND ARGS" (stdio) or an http(s) URL.'
        ),
        replay: Path | None = typer.Option(None, "--replay", help="Recorded responses ({cache: {api: {args: text}}})."),
        toolbench_url: str | None = typer.Option(None, "--toolbench-url", help="A ToolBench/StableToolBench server."),
        roles: str | None = typer.Option(None, "--roles", help="Role config (TOML), run manifest, or packaged name."),
        single: bool = typer.Option(False, "--single", help="Single-LLM baseline (backbone role)."),
        dfsdt: bool = typer.Option(False, "--dfsdt", help="Depth-first search with diversity around the agent."),
        max_steps: int = typer.Option(8, "--max-steps"),
        max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
        trace: Path | None = typer.Option(None, "--trace", help="Write every step as JSONL here."),
        as_json: bool = typer.Option(False, "--json"),
        constrain: bool = typer.Option(
            True, "--constrain/--no-constrain", help="Role grammars (umi.format.grammar) on every model call."
        ),
        shortlist: int | None = shortlist_option(),
    ) -> None:
        """Run the agent on one query, showing each role's output live, then the answer and the cost table."""
        from umi.tools.base import Executor

        settings = (roles, single, dfsdt, max_steps, max_new_tokens, trace, as_json, constrain, shortlist)

        if mcp:
            from umi.tools.mcp import MCPError, MCPTools

            if tools or replay or toolbench_url:
                fail("--mcp brings its own tools and calls; drop --tools, --replay and --toolbench-url")
            try:
                session = MCPTools(mcp)
            except MCPError as exc:
                fail(str(exc))
            with session:
                _run_one(query, session.specs, session, *settings)
            return
        if tools is None:
            fail('give --tools FILE (with --replay or --toolbench-url), or --mcp "COMMAND ARGS"')
        from umi.tools import ReplayCache, ToolBenchServerExecutor, load_tools

        try:
            specs = load_tools(tools)
        except (OSError, ValueError) as exc:
            fail(f"{tools}: {exc}")
        executor: Executor
        if toolbench_url:
            executor = ToolBenchServerExecutor(toolbench_url, specs)
        elif replay:
            executor = ReplayCache.from_recorded(replay, specs=specs)
        else:
            fail("give --replay FILE (recorded responses) or --toolbench-url URL so tool calls have somewhere to go")
        _run_one(query, specs, executor, *settings)

    @app.command()
    def demo(
        scenario: str = typer.Option("all", "--scenario", help="music, landscape or all."),
        scripted: bool = typer.Option(
            False, "--scripted", help="Play a hand-written script (not model output) that shows the control flow."
        ),
        roles: str | None = typer.Option(
            None, "--roles", help="Role config; default: the embedded model with the shipped GLPFT roles."
        ),
        max_steps: int = typer.Option(4, "--max-steps"),
        max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
        trace_dir: Path | None = typer.Option(None, "--trace-dir"),
        constrain: bool = typer.Option(
            True, "--constrain/--no-constrain", help="Role grammars (umi.format.grammar) on every model call."
        ),
        shortlist: int | None = shortlist_option(),
    ) -> None:
        """The α-UMi announcement's two scenarios, offline: music discovery, and a broken video API."""
        from umi.demo import SCENARIOS, build_scenario, scripted_roles
        from umi.models.roles import trained_roles_dir

        names = list(SCENARIOS) if scenario == "all" else [scenario]
        shared_roles = None if scripted else _load_roles(roles)
        if shared_roles is not None and shortlist is not None:
            shared_roles.set_shortlist(shortlist)
        if not scripted:
            src = getattr(shared_roles, "source", "") or "embedded"
            trained = src == str(trained_roles_dir())
            why = (
                "GLPFT roles trained on this CPU (LoRA, 135M base; planner and caller two epochs): the grammars "
                "make every call valid; the roles pick a fitting API but copy its documented argument types and "
                "repeat the call"
                if trained
                else "a 135M model zero-shot: the grammars make every call valid, not well chosen"
            )
            if not constrain:
                why += "; unconstrained, they rarely follow the tool format"
            console.print(
                f"[bold]roles:[/] {src}  ({why}; `umi demo --scripted` plays a hand-written script, not model output)"
            )
            console.print(
                "[bold]constraint:[/] "
                + (
                    "llguidance role grammars (planner route marker; caller restricted to exact API names, arguments)"
                    if constrain
                    else "none (--no-constrain)"
                )
            )
            k = shared_roles.caller.shortlist if shared_roles and shared_roles.caller else 0
            if constrain and k:
                console.print(
                    f"[bold]tool shortlist:[/] the caller may call the {k} tool(s) most relevant to the "
                    "query not called yet (--shortlist 0: every tool)"
                )
        for name in names:
            try:
                s = build_scenario(name)
            except (OSError, ValueError) as exc:
                fail(str(exc))
            label = " [SCRIPTED: hand-written outputs, not a model]" if scripted else ""
            console.rule(f"[bold]{name}{label}")
            console.print(Panel(s.query, title="user", border_style="blue"))
            if s.broken:
                console.print(f"[yellow]broken on purpose:[/] {', '.join(s.broken)}")
            agent = _agent(
                scripted_roles(name) if scripted else shared_roles,
                s.tools,
                s.executor,
                single=False,
                dfsdt=False,
                max_steps=6 if scripted else max_steps,
                max_new_tokens=max_new_tokens,
                trace_path=(trace_dir / f"{name}.jsonl") if trace_dir else None,
                constrain=constrain and not scripted,  # a hand-written script is text, not a model to constrain
            )
            episode = agent.run(s.query)
            console.print(
                Panel(episode.answer or episode.reason or "(no answer)", title="answer", border_style="bold green")
            )
            console.print(_cost_table(episode))
