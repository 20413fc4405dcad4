"""`umi eval …`: static predictions, paper-exact scoring, baselines, reports (and `live` when installed)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from umi.cli._common import console, cost_table, fail, print_json_last, shortlist_option, task_bar

eval_app = typer.Typer(no_args_is_help=True)


def _score_table(title: str, result: dict[str, object]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in result.items():
        table.add_row(k, str(v))
    return table


@eval_app.command()
def static(
    data: Path = typer.Option(..., "--data", help="Test trajectories (stage-2 layout)."),
    out: Path = typer.Option(..., "--out", help="Run folder: predictions.jsonl and run.json."),
    roles: str | None = typer.Option(None, "--roles", help="Role config, run manifest or packaged name."),
    single: bool = typer.Option(False, "--single", help="Evaluate the backbone role as a single LLM."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N steps in file order."),
    steps: Path | None = typer.Option(
        None, "--steps", help="Only these steps: a JSON list of [traj, step] (see `umi eval subset`)."
    ),
    batch_size: int = typer.Option(8, "--batch-size"),
    lanes: int = typer.Option(
        1,
        "--lanes",
        min=1,
        help="Default roles (no --roles): llama.cpp slots per role, so this many trajectories decode side by side "
        "as one batch (default 1: one trajectory at a time, which was faster on a 2-core CPU; "
        "benchmarks/results/static_eval_reference.md). A --roles configuration sets n_parallel in its engine table.",
    ),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens"),
    constrain: bool = typer.Option(
        True, "--constrain/--no-constrain", help="Role grammars (umi.format.grammar) on every model call."
    ),
    gold_thought: bool = typer.Option(
        False,
        "--gold-thought",
        help="Diagnostic: skip the planner; the caller and summarizer get the gold planner turn (Plan ACC is 100).",
    ),
    shortlist: int | None = shortlist_option(),
    follow_thought: bool = typer.Option(
        False,
        "--follow-thought",
        help="The caller's grammar may call only the APIs the planner's thought names (every API when it names "
        "none; umi.format.relevance.thought_tools). Default: the role configuration's.",
    ),
    planner_from: Path | None = typer.Option(
        None,
        "--planner-from",
        help="Skip the planner: hand the caller and summarizer the planner turns of an earlier run folder (the same "
        "planner, greedy), to measure a caller or summarizer change without paying the planner again.",
    ),
) -> None:
    """Teacher-forced predictions for every planner step (resumes where a previous run stopped)."""
    from umi.data import DataError
    from umi.evaluate.static import run_static
    from umi.evaluate.steps import read_step_keys
    from umi.models.base import EngineError
    from umi.models.roles import default_roles, load_roles

    if limit is not None and steps is not None:
        fail("give --limit or --steps, not both")
    if steps is not None and not steps.exists():
        fail(f"subset file {steps} not found; write one with `umi eval subset`")
    try:
        keys = read_step_keys(steps) if steps is not None else None
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        fail(f"{steps}: not a subset file (a JSON list of [traj, step] pairs): {exc}")
    try:
        bound = load_roles(roles) if roles else default_roles(lanes=min(lanes, batch_size))
        if shortlist is not None:
            bound.set_shortlist(shortlist)
        if follow_thought and bound.caller is not None:
            bound.caller.follow_thought = True
        with task_bar("static eval", rate=True) as bar:
            task = bar.add_task("steps", total=None, rate="")
            import time

            start = time.perf_counter()
            first: list[int] = []

            def progress(done: int, total: int) -> None:
                if not first:
                    first.append(done)
                rate = (done - first[0]) / max(1e-9, time.perf_counter() - start)
                bar.update(task, completed=done, total=total, rate=f"{rate:.2f} steps/s")

            run = run_static(
                data,
                bound,
                out,
                single=single,
                limit=limit,
                keys=keys,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                on_progress=progress,
                roles_source=roles or "embedded",
                constrain=constrain,
                gold_thought=gold_thought,
                planner_from=planner_from,
            )
    except (DataError, EngineError, ValueError) as exc:
        fail(str(exc))
    console.print(f"{run.total} steps ({run.skipped} already done) → {run.predictions}")
    if run.costs:
        console.print(cost_table(run.costs, "costs per role (all runs into this folder; costs.json)"))


@eval_app.command()
def score(
    predictions: Path = typer.Argument(..., help="predictions.jsonl, or the run folder that holds it"),
    data: Path = typer.Option(..., "--data", help="The test trajectories the predictions are for."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on the last line of stdout."),
    clean: bool = typer.Option(
        False, "--clean", help='Also report type-lenient args ("5" == 5) and case-insensitive ROUGE, beside.'
    ),
) -> None:
    """The five metrics ×100, exactly as the reference computed them."""
    from umi.data import DataError, load_trajectories
    from umi.evaluate.metrics import read_predictions
    from umi.evaluate.metrics import score as score_rows

    if predictions.is_dir():
        predictions = predictions / "predictions.jsonl"
    if not predictions.exists():
        fail(f"{predictions} not found; run `umi eval static` (or `umi eval baseline`) first")
    try:
        trajectories = load_trajectories(data).items
        rows = read_predictions(str(predictions))
        bad = [r for r in rows if r.traj >= len(trajectories)]
        if bad:
            fail(f"{predictions}: traj index {bad[0].traj} is beyond {data} ({len(trajectories)} trajectories)")
        result = score_rows(rows, trajectories)
        console.print(_score_table("paper-exact", result))
        if clean:
            cleaned = score_rows(rows, trajectories, clean=True)
            console.print(_score_table("clean (type-lenient args, case-insensitive ROUGE)", cleaned))
            result = {**result, "clean": cleaned}
    except DataError as exc:
        fail(str(exc))
    if as_json:
        print_json_last(result)


@eval_app.command()
def subset(
    data: Path = typer.Option(..., "--data", help="The test trajectories."),
    n: int = typer.Option(60, "--n", help="How many steps."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="JSON file to write (give it to `umi eval static --steps`)."),
) -> None:
    """A fixed random subset of steps (seeded, in file order), so small runs are comparable and documented."""
    from umi.data import DataError, iter_steps, load_trajectories
    from umi.evaluate.steps import sample_step_keys

    try:
        keys = sample_step_keys(iter_steps(load_trajectories(data).items), n, seed)
    except DataError as exc:
        fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"data": str(data), "n": n, "seed": seed, "steps": [list(k) for k in keys]}) + "\n")
    console.print(f"{len(keys)} steps (seed {seed}) → {out}")


@eval_app.command()
def baseline(
    kind: str = typer.Option(..., "--kind", help="gold, first-tool, first-uncalled or lexical"),
    data: Path = typer.Option(..., "--data"),
    out: Path = typer.Option(..., "--out"),
    limit: int | None = typer.Option(None, "--limit"),
) -> None:
    """Reference predictions, no model: gold, the first tool with {}, or the best BM25 match to the query with {}."""
    from umi.evaluate.baselines import write_baseline

    try:
        path = write_baseline(kind, data, out, limit=limit)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"wrote {path}")


@eval_app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders (each with predictions.jsonl and run.json)."),
    out: Path = typer.Option(..., "--out"),
    name: list[str] = typer.Option([], "--name", help="Display names, in the order of the runs."),
    title: str = typer.Option("Static evaluation", "--title"),
) -> None:
    """A Markdown table and a bar chart of several runs beside the paper's published rows."""
    from umi.data import DataError, load_trajectories
    from umi.evaluate.metrics import read_predictions
    from umi.evaluate.metrics import score as score_rows
    from umi.evaluate.report import write_report

    if len(name) > len(runs):
        fail(f"{len(name)} --name values for {len(runs)} run folder(s)")
    results = {}
    for i, run in enumerate(runs):
        meta_path, pred_path = run / "run.json", run / "predictions.jsonl"
        if not meta_path.exists() or not pred_path.exists():
            fail(f"{run}: no run.json or predictions.jsonl (not a `umi eval static` or `umi eval baseline` folder)")
        try:
            meta = json.loads(meta_path.read_text())
            trajectories = load_trajectories(meta["data"]).items
        except (json.JSONDecodeError, KeyError, DataError) as exc:
            fail(f"{run}: cannot read the test data recorded in run.json: {exc}")
        rows = read_predictions(str(pred_path))
        if any(r.traj >= len(trajectories) for r in rows):
            fail(f"{pred_path}: a traj index is beyond {meta['data']} ({len(trajectories)} trajectories)")
        results[name[i] if i < len(name) else run.name] = score_rows(rows, trajectories)
    md, png = write_report(results, out, title=title)
    console.print(md.read_text())
    console.print(f"chart: {png}")


