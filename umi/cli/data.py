"""`umi data …`: build row sets, split by tools, print statistics, convert outside formats."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
