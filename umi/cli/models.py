"""`umi models check`: load every configured role, generate a little with each, report speed and memory.

Why a command for it: a role configuration names files, servers and adapters that may be missing on this machine;
loading each role once and timing a short completion finds that out (with one clear line) before a long run.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from umi.cli._common import console, fail, print_json_last

FLAG_HELP = (
    "KIND:MODEL#ADAPTER (KIND and #ADAPTER optional), e.g. embedded, transformers:embedded#RUN/planner/adapter, "
    "http://HOST:8000/v1#planner"
)


def rss_mib() -> float:
    """Resident memory of this process now (MiB); the peak where /proc is unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_of(engine: Any) -> str:
    for attr in ("model_path", "model_name", "base_url"):
        if getattr(engine, attr, None):
            return str(getattr(engine, attr))
    return str(getattr(engine, "model", ""))


def register(app: typer.Typer) -> None:
    """Add the `models` sub-command group to the `umi` app."""
    models_app = typer.Typer(no_args_is_help=True)
    app.add_typer(models_app, name="models", help="Check model engines and role bindings.")

    @models_app.command()
    def check(
        roles: str | None = typer.Option(None, "--roles", help="Role config (TOML), run manifest, or packaged name."),
        planner: str | None = typer.Option(None, "--planner", help=FLAG_HELP),
        caller: str | None = typer.Option(None, "--caller", help=FLAG_HELP),
        summarizer: str | None = typer.Option(None, "--summarizer", help=FLAG_HELP),
        backbone: str | None = typer.Option(None, "--backbone", help="Alone: one engine for every role. " + FLAG_HELP),
        prompt: str = typer.Option("The capital of France is", "--prompt"),
        max_new_tokens: int = typer.Option(16, "--max-new-tokens"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Load the configured roles, generate a short completion with each, print engine, model, load seconds,
        tokens per second and resident memory."""
        from umi.models.base import EngineError, GenerationParams
        from umi.models.roles import load_roles

        start = time.perf_counter()
        try:
            bound = load_roles(roles, planner=planner, caller=caller, summarizer=summarizer, backbone=backbone)
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
            model = _model_of(engine)
            row = {
                "role": role,
                "engine": engine.name,
                "model": model,
                "adapter": binding.adapter or "",
                "load_seconds": round(getattr(engine, "load_seconds", load_seconds), 2),
                "tokens_per_second": round(tps, 1),
                "rss_mib": round(rss_mib()),
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

    @models_app.command("convert-lora")
    def convert_lora(
        adapter: Path = typer.Argument(..., help="A PEFT LoRA adapter folder (what `umi train` writes)."),
        out: Path = typer.Option(..., "--out", help="The .gguf file to write."),
        base: str = typer.Option("embedded", "--base", help="The GGUF base it was trained on (path or `embedded`)."),
    ) -> None:
        """Convert a PEFT LoRA adapter to llama.cpp's GGUF LoRA, so the role runs on the llama.cpp engine
        (`loras = {role = "role.gguf"}`)."""
        from umi.models.base import EngineError
        from umi.models.gguf_lora import peft_to_gguf_lora

        try:
            path = peft_to_gguf_lora(adapter, out, base=base)
        except EngineError as exc:
            fail(str(exc))
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
