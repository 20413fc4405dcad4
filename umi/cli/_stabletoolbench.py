"""`umi eval live --suite stabletoolbench`: StableToolBench's solvable queries behind the live command."""

from __future__ import annotations

from pathlib import Path

from umi.cli._common import console, fail, print_json_last, task_bar


def run_stabletoolbench_cli(
    make: object,
    bound: object,
    out: Path,
    group: str,
    server_url: str,
    queries_dir: Path | None,
    judge: str | None,
    rounds: int,
    limit: int | None,
    workers: int,
    as_json: bool,
    *,
    system: str,
) -> None:
    """StableToolBench solvable queries through a running `umi serve tools`, SoPR from the judge model."""
    from umi.evaluate.live.report import LiveRow, write_live_report
    from umi.evaluate.live.toolbench import LABEL, load_queries, role_judge, run_toolbench
    from umi.models.base import EngineError
    from umi.models.roles import Roles, load_roles
    from umi.paths import shared_data

    folder = queries_dir or shared_data() / "stabletoolbench" / "solvable_queries" / "test_instruction"
    try:
        queries = load_queries(folder, group)
        judge_roles = load_roles(judge) if judge else bound
    except (EngineError, ValueError, OSError) as exc:
        fail(str(exc))
    assert isinstance(judge_roles, Roles)
    queries = queries[:limit] if limit else queries
    with task_bar(group) as bar:
        task = bar.add_task("queries", total=len(queries))
        summary = run_toolbench(
            make,  # type: ignore[arg-type]
            role_judge(judge_roles),
            queries,
            server_url,
            out,
            rounds=rounds,
            workers=workers,
            on_progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(f"{group} ({LABEL}): SoPR {summary['sopr']:.1f} ± {summary['std']:.1f} over {summary['queries']}")
    note = f"{LABEL}; judge {judge or 'the agent roles'}, {rounds} rounds, ±{summary['std']:.1f}"
    row = LiveRow(system, f"StableToolBench {group}", "SoPR", summary["sopr"], summary["queries"], note)
    md, png = write_live_report([row], out / "report", title=f"StableToolBench {group} ({LABEL})")
    console.print(f"report: {md} and {png}")
    if as_json:
        print_json_last(summary)
