"""Rows → token ids with a loss mask, length-grouped batch plans, dynamic padding and packing.

Token layout (the wire format's, from `umi.format`): `input_ids = encode(prompt) + encode(target + END_OF_TURN)`
with `prompt = row.input` (`TRAIN_SYSTEM_PREFIX + row.input` under `compat`, the reference's training-only defect).
Prompt and target are tokenized separately and their ids concatenated, so the loss boundary is exact, never a
guess from character offsets. Only the target tokens and the end-of-turn carry labels; the prompt is -100.
If the tokenizer's EOS is the literal `</s>` it already ends the target; otherwise the EOS id is appended as well,
so the model learns to stop both by the wire format's `</s>` and by its own EOS.

API-name emphasis (`TrainConfig.api_name_weight`, off at 1.0): the target tokens that spell the API its step calls
(`step_call_names`) get that weight in the loss. The planner's one decision is which API comes next, and in a
100-token thought those few tokens are a small share of the mean loss; the measured failure is a planner whose
thought names the previous call's API again (29 of 53 later call steps of the 100-step subset, gold 10).
Only the step's own call is weighted, not every API name: thoughts also name earlier calls ("the previous call to
X failed"), and weighting those would teach the copying that fails.

Unlikelihood against the previous call (`TrainConfig.unlikelihood`, off at 0): where a row's step calls an API other
than the history's last call, the target's first spelling of the step's API has one *decision token*: the first
token at which the text would differ had it named the previous call's API instead. There the loss adds
`-log(1 - p(previous call's token))` (Welleck et al. 2019, token-level unlikelihood), aimed at the measured failure
itself — the model's probability of writing the previous API at the point where gold names another. Steps whose
gold repeats the previous API get no such term.

Too long: the prompt loses tokens from its LEFT (its beginning: the oldest part of the tool documents; a leading
BOS is kept), the target is kept whole. A target longer than `max_length - max_length // 4` is itself cut at its
right end (it loses its end-of-turn); such rows are counted in `Encoded.target_truncated`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from umi.format import END_OF_TURN, TRAIN_SYSTEM_PREFIX, parse_action
from umi.format.docs import tool_names
from umi.schema import Row
from umi.train.name_rank import NameChoice, name_choice

IGNORE = -100


@dataclass
class Encoded:
    """One row as ids. `labels` is -100 over the prompt."""

    input_ids: list[int]
    labels: list[int]
    prompt_truncated: bool = False
    target_truncated: bool = False
    #: The loss weight of each position (aligned with `labels`; None: all 1.0).
    weights: list[float] | None = None
    #: Aligned with `labels`: at a decision token the token whose probability the unlikelihood term pushes down
    #: (the previous call's spelling), -100 elsewhere; None: no such term in this row.
    unlikely: list[int] | None = None
    #: The row's name-ranking group (`umi.train.name_rank`; None: no ranking term in this row).
    choice: NameChoice | None = None

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def target_ids(tokenizer: Any, target: str) -> list[int]:
    """The target's ids: `target + END_OF_TURN`, plus the tokenizer's EOS when that is not `END_OF_TURN`."""
    ids: list[int] = tokenizer(target + END_OF_TURN, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token != END_OF_TURN and tokenizer.eos_token_id is not None:
        ids = [*ids, int(tokenizer.eos_token_id)]
    return ids


def step_call_names(rows: Sequence[Row], caller_rows: Sequence[Row]) -> list[list[str]]:
    """The API each row's step calls: the row's own `Action:` (caller and backbone rows), or, for a planner row, the
    action of the caller row that follows it (same tools, its history = the planner row's history + this thought).
    Empty for steps that call nothing (conclusion, give up)."""
    follows: dict[str, str] = {}
    for c in caller_rows:
        action, _ = parse_action(c.target)
        if action and c.history and c.history[-1].get("from") == "assistant":
            follows[_step_key(c.tools, c.history[:-1], c.history[-1].get("value", ""))] = action
    out: list[list[str]] = []
    for r in rows:
        action, _ = parse_action(r.target)
        action = action or follows.get(_step_key(r.tools, r.history, r.target))
        out.append([action] if action else [])
    return out


def previous_call_name(history: Sequence[dict[str, Any]]) -> str | None:
    """The API of the history's last call (its last `caller` turn), or None before the first call."""
    for turn in reversed(history):
        if turn.get("from") == "caller":
            action, _ = parse_action(turn.get("value", ""))
            if action:
                return action
    return None


def unlikely_tokens(tokenizer: Any, target: str, name: str, previous: str) -> list[int]:
    """Aligned with the tokens of `target + END_OF_TURN` (as `target_ids` tokenizes it, before any EOS it appends):
    the previous call's token at the decision token of `name`'s first occurrence, -100 elsewhere; empty when the
    target does not spell `name`, when `previous` is `name`, or when the two spellings tokenize alike."""
    at = target.find(name) if name else -1
    if at < 0 or not previous or previous == name:
        return []
    gold = tokenizer(target + END_OF_TURN, add_special_tokens=False)["input_ids"]
    other = tokenizer(target[:at] + previous + target[at + len(name) :] + END_OF_TURN, add_special_tokens=False)[
        "input_ids"
    ]
    k = next((i for i, (a, b) in enumerate(zip(gold, other, strict=False)) if a != b), None)
    if k is None:
        return []
    out = [IGNORE] * len(gold)
    out[k] = int(other[k])
    return out


def _step_key(tools: Any, history: Any, thought: str) -> str:
    return json.dumps([tools, history, thought], sort_keys=True)


def api_name_weights(tokenizer: Any, target: str, names: Sequence[str], weight: float) -> list[float]:
    """One weight per token of `target + END_OF_TURN` (as `target_ids` tokenizes it, before any EOS it appends):
    `weight` where the token overlaps an occurrence of one of `names` in the target text, 1.0 elsewhere; empty when
    no name occurs (every weight is then 1.0)."""
    spans = [(m.start(), m.end()) for n in names if n for m in re.finditer(re.escape(n), target)]
    if not spans:
        return []
    offsets = tokenizer(target + END_OF_TURN, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [weight if any(a < e and s < b for s, e in spans) else 1.0 for a, b in offsets]


def encode_row(
    row: Row,
    tokenizer: Any,
    max_length: int,
    *,
    compat: bool = False,
    api_name_weight: float = 1.0,
    emphasis: Sequence[str] = (),
    unlikelihood: bool = False,
    name_rank: bool = False,
) -> Encoded:
    """Tokenize one row (see the module docstring for the layout, the truncation rule, API-name emphasis and the
    unlikelihood term, which `unlikelihood` turns on for the row's first `emphasis` name; `name_rank` gives the row
    its name-ranking group for that name among the row's tools, `umi.train.name_rank`)."""
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
    weights = None
    if api_name_weight != 1.0:
        named = api_name_weights(tokenizer, row.target, emphasis, api_name_weight)
        weights = [1.0] * len(prompt) + (named + [1.0] * len(target))[: len(target)]
    unlikely = None
    previous = previous_call_name(row.history) if unlikelihood and emphasis else None
    if previous:
        marks = unlikely_tokens(tokenizer, row.target, emphasis[0], previous)[: len(target)]
        if any(x != IGNORE for x in marks):
            unlikely = [IGNORE] * len(prompt) + marks + [IGNORE] * (len(target) - len(marks))
    choice = None
    if name_rank and emphasis:
        names = [n for n in tool_names(row.tools) if n != "Finish"]
        choice = name_choice(tokenizer, row.target, emphasis[0], names)
        if choice is not None and choice.at + max(len(c) for c in choice.candidates) > len(target):
            choice = None  # a cut target: the name's tokens are not all there
    labels = [IGNORE] * len(prompt) + list(target)
    return Encoded(prompt + target, labels, prompt_cut, target_cut, weights, unlikely, choice)


def encode_rows(
    rows: Sequence[Row],
    tokenizer: Any,
    max_length: int,
    *,
    compat: bool = False,
    api_name_weight: float = 1.0,
    emphasis: Sequence[Sequence[str]] | None = None,
    unlikelihood: bool = False,
    name_rank: bool = False,
) -> list[Encoded]:
    """`encode_row` over rows; `emphasis[i]`: row i's step call (`step_call_names`), weighted and, with
    `unlikelihood`, contrasted with the previous call, with `name_rank` ranked among the row's tools."""
    names = emphasis if emphasis is not None else [()] * len(rows)
    return [
        encode_row(
            r,
            tokenizer,
            max_length,
            compat=compat,
            api_name_weight=api_name_weight,
            emphasis=n,
            unlikelihood=unlikelihood,
            name_rank=name_rank,
        )
        for r, n in zip(rows, names, strict=True)
    ]


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
    out = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return {**out, **_extras([[(e, 0)] for e in examples], width)}


def _extras(rows: Sequence[Sequence[tuple[Encoded, int]]], width: int) -> dict[str, torch.Tensor]:
    """`weights` and `unlikely` tensors (batch × width) for rows placed at the given offsets, each only when some
    row carries it."""
    out: dict[str, torch.Tensor] = {}
    placed = [x for r in rows for x in r]
    if any(e.weights for e, _ in placed):
        weights = torch.ones((len(rows), width))
        for r, row in enumerate(rows):
            for e, at in row:
                if e.weights:
                    weights[r, at : at + len(e.weights)] = torch.tensor(e.weights)
        out["weights"] = weights
    if any(e.unlikely for e, _ in placed):
        unlikely = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for r, row in enumerate(rows):
            for e, at in row:
                if e.unlikely:
                    unlikely[r, at : at + len(e.unlikely)] = torch.tensor(e.unlikely)
        out["unlikely"] = unlikely
    return out


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
    placed: list[list[tuple[Encoded, int]]] = []
    for r, b in enumerate(rows):
        at = 0
        placed.append([])
        for e in b:
            n = len(e.input_ids)
            ids[r, at : at + n] = torch.tensor(e.input_ids)
            labels[r, at : at + n] = torch.tensor(e.labels)
            pos[r, at : at + n] = torch.arange(n)
            placed[r].append((e, at))
            at += n
        pos[r, at:] = torch.arange(width - at)
    out = {"input_ids": ids, "labels": labels, "position_ids": pos}
    return {**out, **_extras(placed, width)}
