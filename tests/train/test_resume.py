"""A run killed after a checkpoint and resumed gives the same next losses as one that was never interrupted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.data import load_rows
from umi.train.config import TrainConfig
from umi.train.loop import train


class Killed(RuntimeError):
    pass


@pytest.mark.parametrize("packing", [False, True])
def test_resume_matches_an_uninterrupted_run(packing: bool, tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    rows = load_rows(rows_dir / "multitask.json")
    # Dropout on, grad accumulation, two epochs, a warmup + cosine schedule: every piece of state matters.
    config = TrainConfig(
        epochs=2,
        lr=5e-3,
        warmup_ratio=0.3,
        micro_batch=2,
        grad_accum=2,
        max_length=320,
        save_every=2,
        lora_dropout=0.1,
        packing=packing,
    )
    whole = train(rows, str(tiny_base), tmp_path / "whole", config)

    def kill(step: int, loss: float) -> None:
        if step == 5:  # one step past the checkpoint at step 4: that step's work is lost, as in a real kill
            raise Killed

    with pytest.raises(Killed):
        train(rows, str(tiny_base), tmp_path / "killed", config, on_step=kill)
    assert (tmp_path / "killed" / "checkpoints" / "step-000004" / "state.json").exists()
    with pytest.raises(FileExistsError):
        train(rows, str(tiny_base), tmp_path / "killed", config)
    resumed = train(rows, str(tiny_base), tmp_path / "killed", config, resume=True)
    assert whole.steps == resumed.steps >= 6
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-6, rel=0)
    steps = [json.loads(x)["step"] for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, whole.steps + 1))


def test_gradient_accumulation_equals_a_bigger_batch(tiny_base: Path, rows_dir: Path, tmp_path: Path) -> None:
    """2 micro-batches of 1 row accumulated = 1 micro-batch of 2 rows: the loss is the step's token mean."""
    rows = load_rows(rows_dir / "planner.json")
    common = {"epochs": 1, "lr": 1e-2, "max_length": 320, "lora_dropout": 0.0, "group_by_length": False}
    a = train(rows, str(tiny_base), tmp_path / "a", TrainConfig(micro_batch=1, grad_accum=2, **common))
    b = train(rows, str(tiny_base), tmp_path / "b", TrainConfig(micro_batch=2, grad_accum=1, **common))
    assert a.steps == b.steps >= 3
    assert a.losses == pytest.approx(b.losses, abs=1e-4, rel=0)
