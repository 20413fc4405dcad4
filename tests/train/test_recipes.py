"""Every recipe end to end on a tiny Llama: the loss falls, stage 2 starts from stage 1, the manifest loads and
generates, and the CLI writes the same manifest."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from umi.train.config import Stage, TrainConfig
from umi.train.manifest import load_manifest, load_role_model
from umi.train.recipes import run_recipe


def tiny(stage: Stage) -> TrainConfig:
    return TrainConfig(epochs=3, lr=3e-2, micro_batch=2, grad_accum=1, max_length=384, save_every=4)


def _losses(run: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def _generates(manifest: Path, role: str) -> None:
    model, tok = load_role_model(manifest, role)
    ids = tok("user: hello", return_tensors="pt")["input_ids"]
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]


@pytest.mark.parametrize("recipe", ["glpft", "single", "one-stage", "multi-task"])
def test_recipe_trains_and_its_manifest_loads(recipe: str, tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    manifest = run_recipe(recipe, base=str(tiny_base), data=rows_dir, out=tmp_path, config_for=tiny, command="test")
    loaded = load_manifest(tmp_path / "manifest.json")
    assert loaded == manifest and loaded.umi_manifest == 1 and loaded.recipe == recipe
    expected = {"single": {"backbone"}}.get(recipe, {"planner", "caller", "summarizer"})
    assert set(loaded.roles) == expected
    for stage in loaded.hyperparameters:
        losses = _losses(tmp_path / stage)
        per_epoch = len(losses) // 3  # the same rows every epoch: compare the first epoch's mean with the last's
        assert len(losses) == loaded.hyperparameters[stage]["steps"] == 3 * per_epoch
        assert sum(losses[-per_epoch:]) < sum(losses[:per_epoch]) * 0.95, (stage, losses)
    _generates(tmp_path / "manifest.json", next(iter(expected)))
    if recipe == "multi-task":
        assert len({r.adapter for r in loaded.roles.values()}) == 1


def test_glpft_stage2_starts_from_stage1(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    manifest = run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=tmp_path, config_for=tiny)
    assert manifest.base == "stage1/merged"
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "stage1" / "merged").state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    expected = PeftModel.from_pretrained(base, tmp_path / "stage1" / "adapter").merge_and_unload().state_dict()
    raw = AutoModelForCausalLM.from_pretrained(tiny_base).state_dict()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(merged[q], raw[q])  # stage 1 moved the weights …
    for name, value in expected.items():  # … and the merged model is exactly base + stage-1 adapter
        assert torch.allclose(merged[name], value, atol=1e-6), name
    for role in ("planner", "caller", "summarizer"):
        config = json.loads((tmp_path / role / "config.json").read_text())
        assert Path(config["base"]) == tmp_path.resolve() / "stage1" / "merged"
        adapter = json.loads((tmp_path / role / "adapter" / "adapter_config.json").read_text())
        assert Path(adapter["base_model_name_or_path"]) == tmp_path.resolve() / "stage1" / "merged"


def test_cli_train_and_errors(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from umi.cli.main import app

    runner = CliRunner()
    args = ["train", "single", "--base", str(tiny_base), "--data", str(rows_dir), "--out", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--max-steps", "2", "--max-length", "256", "--micro-batch", "2"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest(tmp_path / "run")
    assert manifest.hyperparameters["stage1"]["max_steps"] == 2 and "umi train single" in manifest.command
    again = runner.invoke(app, [*args, "--max-steps", "2"])
    assert again.exit_code == 1 and "already finished" in again.output
    bad = runner.invoke(app, ["train", "glpft", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "not a folder" in bad.output


def test_packaged_roles_match_the_run(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    """Packaging (stage 1 as a base adapter, fp16 adapters) gives the run's roles back up to fp16 rounding."""
    from umi.train.package import package_run

    run = tmp_path / "run"
    run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=run, config_for=tiny)
    packaged = package_run(run, tmp_path / "pkg", base=str(tiny_base.resolve()))
    assert packaged.base_adapters == ["stage1"] and packaged.roles["caller"].adapter == "caller"
    assert not (tmp_path / "pkg.tmp").exists()
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    for role in ("planner", "summarizer"):
        a, _ = load_role_model(run / "manifest.json", role)
        b, _ = load_role_model(tmp_path / "pkg" / "manifest.json", role)
        with torch.no_grad():
            assert torch.allclose(a(ids).logits, b(ids).logits, atol=2e-2)
    with pytest.raises(ValueError, match="above"):
        package_run(run, tmp_path / "small", base=str(tiny_base.resolve()), max_mb=0.001)


