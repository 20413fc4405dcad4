"""`umi train RECIPE`: GLPFT and its baselines on the field's stack (transformers, PEFT, accelerate)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer

from umi.cli._common import console, fail


def _command(recipe: str, base: str, data: Path, out: Path, preset: str, full: bool, *rest: Any) -> str:
    """The canonical command line of this run (written into the manifest so the run can be repeated)."""
    max_rows, max_steps, overrides, continue_from, keep, fresh = rest
    args = ["umi", "train", recipe, "--base", base, "--data", str(data), "--out", str(out), "--preset", preset]
    args += ["--full"] if full else []
    args += ["--continue-from", str(continue_from)] if continue_from is not None else []
    for flag, stages in (("--keep", keep), ("--fresh", fresh)):
        for stage in stages:
            args += [flag, stage]
    for flag, value in (("--max-rows", max_rows), ("--max-steps", max_steps)):
        args += [flag, str(value)] if value is not None else []
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        args += ([flag] if value else []) if isinstance(value, bool) else [flag, str(value)]
    return shlex.join(args)


def train_command(
    recipe: str = typer.Argument(..., metavar="RECIPE", help="glpft, single, one-stage or multi-task."),
    base: str = typer.Option("embedded", "--base", help="Hub id, local folder, .gguf file, or 'embedded'."),
    data: Path = typer.Option(
        ..., "--data", help="Rows folder from `umi data build` (backbone.json, planner.json, …)."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder: one sub-folder per stage, manifest.json."),
    preset_name: str = typer.Option(
        "cpu-small", "--preset", help="paper, cpu-small or cpu-epoch (one full epoch per row set on a CPU)."
    ),
    full: bool = typer.Option(False, "--full", help="Full fine-tuning instead of LoRA."),
    max_rows: int | None = typer.Option(None, "--max-rows", help="Seeded random subset of each row set."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Cap on optimizer steps per stage."),
    grad_accum: int | None = typer.Option(None, "--grad-accum", help="Override the preset's accumulation."),
    micro_batch: int | None = typer.Option(None, "--micro-batch", help="Override rows per forward pass."),
    max_length: int | None = typer.Option(None, "--max-length", help="Override the preset's token limit."),
    packing: bool = typer.Option(False, "--packing", help="Pack rows into max-length sequences (block-diagonal)."),
    compat: bool = typer.Option(False, "--compat", help="Prefix inputs with the reference's 'system: '."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoints."),
    seed: int | None = typer.Option(None, "--seed", help="Override the preset's seed (data order, LoRA init)."),
    threads: int | None = typer.Option(
        None, "--threads", help="Torch threads per process (1 per process is fastest on small shared CPUs)."
    ),
    continue_from: Path | None = typer.Option(
        None,
        "--continue-from",
        help="A finished LoRA GLPFT run (folder or packaged roles): train its roles a further epoch from their "
        "adapters, stage 1 taken over unchanged.",
    ),
    keep: list[str] | None = typer.Option(
        None, "--keep", help="With --continue-from: take this stage over unchanged instead of training it (repeatable)."
    ),
    fresh: list[str] | None = typer.Option(
        None,
        "--fresh",
        help="With --continue-from: train this role anew from the kept stage 1 (a new adapter) instead of "
        "continuing its adapter (repeatable).",
    ),
    lora_top_fraction: float | None = typer.Option(
        None, "--lora-top-fraction", help="Override the preset's share of layers (from the top) that get LoRA."
    ),
    api_name_weight: float | None = typer.Option(
        None,
        "--api-name-weight",
        help="Loss weight of the target tokens that spell the API the row's step calls (default 1: a plain mean).",
    ),
    unlikelihood: float | None = typer.Option(
        None,
        "--unlikelihood",
        help="Weight of a token-level unlikelihood term against the previous call's API where the step calls "
        "another (default 0: off).",
    ),
    name_rank: float | None = typer.Option(
        None,
        "--name-rank",
        help="Weight of a ranking loss over the task's API names where the target names the step's API "
        "(default 0: off; needs a prefix-packed preset such as cpu-epoch).",
    ),
    only: list[str] | None = typer.Option(
        None,
        "--only",
        help="Train only this stage-2 stage (repeatable; stage 1 is trained or resumed first). Two processes with "
        "--only planner / --only caller train two roles at once; run again with --resume to write the manifest.",
    ),
) -> None:
    """Train a recipe; writes RUN_DIR/manifest.json for `umi.models` to load the roles."""
    from umi.data.io import DataError
    from umi.train.config import PRESETS
    from umi.train.recipes import RECIPES, run_recipe

    if recipe not in RECIPES:
        fail(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}")
    if preset_name not in PRESETS:
        fail(f"unknown preset {preset_name!r}; use one of {', '.join(PRESETS)}")
    if not data.is_dir():
        fail(f"{data}: not a folder; build one with `umi data build TRAJECTORIES --out {data}`")
    overrides: dict[str, object] = {"packing": packing, "compat": compat}
    for key, value in (
        ("grad_accum", grad_accum),
        ("micro_batch", micro_batch),
        ("max_length", max_length),
        ("threads", threads),
        ("seed", seed),
        ("lora_top_fraction", lora_top_fraction),
        ("api_name_weight", api_name_weight),
        ("unlikelihood", unlikelihood),
        ("name_rank", name_rank),
    ):
        if value is not None:
            overrides[key] = value
    try:
        manifest = run_recipe(
            recipe,
            base=base,
            data=data,
            out=out,
            preset_name=preset_name,
            full=full,
            max_rows=max_rows,
            max_steps=max_steps,
            resume=resume,
            overrides=overrides,
            command=_command(
                recipe,
                base,
                data,
                out,
                preset_name,
                full,
                max_rows,
                max_steps,
                overrides,
                continue_from,
                keep or [],
                fresh or [],
            ),
            only=only or None,
            continue_from=continue_from,
            keep=keep or [],
            fresh=fresh or [],
        )
    except (DataError, FileExistsError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if manifest is None:
        console.print(f"trained {', '.join(only or [])} in {out}; run again with --resume (no --only) for the manifest")
        return
    console.print(f"wrote {out / 'manifest.json'}: roles {', '.join(manifest.roles)} on {manifest.base}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
