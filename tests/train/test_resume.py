"""A run killed after a checkpoint and resumed gives the same next losses as one that was never interrupted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.data import load_rows
from umi.train.config import TrainConfig
from umi.train.data import encode_rows
from umi.train.loop import _batch, token_losses, train
from umi.train.model import load_model, load_tokenizer, prepare_model


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
    """2 micro-batches of 1 row accumulated = 1 micro-batch of 2 rows: the loss is the step's token mean.

    The gradients are compared directly (equal to float rounding); the runs' later losses only loosely, because
    Adam turns rounding-sized differences of near-zero gradient entries into whole-step sign flips (seen here: the
    same first loss, later ones 1e-3 apart, with gradients equal to 1e-6)."""
    rows = load_rows(rows_dir / "planner.json")
    common = {"epochs": 1, "lr": 1e-2, "max_length": 320, "lora_dropout": 0.0, "group_by_length": False}
    a = train(rows, str(tiny_base), tmp_path / "a", TrainConfig(micro_batch=1, grad_accum=2, **common))
    b = train(rows, str(tiny_base), tmp_path / "b", TrainConfig(micro_batch=2, grad_accum=1, **common))
    assert a.steps == b.steps >= 3
    assert a.losses[0] == pytest.approx(b.losses[0], abs=1e-5, rel=0)
    assert a.losses == pytest.approx(b.losses, abs=3e-2, rel=0)

    tok = load_tokenizer(str(tiny_base))
    enc = encode_rows(rows[:2], tok, 320)
    model = prepare_model(load_model(str(tiny_base)), TrainConfig(lora_dropout=0.0))
    n = sum(e.target_tokens for e in enc)
    for i in (0, 1):  # the loop's objective: each micro-batch's summed loss over the step's target tokens
        token_losses(model, _batch(enc, [i], int(tok.pad_token_id), False)).ce.sum().div(n).backward()
    accumulated = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    token_losses(model, _batch(enc, [0, 1], int(tok.pad_token_id), False)).ce.sum().div(n).backward()
    for k, p in model.named_parameters():
        if p.grad is not None:
            assert float((p.grad - accumulated[k]).norm() / (accumulated[k].norm() + 1e-12)) < 1e-4, k
