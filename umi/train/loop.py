"""One training run: a short loop written out in full on `accelerate`.

Why a hand-written loop rather than TRL's SFTTrainer or the transformers Trainer: the two things this issue must
get exactly right are the loss mask and resuming with the same data order, and both are simplest to make certain
when nothing is hidden in callbacks. The loss mask is the one built in `umi.train.data` (no collator guessing the
prompt/target boundary from a response template). The data order is a pure function of (seed, epoch)
(`plan_epoch`), so a resumed run recomputes the schedule and starts at the first micro-batch of the step after its
checkpoint; the checkpoint holds the trainable weights, the optimizer, the scheduler and every RNG state (python,
torch, CUDA), so the resumed losses equal an uninterrupted run's (`tests/train/test_resume.py`). `accelerate` keeps
the same code on one CPU, DDP, DeepSpeed ZeRO-3 and FSDP (`configs/accelerate/`).

The loss of a step is the token-mean cross-entropy over every target token of its global batch (summed over the
micro-batches, divided once by the step's target-token count), not a mean of per-micro-batch means.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from umi.models.hf import bf16_is_fast
from umi.schema import Row
from umi.train.checkpoint import checkpoints, load_checkpoint, read_metrics, save_checkpoint
from umi.train.config import TrainConfig
from umi.train.data import IGNORE, Encoded, collate, collate_packed, encode_rows, pack_plan, plan_epoch
from umi.train.model import load_model, load_tokenizer, prepare_model, save_result
from umi.train.name_rank import rank_losses
from umi.train.prefix_pack import Pack, collate_pack, order_packs, plan_packs, use_pack_attention

console = Console(stderr=True, soft_wrap=True)


@dataclass
class TrainResult:
    """What a run produced: the adapter or model folder, and its per-step losses (from `metrics.jsonl`)."""

    out: Path
    artifact: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    prompt_truncated: int = 0


def _seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def schedule(
    encoded: Sequence[Encoded],
    config: TrainConfig,
    world: int = 1,
    rank: int = 0,
    rows: Sequence[Row] | None = None,
) -> list[Any]:
    """Every micro-batch of the run for this process (row indices, bins of row indices when packing, or one
    `Pack` under prefix packing), whole optimizer steps only: a trailing part-step is dropped."""
    lengths = [len(e.input_ids) for e in encoded]
    plans: list[list[Any]] = []
    packs = plan_packs(rows, encoded, config.pack_tokens) if config.prefix_packing and rows is not None else None
    for epoch in range(max(1, math.ceil(config.epochs))):
        if packs is not None:
            plans.append(order_packs(packs, seed=config.seed, epoch=epoch))
        elif config.packing:
            plans.append(list(pack_plan(lengths, config.max_length, config.micro_batch, seed=config.seed, epoch=epoch)))
        else:
            plans.append(
                list(
                    plan_epoch(
                        lengths,
                        config.micro_batch,
                        seed=config.seed,
                        epoch=epoch,
                        group_by_length=config.group_by_length,
                    )
                )
            )
    per_epoch = len(plans[0])
    flat = [b for plan in plans for b in plan][: int(round(config.epochs * per_epoch))]
    unit = world * config.grad_accum
    flat = flat[: (len(flat) // unit) * unit]
    mine = flat[rank::world]
    if config.max_steps is not None:
        mine = mine[: config.max_steps * config.grad_accum]
    return mine


def _batch(encoded: Sequence[Encoded], micro: Any, pad_id: int, packing: bool) -> dict[str, torch.Tensor]:
    if isinstance(micro, Pack):
        return collate_pack(micro, encoded)
    if packing:
        batch = collate_packed([[encoded[i] for i in b] for b in micro], pad_id)
    else:
        batch = collate([encoded[i] for i in micro], pad_id)
    labels = batch.pop("labels")
    batch["shifted"] = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE)], dim=1)
    if "weights" in batch:
        w = batch.pop("weights")
        batch["shifted_weights"] = torch.cat([w[:, 1:], torch.ones_like(w[:, :1])], dim=1)
    if "unlikely" in batch:
        u = batch.pop("unlikely")
        batch["shifted_unlikely"] = torch.cat([u[:, 1:], torch.full_like(u[:, :1], IGNORE)], dim=1)
    return batch


def _target_count(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["targets"].numel()) if "targets" in batch else int((batch["shifted"] != IGNORE).sum())


class TokenLosses(NamedTuple):
    """Per loss position (1D, aligned): the cross-entropy, the loss weight (None: all 1) and the unlikelihood
    term `-log(1 - p(unlikely token))` (0 where a position has none; None when the batch has none); per name-ranking
    group the ranking cross-entropy and how many groups rank the gold name first (None / 0 when the batch has none)."""

    ce: torch.Tensor
    weights: torch.Tensor | None
    unlikely: torch.Tensor | None
    rank: torch.Tensor | None = None
    rank_hits: int = 0


def _unlikelihood(logits: torch.Tensor, unlikely: torch.Tensor | None) -> torch.Tensor | None:
    if unlikely is None:
        return None
    has = unlikely != IGNORE
    p = torch.softmax(logits, dim=-1).gather(-1, unlikely.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(has, -torch.log1p(-p.clamp(max=1 - 1e-6)), torch.zeros_like(p))


def token_losses(model: Any, batch: dict[str, torch.Tensor], *, lm_head_at_loss: bool = True) -> TokenLosses:
    """The next-token cross-entropy at every loss position of a batch (a pack from `collate_pack`, or rows with
    `shifted` labels), 1D, with each position's loss weight and unlikelihood term where the batch carries them.
    With `lm_head_at_loss` the vocabulary projection runs only at positions that carry a loss (`logits_to_keep`
    with those positions), which gives the same loss for a fraction of the LM-head compute."""
    batch = dict(batch)
    if "targets" in batch:
        positions, targets = batch.pop("loss_positions"), batch.pop("targets")
        weights, unlikely = batch.pop("weights", None), batch.pop("unlikely", None)
        rank = {k: batch.pop(k) for k in ("rank_at", "rank_tokens", "rank_group", "rank_candidate") if k in batch}
        keep = torch.cat([positions, rank["rank_at"]]) if rank else positions
        if lm_head_at_loss:
            logits = model(**batch, use_cache=False, logits_to_keep=keep).logits[0].float()
        else:
            logits = model(**batch, use_cache=False).logits[0, keep].float()
        n = len(positions)
        ce = torch.nn.functional.cross_entropy(logits[:n], targets, reduction="none")
        losses = TokenLosses(ce, weights, _unlikelihood(logits[:n], unlikely))
        if not rank:
            return losses
        lp = torch.log_softmax(logits[n:], -1).gather(-1, rank["rank_tokens"][:, None]).squeeze(-1)
        group_ce, hits = rank_losses(lp, rank["rank_group"], rank["rank_candidate"])
        return losses._replace(rank=group_ce, rank_hits=hits)
    shifted = batch.pop("shifted")
    shifted_weights = batch.pop("shifted_weights", None)
    shifted_unlikely = batch.pop("shifted_unlikely", None)
    if lm_head_at_loss:
        positions = (shifted != IGNORE).any(0).nonzero().squeeze(-1)
        logits = model(**batch, use_cache=False, logits_to_keep=positions).logits.float()
        labels = shifted[:, positions]
        w = None if shifted_weights is None else shifted_weights[:, positions]
        u = None if shifted_unlikely is None else shifted_unlikely[:, positions]
    else:
        logits, labels = model(**batch, use_cache=False).logits.float(), shifted
        w, u = shifted_weights, shifted_unlikely
    keep = labels.reshape(-1) != IGNORE
    flat = logits.reshape(-1, logits.size(-1))
    ce = torch.nn.functional.cross_entropy(flat, labels.reshape(-1), ignore_index=IGNORE, reduction="none")
    ul = None if u is None else _unlikelihood(flat[keep], u.reshape(-1)[keep])
    return TokenLosses(ce[keep], None if w is None else w.reshape(-1)[keep], ul)


def token_loss_sum(model: Any, batch: dict[str, torch.Tensor], *, lm_head_at_loss: bool = True) -> torch.Tensor:
    """The summed next-token cross-entropy of a batch (`token_losses`), unweighted."""
    return token_losses(model, batch, lm_head_at_loss=lm_head_at_loss)[0].sum()


def _optimizer(model: Any, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def finished_run(out: Path) -> TrainResult:
    """What a finished run folder holds (its `done.json` and `metrics.jsonl`): trained here or adopted."""
    done = json.loads((out / "done.json").read_text())
    losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl")]
    return TrainResult(out, out / done["artifact"], done["steps"], losses, done["seconds"])


# ---- the run -------------------------------------------------------------------------------------------------


def train(
    rows: Sequence[Row],
    base: str,
    out: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    label: str = "train",
    emphasis: Sequence[Sequence[str]] | None = None,
) -> TrainResult:
    """Fine-tune `base` on `rows` into `out` (`out/adapter` or `out/model`), with checkpoints under
    `out/checkpoints`, the resolved config in `out/config.json` and per-step metrics in `out/metrics.jsonl`.

    `resume=True` continues from the last checkpoint (or returns at once if the run already finished); without it
    a folder that already holds checkpoints is refused, so two runs never mix. `on_step(step, loss)` is called after
    each optimizer step and its checkpoint (tests use it to kill a run). `emphasis[i]`: the API names weighted by
    `config.api_name_weight` in row i's target (`umi.train.data.step_call_names`).
    """
    from accelerate import Accelerator
    from transformers import get_scheduler

    out = Path(out)
    done_file = out / "done.json"
    if done_file.exists():
        if not resume:
            raise FileExistsError(f"{out}: this run already finished; use a new --out (or --resume to reuse it)")
        return finished_run(out)
    if checkpoints(out) and not resume:
        raise FileExistsError(f"{out}: holds checkpoints of an earlier run; pass --resume or use a new --out")
    if config.name_rank and not config.prefix_packing:
        raise ValueError("name_rank scores candidates as branches of a prefix pack: use prefix_packing (cpu-epoch)")
    bf16 = config.bf16 if config.bf16 is not None else bf16_is_fast("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no", gradient_accumulation_steps=config.grad_accum)
    main = accelerator.is_main_process
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"base": base, **config.model_dump()}, indent=2))

    _seed_all(config.seed)
    tokenizer = load_tokenizer(base)
    model = prepare_model(load_model(base), config)
    if config.prefix_packing:
        use_pack_attention(model)  # each pack segment on its own instead of one masked T x T attention
    encoded = encode_rows(
        rows,
        tokenizer,
        config.max_length,
        compat=config.compat,
        api_name_weight=config.api_name_weight,
        emphasis=emphasis,
        unlikelihood=bool(config.unlikelihood),
        name_rank=bool(config.name_rank),
    )
    if config.threads:
        torch.set_num_threads(config.threads)
    plan = schedule(encoded, config, accelerator.num_processes, accelerator.process_index, rows=rows)
    steps = len(plan) // config.grad_accum
    if steps == 0:
        raise ValueError(f"{len(rows)} rows make no whole optimizer step of {config.micro_batch}×{config.grad_accum}")
    optimizer = _optimizer(model, config)
    scheduler = get_scheduler(
        config.scheduler, optimizer, num_warmup_steps=math.ceil(config.warmup_ratio * steps), num_training_steps=steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    start = 0
    ckpts = checkpoints(out)
    if resume and ckpts:
        start = load_checkpoint(ckpts[-1], accelerator, model, optimizer, scheduler)
        console.print(f"[{label}] resumed from {ckpts[-1]} at step {start}/{steps}")
    history = read_metrics(out / "metrics.jsonl", upto=start)
    if main:
        (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in history))
    pad_id = int(tokenizer.pad_token_id)
    model.train()
    t0 = time.perf_counter()
    before = history[-1]["elapsed_s"] if history else 0.0  # training seconds of the run's earlier invocations
    seen_tokens = seen_targets = 0
    progress = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  {task.fields[tps]:.0f} tok/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not (main and console.is_terminal),
    )
    with progress:
        task = progress.add_task(label, total=steps, completed=start, loss=float("nan"), tps=0.0)
        for step in range(start, steps):
            micro = [
                _batch(encoded, m, pad_id, config.packing)
                for m in plan[step * config.grad_accum :][: config.grad_accum]
            ]
            n_target = sum(_target_count(b) for b in micro)
            loss_sum = rank_sum = 0.0
            rank_groups = rank_hits = 0
            for batch in micro:
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                tokens_in = int(batch["input_ids"].numel()) if "targets" in batch else None
                with accelerator.accumulate(model):
                    per_token, weights, unlikely, rank, hits = token_losses(
                        model, batch, lm_head_at_loss=config.lm_head_at_loss
                    )
                    ce = per_token.sum()  # logged unweighted, so losses compare across runs
                    objective = ce if weights is None else (per_token * weights).sum()
                    if unlikely is not None and config.unlikelihood:
                        objective = objective + config.unlikelihood * unlikely.sum()
                    if rank is not None:
                        objective = objective + config.name_rank * rank.sum()
                        rank_sum += float(rank.detach().sum())
                        rank_groups, rank_hits = rank_groups + len(rank), rank_hits + hits
                    # accelerate divides by grad_accum in backward; scaling back gives the step's token mean.
                    accelerator.backward(objective / max(n_target, 1) * config.grad_accum)
                    if accelerator.sync_gradients and config.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                loss_sum += float(ce.detach())
                if tokens_in is not None:
                    seen_tokens += tokens_in
                else:
                    seen_tokens += int(batch.get("attention_mask", torch.ones_like(batch["input_ids"])).sum())
            seen_targets += n_target
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            loss = loss_sum / max(n_target, 1)
            elapsed = time.perf_counter() - t0
            record = {
                "step": step + 1,
                "loss": loss,
                "lr": lr,
                "target_tokens": n_target,
                "tokens_per_s": seen_tokens / elapsed,
                "target_tokens_per_s": seen_targets / elapsed,
                "elapsed_s": before + elapsed,
            }
            if rank_groups:  # name ranking: mean cross-entropy and how often gold ranked first (teacher-forced)
                record |= {"name_rank_loss": rank_sum / rank_groups, "name_rank_acc": rank_hits / rank_groups}
            history.append(record)
            if main:
                with (out / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps(record) + "\n")
                progress.update(task, advance=1, loss=loss, tps=record["tokens_per_s"])
                if not console.is_terminal and (step + 1) % config.log_every == 0:
                    eta = elapsed / (step + 1 - start) * (steps - step - 1)
                    console.print(
                        f"[{label}] step {step + 1}/{steps} loss {loss:.4f} {record['tokens_per_s']:.0f} tok/s "
                        f"eta {eta / 60:.1f} min",
                        highlight=False,
                    )
            if (step + 1) % config.save_every == 0 and step + 1 < steps:  # every rank: sharded states are collective
                save_checkpoint(out, step + 1, accelerator, model, optimizer, scheduler, config.keep_checkpoints)
            if on_step is not None:
                on_step(step + 1, loss)
    seconds = before + time.perf_counter() - t0
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    artifact = out / ("adapter" if config.lora else "model")
    state_dict = accelerator.get_state_dict(model)  # gathered from the shards under ZeRO-3 / FSDP
    if main:
        artifact = save_result(unwrapped, tokenizer, out, state_dict=state_dict)
        truncated = sum(e.prompt_truncated for e in encoded)
        done_file.write_text(
            json.dumps({"artifact": artifact.name, "steps": steps, "seconds": seconds, "prompt_truncated": truncated})
        )
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return TrainResult(out, artifact, steps, [m["loss"] for m in history], seconds)
