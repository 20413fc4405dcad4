"""Checkpoints that make `--resume` exact: trainable weights, optimizer, scheduler, every RNG state, the step.

On one device or plain DDP only the trainable tensors are written (a LoRA checkpoint is a few MB, not the whole
base). Under DeepSpeed ZeRO-3 or FSDP the weights and optimizer are sharded across ranks, so `accelerator.save_state`
/ `load_state` (collective, every rank) write and read the shards; the scheduler and RNG states are added by umi.
A checkpoint folder is written under a temporary name and renamed when complete, so a kill mid-write leaves the
previous checkpoint as the latest.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch


def _sharded(accelerator: Any) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of a run folder, oldest first."""
    done = [p for p in (out / "checkpoints").glob("step-*") if (p / "state.json").exists()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(
    out: Path, step: int, accelerator: Any, model: Any, optimizer: Any, scheduler: Any, keep: int
) -> None:
    """Write `out/checkpoints/step-NNNNNN` and keep the newest `keep` checkpoints. Call on every rank."""
    from safetensors.torch import save_file

    final = out / "checkpoints" / f"step-{step:06d}"
    tmp = final.with_name(final.name + ".tmp")
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if _sharded(accelerator):
        accelerator.save_state(str(tmp / "sharded"))
    elif main:
        unwrapped = accelerator.unwrap_model(model)
        trainable = {n: p.detach().cpu().contiguous() for n, p in unwrapped.named_parameters() if p.requires_grad}
        save_file(trainable, str(tmp / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if main:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        rng: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_checkpoint(ckpt: Path, accelerator: Any, model: Any, optimizer: Any, scheduler: Any) -> int:
    """Restore everything `save_checkpoint` wrote; returns the step to continue after."""
    from safetensors.torch import load_file

    if _sharded(accelerator):
        accelerator.load_state(str(ckpt / "sharded"))
    else:
        unwrapped = accelerator.unwrap_model(model)
        trainable = load_file(str(ckpt / "trainable.safetensors"))
        missing = {n for n, p in unwrapped.named_parameters() if p.requires_grad} - set(trainable)
        if missing:
            raise ValueError(f"{ckpt}: checkpoint lacks {len(missing)} trainable tensors (e.g. {sorted(missing)[0]})")
        unwrapped.load_state_dict(trainable, strict=False)
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
    rng = torch.load(ckpt / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(json.loads((ckpt / "state.json").read_text())["step"])


def read_metrics(path: Path, upto: int | None = None) -> list[dict[str, Any]]:
    """The run's `metrics.jsonl` records (up to step `upto`, which a resumed run keeps)."""
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [m for m in lines if upto is None or m["step"] <= upto]
