"""`umi eval live --suite toolalpaca-simulated|toolalpaca-real`: the ToolAlpaca suites behind the live command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umi.cli._common import console, err_console, fail, print_json_last, task_bar


def run_toolalpaca_cli(
    suite: str,
    bound: Any,
    roles_name: str | None,
    out: Path,
    *,
    single: bool,
    dfsdt: bool,
    max_steps: int,
    max_new_tokens: int,
    limit: int | None,
    sample: int | None,
    seed: int,
    workers: int,
    judge: str | None,
    simulator: str | None,
    data_dir: Path | None,
    as_json: bool,
    constrain: bool = True,
) -> None:
    """Load the set, seed the replay cache (simulated), run every selected instruction, score, write the report."""
    from umi.data import DataError
    from umi.evaluate.live.bfcl import agent_factory
    from umi.evaluate.live.report import write_live_report
    from umi.evaluate.live.toolalpaca import (
        LABEL,
        default_judged_files,
        load_suite,
        published_reference,
        recorded_returns,
        report_rows,
        run_suite,
        select,
        toolalpaca_roles,
    )
    from umi.evaluate.live.toolbench import role_judge
    from umi.models.base import EngineError
    from umi.models.roles import load_roles
    from umi.paths import shared_data

    root = data_dir or shared_data() / "toolalpaca"
    try:
        tools = load_suite(root, suite)
        judge_roles = load_roles(judge) if judge else bound
        sim_roles = load_roles(simulator) if simulator else bound
    except (DataError, EngineError, ValueError, OSError) as exc:
        fail(str(exc))
    tasks = select([t for tool in tools for t in tool.tasks], limit=limit, sample=sample, seed=seed)
    recorded: dict[str, Any] = {}
    model_sim = None
    if suite == "toolalpaca-simulated":
        try:
            recorded, counts = recorded_returns(tools, default_judged_files(root))
        except DataError as exc:
            fail(str(exc))
        console.print(
            f"replay cache: {counts['recovered']} (function, arguments) → response recovered from "
            f"{counts['recorded']} recorded calls of ToolAlpaca-7B/13B "
            f"({counts['unparsable_arguments']} unparsable arguments, {counts['unknown_function']} unknown functions, "
            f"{counts['duplicate_same'] + counts['duplicate_conflicting']} repeats); misses go to the simulator"
        )
        from umi.serve.tool_server import role_simulator

        model_sim = role_simulator(sim_roles, constrain=constrain)
    make = agent_factory(
        toolalpaca_roles(bound),
        single=single,
        dfsdt=dfsdt,
        max_steps=max_steps,
        max_new_tokens=max_new_tokens,
        constrain=constrain,
    )
    with task_bar(suite) as bar:
        progress = bar.add_task("tasks", total=len(tasks))
        summary = run_suite(
            suite,
            tools,
            tasks,
            make,
            role_judge(judge_roles, max_new_tokens=8),
            out,
            recorded=recorded,
            simulator=model_sim,
            workers=workers,
            on_progress=lambda done, total: bar.update(progress, completed=done),
            note=lambda line: err_console.print(line, highlight=False, soft_wrap=True),
        )
    label = LABEL if suite == "toolalpaca-simulated" else "real APIs"
    if summary["run"]:
        console.print(
            f"{suite} ({label}): process {summary['process']:.1f}%, response {summary['response']:.1f}%, overall "
            f"{summary['overall']:.1f}% over {summary['run']} run tasks ({summary['not_run']} not run)"
        )
    else:
        console.print(f"{suite}: no task ran ({summary['not_run']} not run); nothing is scored")
    system = ("single-LLM" if single else "α-UMi multi-LLM") + (" + DFSDT" if dfsdt else "")
    system += f" ({roles_name or 'embedded default'})"
    chosen = f"sample {sample}, seed {seed}" if sample else (f"first {limit}" if limit else "all")
    note = f"{label}; {chosen}; process by rule; response judge {judge or roles_name or 'embedded default'}"
    md, png = write_live_report(
        report_rows(summary, system, note), out / "report", title=f"ToolAlpaca {suite}", reference=published_reference()
    )
    console.print(f"report: {md} and {png}")
    if as_json:
        print_json_last(summary)
