"""The four training recipes of the paper's Table 1, each a short sequence of `train` runs plus a manifest.

* `glpft`      — stage 1 on the backbone (global) rows; then planner, caller and summarizer each start from the
                 stage-1 model (LoRA: the stage-1 adapter is merged into the base first, `stage1/merged`, and each
                 role gets its own adapter on that merged model; the manifest's `base` records it).
* `single`     — stage 1 alone: the single-LLM baseline, one model playing `backbone`.
* `one-stage`  — the three roles trained directly from the base (no stage 1).
* `multi-task` — one model on the union of the three role row sets, playing all three roles.

Each stage is its own run folder (`RUN_DIR/stage1`, `RUN_DIR/planner`, …) with checkpoints; a finished stage is
skipped under `--resume`, an unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from umi.data.build import read_budget
from umi.data.io import load_rows, write_json
from umi.schema import Row
from umi.train.config import Stage, TrainConfig, preset
from umi.train.loop import TrainResult, train
from umi.train.manifest import Manifest, RoleArtifact, data_hash
from umi.train.model import merge_adapter

RECIPES: tuple[str, ...] = ("glpft", "single", "one-stage", "multi-task")
ROLES: tuple[str, ...] = ("planner", "caller", "summarizer")
_ROW_SET: dict[str, str] = {
    "stage1": "backbone",
    "planner": "planner",
    "caller": "caller",
    "summarizer": "summarizer",
    "multitask": "multitask",
}


def select_rows(data: Path, row_set: str, max_rows: int | None, seed: int = 0) -> list[Row]:
    """A row set from a `umi data build` folder; `max_rows` keeps a seeded random subset (file order kept)."""
    rows = load_rows(data / f"{row_set}.json")
    if max_rows is not None and len(rows) > max_rows:
        keep = sorted(random.Random(seed).sample(range(len(rows)), max_rows))
        rows = [rows[i] for i in keep]
    return rows


def _stages(recipe: str) -> list[Stage]:
    return {
        "glpft": ["stage1", "planner", "caller", "summarizer"],
        "single": ["stage1"],
        "one-stage": ["planner", "caller", "summarizer"],
        "multi-task": ["multitask"],
    }[recipe]  # type: ignore[return-value]


def run_recipe(
    recipe: str,
    *,
    base: str,
    data: Path,
    out: Path,
    preset_name: str = "cpu-small",
    full: bool = False,
    max_rows: int | None = None,
    max_steps: int | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    command: str = "",
    config_for: Callable[[Stage], TrainConfig] | None = None,
    only: Sequence[str] | None = None,
) -> Manifest | None:
    """Train every stage of `recipe` into `out` and write `out/manifest.json` (see `umi.train.manifest`).

    `config_for` replaces the preset (tests use tiny configs); `overrides` patch any `TrainConfig` field. `only`
    trains just those stage-2 stages (stage 1 is trained or resumed first either way): on a CPU with one core per
    process, two processes with `only=["planner"]` and `only=["caller"]` train two roles at once. The manifest is
    written once every stage is done (None before: run the recipe again with `resume` to write it).
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {list(RECIPES)}")
    out = Path(out).resolve()
    base_ref = str(Path(base).resolve()) if Path(base).exists() else base
    unknown = sorted(set(only or ()) - set(_stages(recipe)) - {"stage1"})
    if unknown:
        raise ValueError(f"{recipe} has no stage(s) {unknown}; its stages are {_stages(recipe)}")
    rows = {s: select_rows(Path(data), _ROW_SET[s], max_rows) for s in _stages(recipe)}
    budget = read_budget(data)
    configs: dict[Stage, TrainConfig] = {}
    for stage in rows:
        cfg = config_for(stage) if config_for else preset(preset_name, stage)
        patch: dict[str, Any] = {"lora": not full, **(overrides or {})}
        if max_steps is not None:
            patch["max_steps"] = max_steps
        configs[stage] = cfg.model_copy(update=patch)
    results: dict[Stage, TrainResult] = {}
    role_base = base_ref
    if "stage1" in rows:
        results["stage1"] = train(
            rows["stage1"], base_ref, out / "stage1", configs["stage1"], resume=resume, label="stage1"
        )
    if recipe == "glpft":
        s1 = results["stage1"].artifact
        role_base = str(merge_adapter(base_ref, s1, out / "stage1" / "merged")) if not full else str(s1)
    for stage in rows:
        if stage != "stage1" and (only is None or stage in only):
            results[stage] = train(rows[stage], role_base, out / stage, configs[stage], resume=resume, label=stage)
    if len(results) < len(rows):
        return None

    def artifact(stage: Stage) -> RoleArtifact:
        rel = str(results[stage].artifact.relative_to(out))
        return RoleArtifact(model=rel) if full else RoleArtifact(adapter=rel)

    if recipe == "single":
        roles = {"backbone": artifact("stage1")}
    elif recipe == "multi-task":
        roles = {r: artifact("multitask") for r in ROLES}
    else:
        roles = {r: artifact(r) for r in ("planner", "caller", "summarizer")}
    manifest_base = str(Path(role_base).relative_to(out.resolve())) if recipe == "glpft" else base_ref
    manifest = Manifest(
        recipe=recipe,  # type: ignore[arg-type]
        base=manifest_base,
        roles=roles,  # type: ignore[arg-type]
        data_hash=data_hash([json.dumps([r.as_json_dict() for r in rows[s]]).encode() for s in rows]),
        hyperparameters={
            s: {"rows": len(rows[s]), "steps": results[s].steps, **c.model_dump()} for s, c in configs.items()
        },
        command=command,
        prompt_budget=budget.as_dict() if budget is not None else None,
    )
    write_json(out / "manifest.json", manifest.model_dump(exclude_none=True))
    return manifest
