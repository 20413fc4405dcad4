"""The four training recipes of the paper's Table 1, each a short sequence of `train` runs plus a manifest.

* `glpft`      — stage 1 on the backbone (global) rows; then planner, caller and summarizer each start from the
                 stage-1 model (LoRA: the stage-1 adapter is merged into the base first, `stage1/merged`, and each
                 role gets its own adapter on that merged model; the manifest's `base` records it).
* `single`     — stage 1 alone: the single-LLM baseline, one model playing `backbone`.
* `one-stage`  — the three roles trained directly from the base (no stage 1).
* `multi-task` — one model on the union of the three role row sets, playing all three roles.

Each stage is its own run folder (`RUN_DIR/stage1`, `RUN_DIR/planner`, …) with checkpoints; a finished stage is
skipped under `--resume`, an unfinished one continues from its last checkpoint.

`continue_from` (GLPFT with LoRA) trains the roles a further epoch from a finished run's adapters (a `umi train`
folder or packaged roles): stage 1 is taken over unchanged, since the roles' adapters were trained on that stage-1
model and would not fit another, and so is every stage in `keep`. On one CPU a second epoch of the roles costs
what the first did, without repeating stage 1. A stage in `fresh` is trained anew from the kept stage 1 instead
(a new adapter, e.g. on more layers), so one role can be retrained without repeating stage 1 or the others.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from umi.data.build import read_budget
from umi.data.io import load_rows, write_json
from umi.models.embedded import cached_file
from umi.schema import Row
from umi.train.config import Stage, TrainConfig, preset
from umi.train.data import step_call_names
from umi.train.loop import TrainResult, finished_run, train
from umi.train.manifest import Manifest, RoleArtifact, data_hash, load_manifest
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


class PreviousRun(NamedTuple):
    """The finished run `continue_from` names: its manifest and its adapters by stage (`stage1`, `planner`, …)."""

    manifest: Manifest
    adapters: dict[str, Path]


def previous_adapters(run: Path, base: str) -> PreviousRun:
    """A finished LoRA GLPFT run, for `continue_from`; refuses another recipe, full models, or a run on another
    base."""
    run = Path(run).resolve()
    manifest = load_manifest(run)
    if manifest.recipe != "glpft" or any(a.adapter is None for a in manifest.roles.values()):
        raise ValueError(f"{run}: --continue-from needs a finished LoRA GLPFT run (manifest recipe 'glpft')")
    if manifest.base_adapters:  # packaged roles: stage 1 ships as an adapter on the base
        stage1, prev_base = run / manifest.base_adapters[0], manifest.base
    else:
        stage1 = run / "stage1" / "adapter"
        prev_base = json.loads((run / "stage1" / "config.json").read_text())["base"]
    if prev_base != base:
        raise ValueError(f"{run}: its stage 1 was trained on {prev_base!r}, not on --base {base!r}")
    adapters: dict[str, Path] = {"stage1": stage1}
    adapters.update({r: run / a.adapter for r, a in manifest.roles.items() if a.adapter})
    missing = [str(p) for p in adapters.values() if not (p / "adapter_config.json").exists()]
    if missing:
        raise FileNotFoundError(f"{run}: adapter(s) missing: {', '.join(missing)}")
    return PreviousRun(manifest, adapters)


def adopt_stage(src: Path, out: Path, base: str, steps: int) -> TrainResult:
    """Take a finished stage over unchanged (its adapter copied to `out/adapter`, a `done.json` saying so); a stage
    already there is left as it is, and two processes adopting at once are safe (`cached_file`)."""

    def write(tmp: Path) -> None:
        shutil.copytree(src, tmp / "adapter")
        (tmp / "config.json").write_text(json.dumps({"base": base, "adopted_from": str(src)}, indent=2))
        (tmp / "done.json").write_text(json.dumps({"artifact": "adapter", "steps": steps, "seconds": 0.0}))

    return finished_run(cached_file(out, write))


def _stages(recipe: str) -> list[Stage]:
    return {
        "glpft": ["stage1", "planner", "caller", "summarizer"],
        "single": ["stage1"],
        "one-stage": ["planner", "caller", "summarizer"],
        "multi-task": ["multitask"],
    }[recipe]  # type: ignore[return-value]


def _emphasis(data: Path, rows: Sequence[Row], config: TrainConfig) -> list[list[str]] | None:
    """Each row's step call (None when neither API-name emphasis, unlikelihood nor name ranking is on): the names
    `config.api_name_weight` weights, `config.unlikelihood` contrasts with the previous call and `config.name_rank`
    ranks among the task's APIs."""
    if config.api_name_weight == 1.0 and not config.unlikelihood and not config.name_rank:
        return None
    return step_call_names(rows, select_rows(data, _ROW_SET["caller"], None))


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
    continue_from: Path | None = None,
    keep: Sequence[str] = (),
    fresh: Sequence[str] = (),
) -> Manifest | None:
    """Train every stage of `recipe` into `out` and write `out/manifest.json` (see `umi.train.manifest`).

    `config_for` replaces the preset (tests use tiny configs); `overrides` patch any `TrainConfig` field. `only`
    trains just those stage-2 stages (stage 1 is trained or resumed first either way): on a CPU with one core per
    process, two processes with `only=["planner"]` and `only=["caller"]` train two roles at once. The manifest is
    written once every stage is done (None before: run the recipe again with `resume` to write it).
    `continue_from` / `keep` / `fresh`: see the module docstring.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {list(RECIPES)}")
    out = Path(out).resolve()
    base_ref = str(Path(base).resolve()) if Path(base).exists() else base
    unknown = sorted(set(only or ()) - set(_stages(recipe)) - {"stage1"})
    if unknown:
        raise ValueError(f"{recipe} has no stage(s) {unknown}; its stages are {_stages(recipe)}")
    previous: PreviousRun | None = None
    if continue_from is not None:
        if recipe != "glpft" or full:
            raise ValueError("--continue-from continues a LoRA GLPFT run; use it with `glpft` and without --full")
        previous = previous_adapters(Path(continue_from), base_ref)
    kept = {"stage1", *keep} if previous else set()
    for flag, stages, allowed, does in (
        ("--keep", keep, _stages(recipe), "takes stages over from a finished run"),
        ("--fresh", fresh, _stages(recipe)[1:], "retrains stages on a finished run's stage 1"),
    ):
        if stages and previous is None:
            raise ValueError(f"{flag} {list(stages)}: {does}; add --continue-from RUN")
        bad = sorted(set(stages) - set(allowed))
        if bad:
            raise ValueError(f"{flag} {bad}: not among the stages {flag} accepts for {recipe} ({allowed})")
    if set(keep) & set(fresh):
        raise ValueError(f"--keep and --fresh both name {sorted(set(keep) & set(fresh))}; choose one per stage")
    rows = {s: select_rows(Path(data), _ROW_SET[s], max_rows) for s in _stages(recipe)}
    budget = read_budget(data)
    configs: dict[Stage, TrainConfig] = {}
    for stage in rows:
        cfg = config_for(stage) if config_for else preset(preset_name, stage)
        patch: dict[str, Any] = {"lora": not full, **(overrides or {})}
        if max_steps is not None:
            patch["max_steps"] = max_steps
        if previous is not None and stage not in kept and stage not in fresh:
            patch["init_adapter"] = str(previous.adapters[stage])
        configs[stage] = cfg.model_copy(update=patch)
    results: dict[Stage, TrainResult] = {}
    role_base = base_ref
    if previous is not None:
        for name in sorted(kept):
            steps = int(previous.manifest.hyperparameters.get(name, {}).get("steps", 0))
            results[name] = adopt_stage(previous.adapters[name], out / name, base_ref, steps)  # type: ignore[index]
    elif "stage1" in rows:
        results["stage1"] = train(
            rows["stage1"],
            base_ref,
            out / "stage1",
            configs["stage1"],
            resume=resume,
            label="stage1",
            emphasis=_emphasis(Path(data), rows["stage1"], configs["stage1"]),
        )
    if recipe == "glpft":
        s1 = results["stage1"].artifact
        role_base = str(merge_adapter(base_ref, s1, out / "stage1" / "merged")) if not full else str(s1)
    for stage in rows:
        if stage not in results and (only is None or stage in only):
            results[stage] = train(
                rows[stage],
                role_base,
                out / stage,
                configs[stage],
                resume=resume,
                label=stage,
                emphasis=_emphasis(Path(data), rows[stage], configs[stage]),
            )
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
            s: _hyperparameters(s, len(rows[s]), results[s].steps, _as_trained(out / s, c), previous, kept, fresh)
            for s, c in configs.items()
        },
        command=command,
        prompt_budget=budget.as_dict() if budget is not None else None,
    )
    write_json(out / "manifest.json", manifest.model_dump(exclude_none=True))
    return manifest


def _as_trained(stage_dir: Path, config: TrainConfig) -> TrainConfig:
    """The config a stage was trained with (its `config.json`), not this invocation's: stages trained by separate
    `--only` processes may differ (one role's loss weights), and the manifest must say what each really had."""
    recorded = stage_dir / "config.json"
    if not recorded.exists():
        return config
    saved = {k: v for k, v in json.loads(recorded.read_text()).items() if k in TrainConfig.model_fields}
    return TrainConfig.model_validate(saved)


def _hyperparameters(
    stage: str,
    rows: int,
    steps: int,
    config: TrainConfig,
    previous: PreviousRun | None,
    kept: set[str],
    fresh: Sequence[str] = (),
) -> dict[str, Any]:
    """A stage's manifest entry: its own rows, steps and config; an adopted stage's is the earlier run's entry, a
    continued stage carries the earlier run's entry as `continued_from` (so the whole training is on file), and a
    fresh one the entry it replaced as `replaced`."""
    earlier = previous.manifest.hyperparameters.get(stage, {}) if previous else {}
    if stage in kept:
        return {**earlier, "adopted": True}
    entry: dict[str, Any] = {"rows": rows, "steps": steps, **config.model_dump()}
    if previous is None:
        return entry
    return {**entry, "replaced" if stage in fresh else "continued_from": earlier}
