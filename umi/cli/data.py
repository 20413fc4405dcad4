"""`umi data …`: build row sets, split by tools, print statistics, convert ToolBench answer files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from umi.cli._common import console, err_console, fail, print_json_last
from umi.data import DataError, Loaded, compute_stats, shared, split_by_tools
from umi.data.build import build_dataset, load_any, write_trajectories
from umi.data.io import read_json, write_json
from umi.format import DEFAULT_BUDGET

app = typer.Typer(no_args_is_help=True)


def _report_skipped(loaded: Loaded) -> None:
    if loaded.skipped:
        err_console.print(f"[yellow]skipped {len(loaded.skipped)} invalid record(s):[/]")
        for err in loaded.skipped:
            err_console.print(f"  - {err}", highlight=False, soft_wrap=True)


@app.command()
def build(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="Trajectory JSON (stage-2 layout) or a ToolBench answer folder."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for backbone/planner/caller/summarizer/multitask.json."),
    compat: bool = typer.Option(
        False, "--compat", help="Reproduce the released α-UMi rows byte for byte, defects included."
    ),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip bad records (each is reported)."),
    family: str = typer.Option("toolbench", "--family", help="Prompt family: toolbench or toolalpaca."),
    budget: int | None = typer.Option(
        None,
        "--budget",
        help="Render every prompt under umi's prompt budget with at most N characters (compact tool documents, "
        "observations cut, oldest observations dropped first); recorded in OUT/budget.json. 0: the default "
        f"budget ({DEFAULT_BUDGET.max_chars} characters).",
    ),
    tool_order: str = typer.Option(
        "given",
        "--tool-order",
        help="With --budget: 'given' keeps the data's tool order; 'query' lists the tools most relevant to the "
        "user's query first (BM25, umi.format.relevance), as the agent then does with the run's manifest.",
    ),
    hint: bool = typer.Option(
        False,
        "--planner-hint",
        help="With --budget: the planner's prompts name the APIs not called yet after the history (prompt budget "
        "rule 5, umi.format.budget); the agent does the same with the run's manifest.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object."),
) -> None:
    """Build the GLPFT row sets: global (stage 1) and planner / caller / summarizer (stage 2) plus multi-task."""
    if tool_order != "given" and budget is None:
        fail("--tool-order needs --budget (the released, unbudgeted rows keep the data's order byte for byte)")
    if hint and budget is None:
        fail("--planner-hint needs --budget (the released, unbudgeted rows keep their prompts byte for byte)")
    try:
        with Progress(
            TextColumn("building rows"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("rows", total=None)
            result = build_dataset(
                input_path,
                out,
                compat=compat,
                skip_invalid=skip_invalid,
                family=family,
                budget=None
                if budget is None
                else replace(
                    DEFAULT_BUDGET,
                    max_chars=budget or DEFAULT_BUDGET.max_chars,
                    tool_order=tool_order,
                    planner_hint=hint,
                ),
                on_progress=lambda n: bar.advance(task, n),
            )
    except (DataError, ValueError) as exc:
        fail(str(exc))
    _report_skipped(result.loaded)
    counts = result.rows.counts()
    table = Table(title=f"row sets → {out}" + (" (compat)" if compat else ""))
    table.add_column("row set")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    console.print(table)
    console.print(f"{len(result.loaded.items)} trajectories in {result.seconds:.2f} s")
    if as_json:
        print_json_last(
            {
                **counts,
                "trajectories": len(result.loaded.items),
                "skipped": len(result.loaded.skipped),
                "seconds": round(result.seconds, 3),
            }
        )


@app.command()
def convert(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="A ToolBench answer folder (or a trajectory file to validate)."
    ),
    out: Path = typer.Option(..., "--out", help="Trajectory JSON file to write (stage-2 layout)."),
    compat: bool = typer.Option(False, "--compat", help="Reference observation parsing and the [:20] stage-1 limit."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid"),
) -> None:
    """Convert ToolBench answer files to umi trajectories."""
    try:
        loaded = load_any(input_path, compat=compat, skip_invalid=skip_invalid)
    except DataError as exc:
        fail(str(exc))
    _report_skipped(loaded)
    write_trajectories(out, loaded)
    console.print(f"wrote {len(loaded.items)} trajectories to {out}")


@app.command()
def split(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Trajectory JSON file."),
    by_tools: bool = typer.Option(True, "--by-tools/--no-by-tools", help="Keep trajectories sharing a tool together."),
    out: Path = typer.Option(..., "--out", help="Folder for train.json and test.json."),
    seed: int = typer.Option(0, "--seed"),
    test_fraction: float = typer.Option(0.5, "--test-fraction"),
) -> None:
    """A tool-disjoint train/test split of a trajectory file, in the input's own layout."""
    if not by_tools:
        fail("only --by-tools splitting is supported (a random split would leak tools into the test part)")
    try:
        raw = read_json(input_path)
        loaded = load_any(input_path)
    except DataError as exc:
        fail(str(exc))
    parts = split_by_tools(loaded.items, seed=seed, test_fraction=test_fraction)
    write_json(out / "train.json", [raw[i] for i in parts.train])
    write_json(out / "test.json", [raw[i] for i in parts.test])
    _print_stats({"train": [loaded.items[i] for i in parts.train], "test": [loaded.items[i] for i in parts.test]})


