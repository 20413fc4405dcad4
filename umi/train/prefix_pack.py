"""Prefix-shared packing: all rows of one trajectory for one role in one sequence, the shared prefix computed once.

The rows of one trajectory share their tool documents and most of their history, so training them separately
recomputes that prefix once per row. A *pack* holds one base row (the longest) whole, then for every other row
only its *branch*: its own token ids after their longest common prefix (LCP) with the base. A branch token attends
to the base tokens of that prefix and to the branch tokens before it, and its position id continues from the
prefix length, so every token sees exactly the context and positions it has as a separate row: the per-token
losses and gradients equal separate rows (`tests/train/test_prefix_pack.py`, to float rounding).

Two details keep it exact:

* The LCP is cut to at most `prompt_length - 1` tokens of the branch row, so the branch holds the position that
  predicts its first target token; every loss position of a row lies in its own segment.
* The mask is a float additive 4D mask (0 allowed, dtype-min elsewhere): the eager attention path misreads a
  boolean 4D mask, SDPA takes either.

**Segment attention** (`PACK_ATTENTION`, set by `use_pack_attention`, which `umi.train.loop.train` does for
prefix-packed runs). With the 4D mask, SDPA computes a score for every (query, key) pair of the pack and masks
most of them away: branches never see each other. The pack also carries its `pack_segments` (start, end, LCP,
parent start, parent length per segment: a name-ranking branch, `umi.train.name_rank`, also sees a span of its row's
own segment), and the attention function computes each segment on its own: the base with `is_causal`, each
branch's queries against the keys of its prefix plus its own, causal at the end. The same function as the mask,
for the work the mask leaves: 1.4x forward + backward on a 2,075-token planner pack (one thread, LoRA on the upper
quarter). Without `pack_segments` (generation, separate rows) it is transformers' SDPA path unchanged. Sliding-window
layers (Gemma 3 keeps 5 of every 6 layers local, 512 tokens) get their window inside each segment, counted in the
row's own positions, in blocks of `window` queries that never score keys out of reach. The 4D mask is the
full-attention one only: a sliding-window model trains packed through segment attention alone (`umi.train.loop`
always switches to it for packs).

Branches are taken on ids, not text: tokenising pieces separately drifts inside histories (an empty observation
merges with the next `assistant`), while each row's own ids after the LCP are exact by construction.

The pack also carries `loss_positions` and their `targets` (the next-token labels), so the loop computes the LM
head only where a loss is taken (the vocabulary projection is most of the compute at these model sizes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from umi.schema import Row
from umi.train.data import IGNORE, Encoded
from umi.train.name_rank import rank_layout


@dataclass
class Pack:
    """One packed sequence: the base row index, then (row index, LCP length) per branch."""

    base: int
    branches: list[tuple[int, int]] = field(default_factory=list)
    tokens: int = 0


def _prompt_length(e: Encoded) -> int:
    return next((i for i, x in enumerate(e.labels) if x != IGNORE), len(e.labels))


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def trajectory_key(row: Row) -> str:
    """Rows of one trajectory share their tools and first (user) turn."""
    first = row.history[0]["value"] if row.history else row.input[:200]
    return json.dumps([row.tools, first], sort_keys=True)


def plan_packs(rows: Sequence[Row], encoded: Sequence[Encoded], max_tokens: int) -> list[Pack]:
    """Group rows by trajectory and pack each group, longest row first, into packs of at most `max_tokens`.

    A row longer than `max_tokens` gets a pack of its own (it is never cut here: the prompt budget bounds rows).
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(trajectory_key(row), []).append(i)
    packs: list[Pack] = []
    for members in groups.values():
        rest = sorted(members, key=lambda i: (-len(encoded[i].input_ids), i))
        while rest:
            base = rest.pop(0)
            pack = Pack(base=base, tokens=len(encoded[base].input_ids))
            keep: list[int] = []
            for i in rest:
                e = encoded[i]
                c = min(_lcp(encoded[base].input_ids, e.input_ids), _prompt_length(e) - 1)
                c = max(c, 0)
                if pack.tokens + len(e.input_ids) - c <= max_tokens:
                    pack.branches.append((i, c))
                    pack.tokens += len(e.input_ids) - c
                else:
                    keep.append(i)
            rest = keep
            packs.append(pack)
    return packs


