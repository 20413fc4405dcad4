"""Training configuration as plain data: one `TrainConfig` per run, named presets, and the recipes' stages.

A preset is a function of the stage (stage 1, or a stage-2 role) because the paper's hyperparameters differ per
stage. The resolved `TrainConfig` of every run is written beside its checkpoints (`config.json`), so a run can be
repeated from its own folder.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Stage = Literal["stage1", "planner", "caller", "summarizer", "multitask"]
PRESETS: tuple[str, ...] = ("paper", "cpu-small", "cpu-epoch")
LORA_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainConfig(BaseModel):
    """Everything one training run needs besides its data and base model."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; caps `epochs` when set
    lr: float = 1e-5
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    micro_batch: int = 1  # rows per forward pass (per device)
    grad_accum: int = 1  # global batch = micro_batch × grad_accum × devices
    max_length: int = 4096
    max_grad_norm: float = 1.0
    seed: int = 42
    lora: bool = True
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: list[str] = list(LORA_TARGETS)
    # LoRA on the top fraction of the decoder layers only (None: all). The backward pass then stops at the lowest
    # adapted layer: at 0.5 it costs half (`benchmarks/train_throughput.py`, mode `top-half`).
    lora_top_fraction: float | None = None
    # Start from this LoRA adapter (trainable, its own rank and layers) instead of a fresh one: a further epoch of a
    # finished run (`umi train --continue-from`). Recorded in the run's config.json, so the chain is on file.
    init_adapter: str | None = None
    gradient_checkpointing: bool = False
    bf16: bool | None = None  # None: bf16 where it is fast (CUDA with bf16, AMX / AVX512-BF16 CPUs), fp32 elsewhere
    packing: bool = False
    # Prefix-shared packing (umi.train.prefix_pack): one trajectory's rows of a role in one sequence, exact.
    # A micro-batch is then one pack of at most `pack_tokens` tokens; `grad_accum` packs make an optimizer step.
    prefix_packing: bool = False
    pack_tokens: int = 4096
    lm_head_at_loss: bool = True  # project to the vocabulary only where a loss is taken
    # Loss weight of the target tokens that spell the API the row's step calls (1.0: plain token mean;
    # `umi.train.data.step_call_names`). The planner's decision is which API comes next; those few tokens are a
    # small share of a thought's mean loss.
    api_name_weight: float = 1.0
    # Weight of the token-level unlikelihood term against the previous call's API at the step's decision token
    # (0: off; `umi.train.data`). Aimed at the measured failure: trained roles call the previous API again.
    unlikelihood: float = 0.0
    # Weight of the name-ranking loss (0: off; `umi.train.name_rank`): the cross-entropy of the step's API among the
    # task's API names, each scored as a whole where the target first spells the step's API. Prefix packing only.
    name_rank: float = 0.0
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    group_by_length: bool = True
    compat: bool = False  # the reference's `system: ` input prefix
    save_every: int = 50  # optimizer steps between checkpoints
    keep_checkpoints: int = 1
    log_every: int = 1


def _paper(stage: Stage) -> TrainConfig:
    """The published GLPFT settings (§3 of the reference): 8 devices × 6 rows, bf16, checkpointing, 4,096 tokens.

    `micro_batch 6 × grad_accum 8` gives the global batch of 48 on one device; on 8 devices set `grad_accum 1`
    (`--grad-accum 1`) for the paper's 8 × 6 × 1. LoRA vs full fine-tuning is the caller's choice (`--full`).
    """
    common = {
        "micro_batch": 6,
        "grad_accum": 8,
        "max_length": 4096,
        "scheduler": "cosine",
        "gradient_checkpointing": True,
        "save_every": 500,
    }
    if stage in ("stage1", "multitask"):
        return TrainConfig(epochs=2, lr=5e-5, warmup_ratio=0.4, **common)  # type: ignore[arg-type]
    if stage == "summarizer":
        return TrainConfig(epochs=2, lr=1e-5, warmup_ratio=0.4, weight_decay=0.01, **common)  # type: ignore[arg-type]
    return TrainConfig(epochs=1, lr=1e-5, warmup_ratio=0.2, weight_decay=0.01, **common)  # type: ignore[arg-type]


def _cpu_small(stage: Stage) -> TrainConfig:
    """Fits a 2-core CPU: 768 tokens, 4 rows per optimizer step, LoRA at a LoRA-sized learning rate, ≤60 steps.

    LoRA wants roughly 10× the full-fine-tuning rate; stage 2 keeps the paper's ratio (lower than stage 1).
    """
    common = {"micro_batch": 2, "grad_accum": 2, "max_length": 768, "max_steps": 60, "save_every": 10}
    if stage in ("stage1", "multitask"):
        return TrainConfig(epochs=2, lr=4e-4, warmup_ratio=0.1, **common)  # type: ignore[arg-type]
    if stage == "summarizer":
        return TrainConfig(epochs=2, lr=2e-4, warmup_ratio=0.1, weight_decay=0.01, **common)  # type: ignore[arg-type]
    return TrainConfig(epochs=1, lr=2e-4, warmup_ratio=0.1, weight_decay=0.01, **common)  # type: ignore[arg-type]


def _cpu_epoch(stage: Stage) -> TrainConfig:
    """One full epoch of every row set on one 2-core CPU: budgeted rows (no truncation: `max_length` only guards),
    exact prefix-shared packs of at most 3,072 tokens, the LM head only at loss positions, bf16 autocast where the CPU
    runs it fast (`umi.models.hf.bf16_is_fast`), 4 packs
    per optimizer step (about 10 rows), LoRA r 8 at LoRA-sized rates on the upper half of the layers (stage 1) and
    the upper quarter (stage 2, which only specialises the stage-1 model), stage 2's rate below stage 1's as in the
    paper."""
    common = {
        "epochs": 1,
        "micro_batch": 1,
        "grad_accum": 4,
        "max_length": 8192,
        "prefix_packing": True,
        "pack_tokens": 3072,
        "save_every": 5,
        "threads": 2,
        "warmup_ratio": 0.05,
        "bf16": None,  # autocast where fast: AMX / AVX512-BF16 CPUs about 3x faster than fp32, AVX2 CPUs 8x slower
        "lora_top_fraction": 0.5,  # the upper half of the layers: the backward pass stops halfway (about 2x)
    }
    if stage in ("stage1", "multitask"):
        return TrainConfig(lr=4e-4, **common)  # type: ignore[arg-type]
    # Stage 2 specialises the stage-1 model per role: LoRA on the upper quarter, whose backward pass is 1.6x
    # cheaper again than the upper half's (`train_throughput.py`, mode `top-quarter`).
    roles = {**common, "lora_top_fraction": 0.25}
    return TrainConfig(lr=3e-4, weight_decay=0.01, **roles)  # type: ignore[arg-type]


def preset(name: str, stage: Stage) -> TrainConfig:
    """The named preset's configuration for one stage."""
    if name == "paper":
        return _paper(stage)
    if name == "cpu-small":
        return _cpu_small(stage)
    if name == "cpu-epoch":
        return _cpu_epoch(stage)
    raise ValueError(f"unknown preset {name!r}; use one of {list(PRESETS)}")