@eval_app.command()
def live(
    suite: str = typer.Option(
        "bfcl-multi-turn", "--suite", help="bfcl-multi-turn, stabletoolbench, toolalpaca-simulated or toolalpaca-real"
    ),
    category: str = typer.Option(
        "multi_turn_base", "--category", help="bfcl: multi_turn_base, _miss_func, _miss_param"
    ),
    roles: str | None = typer.Option(None, "--roles", help="Role config, run manifest or packaged name."),
    out: Path = typer.Option(..., "--out", help="One result file per task here; a rerun resumes."),
    single: bool = typer.Option(False, "--single", help="Single-LLM baseline (the backbone role)."),
    dfsdt: bool = typer.Option(False, "--dfsdt", help="DFSDT search around the agent."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N tasks (a documented subset)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Tasks in flight at once (bounded concurrency)."),
    max_steps: int = typer.Option(8, "--max-steps", help="Agent steps per user turn."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    group: str = typer.Option("G1_instruction", "--group", help="stabletoolbench: query group."),
    server_url: str = typer.Option("http://127.0.0.1:8080", "--server-url", help="stabletoolbench: `umi serve tools`."),
    queries_dir: Path | None = typer.Option(None, "--queries-dir", help="stabletoolbench: query files."),
    judge: str | None = typer.Option(
        None, "--judge", help="stabletoolbench/toolalpaca: judge roles (default: --roles)."
    ),
    rounds: int = typer.Option(3, "--rounds", help="stabletoolbench: judge rounds for SoPR."),
    sample: int | None = typer.Option(None, "--sample", help="toolalpaca: a seeded random subset of N instructions."),
    seed: int = typer.Option(0, "--seed", help="toolalpaca: seed of --sample."),
    simulator: str | None = typer.Option(
        None, "--simulator", help="toolalpaca: simulator role config (default: --roles)."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="toolalpaca: the ToolAlpaca data folder."),
    as_json: bool = typer.Option(False, "--json", help="Also print the summary as JSON (last line)."),
    constrain: bool = typer.Option(
        True, "--constrain/--no-constrain", help="Role grammars (umi.format.grammar) on every model call."
    ),
    shortlist: int | None = shortlist_option(),
) -> None:
    """Whole tasks against executable tools, scored by the suite's own checker (BFCL) or SoPR (StableToolBench).

    One result file and one trace (`traces/<task>.jsonl`) per task under --out; a rerun resumes. Writes
    report.md and report.png beside them."""
    from umi.evaluate.live.bfcl import CATEGORIES, agent_factory, load_tasks, run_suite
    from umi.evaluate.live.report import LiveRow, write_live_report
    from umi.models.base import EngineError
    from umi.models.roles import default_roles, load_roles

    suites = ("bfcl-multi-turn", "stabletoolbench", "toolalpaca-simulated", "toolalpaca-real")
    if suite not in suites:
        fail(f"unknown suite {suite!r}; available: {', '.join(suites)}")
    if suite == "bfcl-multi-turn" and category not in CATEGORIES:
        fail(f"unknown category {category!r}; available: {', '.join(CATEGORIES)}")
    try:
        bound = load_roles(roles) if roles else default_roles()
        if shortlist is not None:
            bound.set_shortlist(shortlist)
    except (EngineError, ValueError, OSError) as exc:
        fail(str(exc))
    if suite.startswith("toolalpaca"):
        from umi.cli._toolalpaca import run_toolalpaca_cli

        run_toolalpaca_cli(
            suite,
            bound,
            roles,
            out / suite,
            single=single,
            dfsdt=dfsdt,
            max_steps=max_steps,
            max_new_tokens=max_new_tokens,
            limit=limit,
            sample=sample,
            seed=seed,
            workers=workers,
            judge=judge,
            simulator=simulator,
            data_dir=data_dir,
            as_json=as_json,
            constrain=constrain,
        )
        return
    make = agent_factory(
        bound, single=single, dfsdt=dfsdt, max_steps=max_steps, max_new_tokens=max_new_tokens, constrain=constrain
    )
    system = ("single-LLM" if single else "α-UMi multi-LLM") + (" + DFSDT" if dfsdt else "")
    system += f" ({roles or 'embedded default'})"

    if suite == "stabletoolbench":
        args = (make, bound, out / group, group, server_url, queries_dir, judge, rounds, limit, workers, as_json)
        from umi.cli._stabletoolbench import run_stabletoolbench_cli

        run_stabletoolbench_cli(*args, system=system)
        return
    entries = load_tasks(category)
    entries = entries[:limit] if limit else entries
    with task_bar(f"{suite}/{category}") as bar:
        task = bar.add_task("tasks", total=len(entries))
        summary = run_suite(
            entries,
            make,
            out / category,
            workers=workers,
            on_progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(f"{category}: {summary['passed']}/{summary['tasks']} tasks pass = {summary['accuracy']:.2f}%")
    subset = f"first {limit}" if limit else "all"
    row = LiveRow(system, f"BFCL v4 {category}", "accuracy", summary["accuracy"], summary["tasks"], subset)
    md, png = write_live_report([row], out / category / "report", title=f"BFCL v4 {category}")
    console.print(f"report: {md} and {png}")
    if as_json:
        print_json_last(summary)


@eval_app.command()
def winrate(
    candidate: Path = typer.Option(..., "--candidate", help="A `umi eval live --suite stabletoolbench` group folder."),
    reference: Path = typer.Option(..., "--reference", help="The run to compare against (same queries)."),
    judge: str | None = typer.Option(None, "--judge", help="Judge role config (default: the embedded model)."),
    rounds: int = typer.Option(2, "--rounds", help="Judge rounds; each asks in both answer orders."),
    as_json: bool = typer.Option(False, "--json", help="Also print the result as JSON (last line)."),
) -> None:
    """Win rate of one StableToolBench run's answers against another's, with the same judge (simulated APIs)."""
    from umi.evaluate.live.toolbench import LABEL, role_judge, win_rate
    from umi.models.base import EngineError
    from umi.models.roles import default_roles, load_roles

    try:
        judge_roles = load_roles(judge) if judge else default_roles()
        result = win_rate(candidate, reference, role_judge(judge_roles), rounds=rounds)
    except (EngineError, ValueError, OSError) as exc:
        fail(str(exc))
    console.print(
        f"{candidate.name} vs {reference.name} ({LABEL}): win rate {result['win_rate']:.1f}% over "
        f"{result['queries']} queries ({result['wins']} won, {result['ties']} tied, {result['losses']} lost)"
    )
    if as_json:
        print_json_last(result)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval", help="Static (Table 1) and live evaluation.")
