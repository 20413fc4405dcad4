"""Name ranking: a loss over the task's API names where a planner thought (or a call) names the step's API.

The trained planners' measured failure is the choice of API: their thoughts name the gold API in 13–18 of the
subset's 73 call steps and the previous call's API in about 30 (`benchmarks/results/planner_choice.md`). Token
cross-entropy, even with the name's tokens weighted (`api_name_weight`) or the previous API's first token pushed
down (`unlikelihood`), trains the name against the whole vocabulary one token at a time; the decision is among the
task's few APIs. *Name ranking* (`TrainConfig.name_rank`, off at 0) scores each of the task's API names as a whole
at the point where the target first spells the step's API — the summed log-probability of the name's tokens and of
the token after it (so a name that is a prefix of another cannot win by stopping early) — and adds the
cross-entropy of the gold name among them: the sequence-level choice generation faces, a listwise ranking loss.

Exact and cheap under prefix-shared packing (`umi.train.prefix_pack`): a name's tokens up to where it departs from
the gold name's are the row's own positions; the rest is a short *candidate branch* whose keys are the row's prefix
up to the departure (the base's tokens up to the row's LCP, then the row's own segment) and itself, positions
continuing the row's. The scores equal separate forward passes over each substituted row
(`tests/train/test_name_rank.py`).

Candidates are taken on ids, as packing takes branches: the target with the gold name replaced by the candidate is
tokenised whole, and the candidate's tokens are those from the first token that touches the name to the first token
after it; a candidate whose text tokenises differently before the name (a merge across the boundary) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from umi.format import END_OF_TURN


@dataclass(frozen=True)
class NameChoice:
    """One row's ranking group: the target-token index where the name starts (`at`) and each candidate's tokens
    from there through the token after the name, the gold name's first, with the names they spell."""

    at: int
    candidates: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]


def _tokens_through(offsets: Sequence[tuple[int, int]], end: int) -> int:
    """How many tokens reach through the character `end` plus one: every token starting before `end`, then one."""
    n = next((i for i, (s, _) in enumerate(offsets) if s >= end), len(offsets))
    return min(n + 1, len(offsets))


def name_choice(tokenizer: Any, target: str, gold: str, names: Sequence[str]) -> NameChoice | None:
    """The ranking group of a row whose `target` spells `gold` (first occurrence) among the task's `names`; None
    when the target does not spell it or no other name can stand in its place."""
    at_char = target.find(gold) if gold else -1
    others = [n for n in dict.fromkeys(names) if n and n != gold]
    if at_char < 0 or not others:
        return None

    def encode(name: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = tokenizer(
            target[:at_char] + name + target[at_char + len(gold) :] + END_OF_TURN,
            add_special_tokens=False,
            return_offsets_mapping=True,
        )
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    gold_ids, gold_off = encode(gold)
    at = next(i for i, (_, e) in enumerate(gold_off) if e > at_char)
    cands = [tuple(gold_ids[at : _tokens_through(gold_off, at_char + len(gold))])]
    kept = [gold]
    for name in others:
        ids, off = encode(name)
        if ids[:at] != gold_ids[:at]:
            continue
        cand = tuple(ids[at : _tokens_through(off, at_char + len(name))])
        if cand and cand not in cands:
            cands.append(cand)
            kept.append(name)
    return NameChoice(at, tuple(cands), tuple(kept)) if len(cands) > 1 else None


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return i


@dataclass
class RankLayout:
    """What `collate_pack` adds for name ranking: candidate-branch tokens (ids, positions, segments) and, per scored
    token, the pack index whose logits predict it, the token, its group and its candidate."""

    ids: list[int]
    positions: list[int]
    segments: list[tuple[int, int, int, int, int]]
    at: list[int]
    tokens: list[int]
    group: list[int]
    candidate: list[int]


def rank_layout(rows: Sequence[tuple[NameChoice, int, tuple[int, int]]], first_index: int) -> RankLayout:
    """Lay out the candidate branches of the ranked rows of one pack.

    `rows`: for each row with a choice, (its choice, its prompt length, its place): the place is (segment start,
    LCP) of the row's segment in the pack ((0, 0) for the base), so the row's own token j sits at pack index j below
    the LCP (a base token) and at `start + j - lcp` above it. Branch tokens are appended from pack index
    `first_index` on; each branch's segment is (start, end, lcp, parent start, parent length): its keys are the
    base's first `lcp` tokens, then the parent's span (the row's own tokens before the branch), then its own."""
    out = RankLayout([], [], [], [], [], [], [])
    for g, (choice, prompt, (seg, lcp_row)) in enumerate(rows):

        def where(j: int, seg: int = seg, lcp_row: int = lcp_row) -> int:
            return j if j < lcp_row else seg + j - lcp_row

        start = prompt + choice.at  # the row's own index of the name's first token
        gold = choice.candidates[0]
        for c, cand in enumerate(choice.candidates):
            lcp = len(cand) if c == 0 else _lcp(cand, gold)
            for k in range(lcp):  # shared with gold: scored at the row's own positions
                out.at.append(where(start + k - 1))
                out.tokens.append(cand[k])
                out.group.append(g)
                out.candidate.append(c)
            if lcp >= len(cand):
                continue
            out.at.append(where(start + lcp - 1))  # the token where it departs from gold: predicted from the row
            out.tokens.append(cand[lcp])
            out.group.append(g)
            out.candidate.append(c)
            rest = cand[lcp:-1]  # the inputs that predict the candidate's later tokens
            if not rest:
                continue
            s = first_index + len(out.ids)
            out.segments.append((s, s + len(rest), lcp_row, seg, start + lcp - lcp_row))
            for k, tok in enumerate(rest):
                out.ids.append(tok)
                out.positions.append(start + lcp + k)
                out.at.append(s + k)
                out.tokens.append(cand[lcp + k + 1])
                out.group.append(g)
                out.candidate.append(c)
    return out


def rank_scores(log_probs: torch.Tensor, group: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Each candidate's summed token log-probability (`log_probs`, one per scored token), as a (groups x candidates)
    matrix, gold in column 0; -inf where a group has fewer candidates."""
    groups, width = int(group.max()) + 1, int(candidate.max()) + 1
    flat = group * width + candidate
    scores = torch.zeros(groups * width, dtype=log_probs.dtype, device=log_probs.device).index_add(0, flat, log_probs)
    present = torch.zeros(groups * width, dtype=torch.bool, device=log_probs.device)
    present[flat] = True
    return scores.masked_fill(~present, float("-inf")).view(groups, width)


def rank_losses(log_probs: torch.Tensor, group: torch.Tensor, candidate: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Per group: the cross-entropy of the gold candidate (index 0) over the candidates' summed token log-probs
    (`rank_scores`); and how many groups rank gold first."""
    scores = rank_scores(log_probs, group, candidate)
    gold = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    ce = torch.nn.functional.cross_entropy(scores, gold, reduction="none")
    return ce, int((scores.argmax(-1) == 0).sum())
