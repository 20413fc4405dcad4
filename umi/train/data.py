"""Rows → token ids with a loss mask, length-grouped batch plans, dynamic padding and packing.

Token layout (the wire format's, from `umi.format`): `input_ids = encode(prompt) + encode(target + END_OF_TURN)`
with `prompt = row.input` (`TRAIN_SYSTEM_PREFIX + row.input` under `compat`, the reference's training-only defect).
Prompt and target are tokenized separately and their ids concatenated, so the loss boundary is exact, never a
guess from character offsets. Only the target tokens and the end-of-turn carry labels; the prompt is -100.
If the tokenizer's EOS is the literal `</s>` it already ends the target; otherwise the EOS id is appended as well,
so the model learns to stop both by the wire format's `</s>` and by its own EOS.

Too long: the prompt loses tokens from its LEFT (its beginning: the oldest part of the tool documents; a leading
BOS is kept), the target is kept whole. A target longer than `max_length - max_length // 4` is itself cut at its
right end (it loses its end-of-turn); such rows are counted in `Encoded.target_truncated`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from umi.format import END_OF_TURN, TRAIN_SYSTEM_PREFIX
from umi.schema import Row

IGNORE = -100


@dataclass
class Encoded:
    """One row as ids. `labels` is -100 over the prompt."""

    input_ids: list[int]
    labels: list[int]
    prompt_truncated: bool = False
    target_truncated: bool = False

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def target_ids(tokenizer: Any, target: str) -> list[int]:
    """The target's ids: `target + END_OF_TURN`, plus the tokenizer's EOS when that is not `END_OF_TURN`."""
    ids: list[int] = tokenizer(target + END_OF_TURN, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token != END_OF_TURN and tokenizer.eos_token_id is not None:
        ids = [*ids, int(tokenizer.eos_token_id)]
    return ids


def encode_row(row: Row, tokenizer: Any, max_length: int, *, compat: bool = False) -> Encoded:
    """Tokenize one row (see the module docstring for the layout and the truncation rule)."""
    prompt_text = (TRAIN_SYSTEM_PREFIX if compat else "") + row.input
    prompt: list[int] = tokenizer(prompt_text, add_special_tokens=True)["input_ids"]
    target = target_ids(tokenizer, row.target)
    prompt_cut = target_cut = False
    if len(prompt) + len(target) > max_length:
        target_budget = max_length - max_length // 4
        if len(target) > target_budget:
            target, target_cut = target[:target_budget], True
        keep = max_length - len(target)
        bos = tokenizer.bos_token_id
        head = [prompt[0]] if bos is not None and prompt and prompt[0] == bos else []
        if len(prompt) > keep:
            prompt = head + prompt[len(prompt) - (keep - len(head)) :] if keep > len(head) else head[:keep]
            prompt_cut = True
    return Encoded(prompt + target, [IGNORE] * len(prompt) + list(target), prompt_cut, target_cut)


def encode_rows(rows: Sequence[Row], tokenizer: Any, max_length: int, *, compat: bool = False) -> list[Encoded]:
    return [encode_row(r, tokenizer, max_length, compat=compat) for r in rows]


def plan_epoch(
    lengths: Sequence[int], micro_batch: int, *, seed: int, epoch: int, group_by_length: bool = True
) -> list[list[int]]:
    """The micro-batches of one epoch, a pure function of (lengths, seed, epoch) so a resumed run sees the same order.

    Length grouping (as HF's LengthGroupedSampler): shuffle, cut into mega-batches of 32 micro-batches, sort each
    by length so rows of a micro-batch have similar lengths (little padding), then shuffle the micro-batches.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        mega = micro_batch * 32
        order = [i for s in range(0, len(order), mega) for i in sorted(order[s : s + mega], key=lambda j: -lengths[j])]
    batches = [order[s : s + micro_batch] for s in range(0, len(order), micro_batch)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def pack_plan(
    lengths: Sequence[int], max_length: int, micro_batch: int, *, seed: int, epoch: int
) -> list[list[list[int]]]:
    """Packing: rows grouped into bins of at most `max_length` tokens (first fit, shuffled order); a micro-batch is
    `micro_batch` bins. Returns micro-batches of bins of row indices."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(max_length - lengths[i])
    return [bins[s : s + micro_batch] for s in range(0, len(bins), micro_batch)]


def collate(examples: Sequence[Encoded], pad_id: int, *, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Dynamic padding: right-pad to the longest row of the batch (or to `pad_to`, for the fixed-length baseline)."""
    width = pad_to or max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for r, e in enumerate(examples):
        n = len(e.input_ids)
        ids[r, :n] = torch.tensor(e.input_ids)
        labels[r, :n] = torch.tensor(e.labels)
        mask[r, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def collate_packed(bins: Sequence[Sequence[Encoded]], pad_id: int) -> dict[str, torch.Tensor]:
    """Packed rows: sequences of a bin concatenated, `position_ids` restarting at 0 for each, no attention mask.

    With no `attention_mask` and no KV cache (`use_cache=False`, as the training loop calls the model),
    transformers (≥4.53, `masking_utils.find_packed_sequence_indices`) detects the position resets and builds a
    block-diagonal causal mask for the sdpa and eager kernels (and varlen for flash-attention), so packed sequences
    never attend to each other, on CPU too (`tests/train/test_data.py` checks the logits equal unpacked ones).
    Padding gets its own position run, so it is a separate block, and -100 labels.
    """
    rows = [[e for e in b] for b in bins]
    width = max(sum(len(e.input_ids) for e in b) for b in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for r, b in enumerate(rows):
        at = 0
        for e in b:
            n = len(e.input_ids)
            ids[r, at : at + n] = torch.tensor(e.input_ids)
            labels[r, at : at + n] = torch.tensor(e.labels)
            pos[r, at : at + n] = torch.arange(n)
            at += n
        pos[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "labels": labels, "position_ids": pos}
