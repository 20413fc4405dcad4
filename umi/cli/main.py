"""The `umi` command: a thin typer front over the library. Each sub-command lives in its own module."""

from __future__ import annotations

import typer

from umi.cli import data as data_cli

app = typer.Typer(no_args_is_help=True, add_completion=False, help="α-UMi multi-LLM tool agents from small models.")
app.add_typer(data_cli.app, name="data", help="Build, split and inspect training and test data.")


def _register_optional() -> None:
    """Sub-commands added by the other packages; each module exposes `register(app)`."""
    import importlib

    for name in ("models", "run", "evaluate", "train", "serve"):
        try:
            module = importlib.import_module(f"umi.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"umi.cli.{name}":
                continue
            raise
        module.register(app)


_register_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