def order_packs(packs: Sequence[Pack], *, seed: int, epoch: int) -> list[Pack]:
    """A seeded shuffle per epoch, a pure function of (seed, epoch) so a resumed run sees the same order."""
    out = list(packs)
    random.Random(seed * 1_000_003 + epoch).shuffle(out)
    return out


def collate_pack(pack: Pack, encoded: Sequence[Encoded], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """`input_ids`, `position_ids` and a 4D additive `attention_mask` of shape (1, 1, T, T), plus
    `loss_positions` (1D) and `targets` (the next token at each of those positions), `pack_segments` (start, end,
    LCP, parent start, parent length of each segment, for `pack_attention`), `weights` (each loss position's weight)
    when a row carries API-name emphasis, `unlikely` (each loss position's unlikelihood token, -100 for none) when
    a row has one, and the name-ranking tensors `rank_at` / `rank_tokens` / `rank_group` / `rank_candidate` when a
    row carries a `NameChoice` (`umi.train.name_rank`: its candidate branches follow the rows' segments)."""
    base = encoded[pack.base]
    ids: list[int] = list(base.input_ids)
    pos: list[int] = list(range(len(base.input_ids)))
    nxt: list[int] = [*base.labels[1:], IGNORE]
    weighted = any(encoded[i].weights for i in [pack.base, *(i for i, _ in pack.branches)])
    w = [*(base.weights or [1.0] * len(base.labels))[1:], 1.0]
    contrasted = any(encoded[i].unlikely for i in [pack.base, *(i for i, _ in pack.branches)])
    u = [*(base.unlikely or [IGNORE] * len(base.labels))[1:], IGNORE]
    # (start, end, lcp, parent start, parent length) of each segment after the base
    spans: list[tuple[int, int, int, int, int]] = []
    ranked = [(base.choice, _prompt_length(base), (0, 0))] if base.choice else []
    for i, c in pack.branches:
        e = encoded[i]
        start = len(ids)
        ids.extend(e.input_ids[c:])
        pos.extend(range(c, len(e.input_ids)))
        nxt.extend([*e.labels[c + 1 :], IGNORE])
        w.extend([*(e.weights or [1.0] * len(e.labels))[c + 1 :], 1.0])
        u.extend([*(e.unlikely or [IGNORE] * len(e.labels))[c + 1 :], IGNORE])
        spans.append((start, len(ids), c, 0, 0))
        if e.choice:
            ranked.append((e.choice, _prompt_length(e), (start, c)))
    rank = rank_layout(ranked, len(ids)) if ranked else None
    if rank is not None:
        ids.extend(rank.ids)
        pos.extend(rank.positions)
        nxt.extend([IGNORE] * len(rank.ids))
        w.extend([1.0] * len(rank.ids))
        u.extend([IGNORE] * len(rank.ids))
        spans.extend(rank.segments)
    t = len(ids)
    allowed = torch.zeros((t, t), dtype=torch.bool)
    n0 = len(base.input_ids)
    allowed[:n0, :n0] = True
    for start, end, c, parent, plen in spans:
        allowed[start:end, :c] = True
        allowed[start:end, parent : parent + plen] = True
        allowed[start:end, start:end] = True
    allowed &= torch.ones((t, t), dtype=torch.bool).tril()  # causal inside every segment (prefixes lie before)
    mask = torch.zeros((t, t), dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    targets = torch.tensor(nxt, dtype=torch.long)
    loss_positions = (targets != IGNORE).nonzero().squeeze(-1)
    out = {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "position_ids": torch.tensor([pos], dtype=torch.long),
        "attention_mask": mask[None, None],
        "loss_positions": loss_positions,
        "targets": targets[loss_positions],
        "pack_segments": torch.tensor([(0, n0, 0, 0, 0), *spans], dtype=torch.long),
    }
    if weighted:
        out["weights"] = torch.tensor(w)[loss_positions]
    if contrasted:
        out["unlikely"] = torch.tensor(u, dtype=torch.long)[loss_positions]
    if rank is not None and rank.at:
        out["rank_at"] = torch.tensor(rank.at, dtype=torch.long)
        out["rank_tokens"] = torch.tensor(rank.tokens, dtype=torch.long)
        out["rank_group"] = torch.tensor(rank.group, dtype=torch.long)
        out["rank_candidate"] = torch.tensor(rank.candidate, dtype=torch.long)
    return out


def pack_stats(packs: Sequence[Pack], encoded: Sequence[Encoded]) -> dict[str, int]:
    """Tokens as separate rows vs tokens in packs (the saving prefix sharing buys)."""
    rows = sum(len(encoded[p.base].input_ids) + sum(len(encoded[i].input_ids) for i, _ in p.branches) for p in packs)
    return {"packs": len(packs), "row_tokens": rows, "packed_tokens": sum(p.tokens for p in packs)}


# ---- segment attention ----------------------------------------------------------------------------------------

PACK_ATTENTION = "umi_prefix_pack"


def pack_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    pack_segments: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function (registered as `PACK_ATTENTION`): segment by segment for a pack (see the
    module docstring), transformers' SDPA otherwise. `query` is (1, heads, T, d), `key` / `value` (1, kv heads, T,
    d); returns (1, T, heads, d) as transformers' attention functions do."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if pack_segments is None:
        return sdpa_attention_forward(  # type: ignore[no-any-return]
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if kwargs.get("softcap") is not None:
        raise NotImplementedError("prefix-packed training does not support attention logit soft-capping (Gemma 2)")
    window = kwargs.get("sliding_window")
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    outs = []
    for start, end, base_lcp, parent, plen in pack_segments.tolist():
        # the segment's keys indexed by its row's own positions: the base's prefix, the parent's span (a name-ranking
        # branch's row), then its own (the base: a view)
        lcp = base_lcp + plen
        if lcp:
            k = torch.cat([key[:, :, :base_lcp], key[:, :, parent : parent + plen], key[:, :, start:end]], 2)
            v = torch.cat([value[:, :, :base_lcp], value[:, :, parent : parent + plen], value[:, :, start:end]], 2)
        else:
            k, v = key[:, :, start:end], value[:, :, start:end]
        q = query[:, :, start:end]
        for lo, hi, keys_from in _query_blocks(end - start, lcp, window):
            mask = _block_mask(lcp + lo, lcp + hi, keys_from, window, q.device)
            outs.append(
                F.scaled_dot_product_attention(
                    q[:, :, lo:hi],
                    k[:, :, keys_from : lcp + hi],
                    v[:, :, keys_from : lcp + hi],
                    attn_mask=mask,
                    dropout_p=dropout,
                    is_causal=mask is None,
                    scale=scaling,
                )
            )
    return torch.cat(outs, 2).transpose(1, 2).contiguous(), None


def _query_blocks(n: int, lcp: int, window: int | None) -> list[tuple[int, int, int]]:
    """(first, end) of each block of a segment's `n` queries, and the position of the first key any of them sees.

    Full attention: one block over all keys. A sliding-window layer (Gemma 3 keeps 5 of every 6 layers local, 512
    tokens): blocks of `window` queries, each against only the keys fewer than `window` positions before its first
    query, so a 3,000-token pack costs about n x 2·window scores per local layer instead of n x n."""
    if window is None:
        return [(0, n, 0)]
    return [(lo, min(n, lo + window), max(0, lcp + lo - window + 1)) for lo in range(0, n, window)]


def _block_mask(q_from: int, q_to: int, k_from: int, window: int | None, device: torch.device) -> torch.Tensor | None:
    """Which keys (positions `k_from`..`q_to`-1) the queries at positions `q_from`..`q_to`-1 see: causal, and for a
    sliding-window layer only keys fewer than `window` positions back, positions counted in the row's own sequence
    (a branch continues from its prefix), as transformers' and llama.cpp's sliding masks count them. None: plain
    causal from the first key (SDPA's `is_causal` fast path)."""
    if q_from == k_from and window is None:
        return None
    q_pos = torch.arange(q_from, q_to, device=device)[:, None]
    k_pos = torch.arange(k_from, q_to, device=device)[None, :]
    allowed = k_pos <= q_pos
    if window is not None:
        allowed &= q_pos - k_pos < window
    return allowed


def use_pack_attention(model: Any) -> None:
    """Switch `model` (plain or PEFT-wrapped) to `pack_attention`; registers it with transformers once."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACK_ATTENTION, pack_attention)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner.set_attn_implementation(PACK_ATTENTION)
