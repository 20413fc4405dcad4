"""`umi models check`: load every configured role, generate a little with each, report speed and memory."""

from __future__ import annotations

import resource
import time

import typer
from rich.table import Table

from umi.cli._common import console, fail, print_json_last


def _rss_mib() -> float:
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(no_args_is_help=True)
    app.add_typer(models_app, name="models", help="Check model engines and role bindings.")

    @models_app.command()
    def check(
        roles: str | None = typer.Option(None, "--roles", help="Role config (TOML), run manifest, or packaged name."),
        prompt: str = typer.Option("The capital of France is", "--prompt"),
        max_new_tokens: int = typer.Option(16, "--max-new-tokens"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Load the configured roles, generate a short completion with each, print engine, model, load seconds,
        tokens per second and resident memory."""
        from umi.models.base import EngineError, GenerationParams
        from umi.models.roles import default_roles, load_roles

        start = time.perf_counter()
        try:
            bound = load_roles(roles) if roles else default_roles()
        except EngineError as exc:
            fail(str(exc))
        load_seconds = time.perf_counter() - start
        table = Table(title=f"roles: {bound.source or 'embedded default'}")
        for col in ("role", "engine", "model", "adapter", "load s", "tok/s", "RSS MiB", "sample"):
            table.add_column(col)
        rows = []
        for role, binding in bound.bound().items():
            engine = binding.engine
            try:
                c = binding.complete([prompt], GenerationParams(max_new_tokens=max_new_tokens))[0]
            except EngineError as exc:
                fail(str(exc))
            tps = c.new_tokens / c.seconds if c.seconds else 0.0
            model = str(getattr(engine, "model_path", getattr(engine, "model_name", getattr(engine, "model", ""))))
            row = {
                "role": role,
                "engine": engine.name,
                "model": model,
                "adapter": binding.adapter or "",
                "load_seconds": round(getattr(engine, "load_seconds", load_seconds), 2),
                "tokens_per_second": round(tps, 1),
                "rss_mib": round(_rss_mib()),
                "sample": c.text,
            }
            rows.append(row)
            table.add_row(
                role,
                engine.name,
                model.rsplit("/", 1)[-1][-40:],
                binding.adapter or "",
                f"{row['load_seconds']:.2f}",
                f"{tps:.1f}",
                str(row["rss_mib"]),
                repr(c.text[:40]),
            )
        console.print(table)
        if as_json:
            print_json_last({"roles": rows})