def _print_stats(parts: dict[str, list], as_json: bool = False) -> None:  # type: ignore[type-arg]
    stats = {name: compute_stats(trajs) for name, trajs in parts.items()}
    table = Table(title="data statistics")
    table.add_column("")
    for name in stats:
        table.add_column(name, justify="right")
    rows = {name: s.as_dict() for name, s in stats.items()}
    for key in next(iter(rows.values())):
        table.add_row(key, *(str(r[key]) for r in rows.values()))
    console.print(table)
    result: dict[str, object] = dict(rows)
    if len(stats) == 2:
        a, b = stats.values()
        common = shared(a, b)
        console.print(f"shared between parts: {common['shared_tools']} tools, {common['shared_apis']} API names")
        result.update(common)
    if as_json:
        print_json_last(result)


@app.command()
def stats(
    inputs: list[Path] = typer.Argument(
        ..., metavar="FILE...", help="Trajectory files or a split folder (train.json + test.json)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Trajectories, planner steps per route and tools of each file, and the tools two files share."""
    files: list[Path] = []
    for p in inputs:
        files += [p / "train.json", p / "test.json"] if p.is_dir() else [p]
    try:
        parts = {f.stem if len(files) > 1 else str(f): load_any(f).items for f in files}
    except DataError as exc:
        fail(str(exc))
    _print_stats(parts, as_json=as_json)


@app.command("rows-check")
def rows_check(
    built: Path = typer.Argument(..., help="A folder written by `umi data build`."),
    golden: Path = typer.Argument(
        ..., help="A folder with the released train_{backbone,planner,caller,summarizer}.json."
    ),
) -> None:
    """Compare built rows with released rows field by field (golden conformance, for --compat builds)."""
    bad = 0
    for name in ("backbone", "planner", "caller", "summarizer"):
        ours = read_json(built / f"{name}.json")
        theirs = read_json(golden / f"train_{name}.json")
        diff = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b]
        ok = not diff and len(ours) == len(theirs)
        bad += 0 if ok else 1
        console.print(
            f"{name:11s} ours {len(ours):4d}  released {len(theirs):4d}  "
            + ("[green]identical[/]" if ok else f"[red]{len(diff)} differ, first {diff[:5]}[/]")
        )
    if bad:
        raise typer.Exit(1)
    print(json.dumps({"identical": True}))


@app.command()
def tools(
    input_path: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="ToolBench/StableToolBench query file, ToolAlpaca eval file, OpenAPI document or OpenAI functions (JSON).",
    ),
    out: Path = typer.Option(..., "--out", help="JSON file of umi ToolSpecs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Convert tool documents to umi tool schemas (typed parameters, required/optional, enums, defaults)."""
    from umi.schema import ToolSpec
    from umi.tools.specs import from_api_list, from_openapi, load_tools

    try:
        data = read_json(input_path)
        if isinstance(data, list) and data and isinstance(data[0], dict) and "api_list" in data[0]:
            seen: dict[str, ToolSpec] = {}
            for query in data:  # query files repeat tools across queries: keep each API once
                for spec in from_api_list(query["api_list"]):
                    seen.setdefault(spec.name, spec)
            specs = list(seen.values())
        elif isinstance(data, list) and data and isinstance(data[0], dict) and "Documentation" in data[0]:
            specs = [s for tool in data for s in from_openapi(tool["Documentation"])]
        else:
            specs = load_tools(input_path)
    except (DataError, ValueError, KeyError) as exc:
        fail(f"{input_path}: {exc}")
    write_json(out, [s.model_dump() for s in specs])
    console.print(f"wrote {len(specs)} tool schemas to {out}")
    if as_json:
        print_json_last({"tools": len(specs)})