def test_packaged_single_run_keeps_its_backbone_on_the_base(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    """A single-LLM run packages as its backbone adapter on the base itself (no stage-1 base adapter), and a run on
    another base is refused by name."""
    from umi.train.package import package_run

    run = tmp_path / "run"
    run_recipe("single", base=str(tiny_base), data=rows_dir, out=run, config_for=tiny)
    packaged = package_run(run, tmp_path / "pkg", base=str(tiny_base.resolve()))
    assert packaged.recipe == "single" and packaged.base_adapters == [] and set(packaged.roles) == {"backbone"}
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    a, _ = load_role_model(run / "manifest.json", "backbone")
    b, _ = load_role_model(tmp_path / "pkg" / "manifest.json", "backbone")
    with torch.no_grad():
        assert torch.allclose(a(ids).logits, b(ids).logits, atol=2e-2)
    with pytest.raises(ValueError, match="needs a run on 'gemma3-270m'"):
        package_run(run, tmp_path / "other", base="gemma3-270m")


def test_full_fine_tuning_with_gradient_checkpointing(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    def config(stage: Stage) -> TrainConfig:
        return tiny(stage).model_copy(update={"lora": False, "gradient_checkpointing": True, "lr": 3e-3})

    manifest = run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=tmp_path, full=True, config_for=config)
    assert manifest.base == "stage1/model" and manifest.roles["planner"].model == "planner/model"
    losses = _losses(tmp_path / "stage1")
    assert sum(losses[-len(losses) // 3 :]) < sum(losses[: len(losses) // 3]) * 0.95
    _generates(tmp_path / "manifest.json", "caller")


def test_only_trains_one_role_and_resume_writes_the_manifest(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    """`only` (how two CPU processes train two roles at once): each call trains stage 1 (or reuses it) and just
    its role, returns no manifest while stages are missing; a final `resume` trains the rest and writes it."""
    first = run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=tmp_path, config_for=tiny, only=["caller"])
    assert first is None and not (tmp_path / "manifest.json").exists()
    assert (tmp_path / "caller" / "adapter").is_dir() and not (tmp_path / "planner").exists()
    caller_losses = _losses(tmp_path / "caller")
    run_recipe(
        "glpft",
        base=str(tiny_base),
        data=rows_dir,
        out=tmp_path,
        config_for=tiny,
        only=["planner"],
        resume=True,
        overrides={"lr": 7e-4},  # this process's own setting, for the planner only
    )
    assert (tmp_path / "planner" / "adapter").is_dir() and not (tmp_path / "summarizer").exists()
    manifest = run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=tmp_path, config_for=tiny, resume=True)
    assert manifest is not None and set(manifest.roles) == {"planner", "caller", "summarizer"}
    # the manifest records what each stage was trained with, not the last invocation's settings
    assert manifest.hyperparameters["planner"]["lr"] == 7e-4
    assert manifest.hyperparameters["caller"]["lr"] == tiny("caller").lr != 7e-4
    assert _losses(tmp_path / "caller") == caller_losses  # finished stages are not trained again
    with pytest.raises(ValueError, match="no stage"):
        run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=tmp_path, config_for=tiny, only=["critic"])


def test_continue_from_trains_the_roles_further_and_keeps_stage1(
    tiny_base: Path, rows_dir: Path, tmp_path: Path
) -> None:
    """`continue_from` (a second epoch on one CPU): the roles start from the earlier run's adapters (the first loss
    of the continued planner is the earlier run's last-epoch level, not a fresh adapter's), stage 1 and `keep`
    stages are taken over byte for byte, the manifest keeps the earlier entries, and a packaged run works too."""
    from safetensors.torch import load_file

    from umi.train.package import package_run

    def one_epoch(stage: Stage) -> TrainConfig:
        return tiny(stage).model_copy(update={"epochs": 1})

    first = tmp_path / "first"
    run_recipe("glpft", base=str(tiny_base), data=rows_dir, out=first, config_for=tiny)
    second = tmp_path / "second"
    manifest = run_recipe(
        "glpft",
        base=str(tiny_base),
        data=rows_dir,
        out=second,
        config_for=one_epoch,
        continue_from=first,
        keep=["summarizer"],
    )
    assert manifest is not None and manifest.base == "stage1/merged"
    for kept in ("stage1", "summarizer"):
        a = load_file(str(first / kept / "adapter" / "adapter_model.safetensors"))
        b = load_file(str(second / kept / "adapter" / "adapter_model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert not (second / kept / "metrics.jsonl").exists()
        assert manifest.hyperparameters[kept]["adopted"] is True
    planner = manifest.hyperparameters["planner"]
    assert planner["init_adapter"] == str((first / "planner" / "adapter").resolve())
    assert planner["continued_from"]["steps"] == len(_losses(first / "planner"))
    fresh_first = _losses(first / "planner")[0]
    continued = _losses(second / "planner")
    assert continued[0] < 0.5 * fresh_first, (fresh_first, continued)  # it starts where the first run ended
    _generates(second / "manifest.json", "planner")

    glpft = functools.partial(run_recipe, "glpft", base=str(tiny_base), data=rows_dir, config_for=one_epoch)
    packaged = package_run(first, tmp_path / "pkg", base=str(tiny_base.resolve()))
    assert packaged.base_adapters == ["stage1"]
    third = glpft(
        out=tmp_path / "third", continue_from=tmp_path / "pkg", only=["caller"], keep=["planner", "summarizer"]
    )
    assert third is not None and set(third.roles) == {"planner", "caller", "summarizer"}
    # --fresh: the planner retrained anew on the earlier stage 1, the other roles kept
    fourth = glpft(
        out=tmp_path / "fourth", continue_from=first, only=["planner"], keep=["caller", "summarizer"], fresh=["planner"]
    )
    assert fourth is not None
    retrained = fourth.hyperparameters["planner"]
    assert retrained.get("init_adapter") is None and "continued_from" not in retrained
    assert retrained["replaced"]["steps"] == len(_losses(first / "planner"))
    assert _losses(tmp_path / "fourth" / "planner")[0] > 0.5 * fresh_first  # a new adapter, not the earlier one
    for wrong, message in (
        ({"fresh": ["planner"]}, "--fresh"),
        ({"continue_from": first, "fresh": ["stage1"]}, "--fresh"),
        ({"continue_from": first, "keep": ["planner"], "fresh": ["planner"]}, "choose one"),
    ):
        with pytest.raises(ValueError, match=message):
            glpft(out=tmp_path / "z", **wrong)
    with pytest.raises(ValueError, match="trained on"):
        run_recipe("glpft", base="embedded", data=rows_dir, out=tmp_path / "x", continue_from=first)
    with pytest.raises(ValueError, match="LoRA GLPFT"):
        run_recipe("single", base=str(tiny_base), data=rows_dir, out=tmp_path / "y", continue_from=first)


def test_api_name_weight_reaches_training(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    """`--api-name-weight` is recorded and changes the gradient: the same seed gives the same first (plain) loss
    and a different third one (the preset's warm-up makes the first step's learning rate 0)."""
    from typer.testing import CliRunner

    from umi.cli.main import app

    args = ["train", "single", "--base", str(tiny_base), "--data", str(rows_dir), "--max-steps", "3"]
    args += ["--max-length", "256", "--micro-batch", "2"]
    runner = CliRunner()
    for name, extra in (("plain", []), ("weighted", ["--api-name-weight", "8"])):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    manifest = load_manifest(tmp_path / "weighted")
    assert manifest.hyperparameters["stage1"]["api_name_weight"] == 8 and "--api-name-weight 8" in manifest.command
    plain, weighted = _losses(tmp_path / "plain" / "stage1"), _losses(tmp_path / "weighted" / "stage1")
    assert plain[0] == pytest.approx(weighted[0], rel=1e-6)
    assert abs(plain[2] - weighted[2]) > 1e-6


def test_packaged_multitask_run_keeps_one_adapter_for_its_roles(
    tiny_base: Path, rows_dir: Path, tmp_path: Path
) -> None:
    """A multi-task run's one adapter is packaged once and every role names it, so the roles load one file and
    share one prompt cache (`umi.models.build.share_caches`), instead of three identical copies."""
    from umi.train.package import package_run

    run = tmp_path / "run"
    run_recipe("multi-task", base=str(tiny_base), data=rows_dir, out=run, config_for=tiny)
    packaged = package_run(run, tmp_path / "pkg", base=str(tiny_base.resolve()))
    assert {r.adapter for r in packaged.roles.values()} == {"planner"} and set(packaged.roles) == {
        "planner",
        "caller",
        "summarizer",
    }
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["manifest.json", "planner"]
