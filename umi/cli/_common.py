"""Small helpers shared by the CLI modules: one error style, one console."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line on stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json_last(obj: Any) -> None:
    """`--json` output: one JSON object on the last line of standard output."""
    print(json.dumps(obj, ensure_ascii=False))


def task_bar(label: str, *, rate: bool = False) -> Progress:
    """The progress bar every long job shows: done/total, elapsed and ETA; with `rate`, the task's `rate` field
    (a job that measures its own throughput, e.g. static evaluation's steps/s) in place of the elapsed time."""
    middle = TextColumn("{task.fields[rate]}") if rate else TimeElapsedColumn()
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        middle,
        TimeRemainingColumn(),
        console=err_console,
    )


COST_COLUMNS = (
    ("calls", "calls"),
    ("prompt_tokens", "prompt tokens"),
    ("cached_tokens", "cached"),
    ("prefilled_tokens", "prefilled"),
    ("new_tokens", "new tokens"),
    ("seconds", "seconds"),
)


def cost_table(costs: dict[str, dict[str, float]], title: str = "") -> Table:
    """Per-role costs: prompt tokens split into those served from the role's prompt cache and those prefilled."""
    table = Table(title=title or None)
    table.add_column("role")
    for _, label in COST_COLUMNS:
        table.add_column(label, justify="right")
    for role, t in costs.items():
        cells = [f"{t.get(k, 0):.2f}" if k == "seconds" else str(int(t.get(k, 0))) for k, _ in COST_COLUMNS]
        table.add_row(role, *cells)
    return table


def shortlist_option() -> Any:
    """`--shortlist K`, one definition for every command that runs the agent or an evaluation."""
    return typer.Option(
        None,
        "--shortlist",
        min=0,
        help="The caller's (backbone's) grammar may call only the K tools most relevant to the query not called yet "
        "(umi.format.relevance.shortlist); 0: every tool. Default: the role configuration's.",
    )
