"""A per-role prefix KV cache for the transformers engine: each call prefills only what is new for its role.

An agent's prompts grow: step k+1's planner prompt is step k's plus a few turns. Keeping the key/value cache of
each role's last prompt (and what it generated) and cropping it to the longest common token prefix with the next
prompt of that role means `generate` computes only the tokens after that prefix. Roles are kept apart (the KV of a
LoRA role differs from the base's), so a caller call never evicts the planner's cache.

Greedy outputs are the same as without the cache up to floating-point rounding of a chunked prefill (the test
suite checks the text on a growing history). Batched calls bypass the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class CachedPrefix:
    """The token ids whose keys and values `kv` holds (a transformers `Cache`), in order, and, where the engine
    shares lower layers across roles (`umi.models.shared_layers`), the hidden states entering the first unshared
    layer at those positions (positions × hidden size)."""

    ids: list[int]
    kv: Any
    hidden: Any = None


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def croppable(kv: Any) -> bool:
    """Whether every layer of a transformers cache holds all past positions (a sliding-window or linear-attention
    layer keeps only a recent window, so a longer shared prefix cannot be cut back out of it)."""
    layers = getattr(kv, "layers", None)
    if not layers or not hasattr(kv, "crop"):
        return False
    return not any(getattr(layer, "is_sliding", False) or not hasattr(layer, "keys") for layer in layers)


class PrefixCache:
    """One cached prefix per key (role and adapter). Not thread-safe: the engine calls it under its lock."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedPrefix] = {}

    def reuse(self, key: str, ids: list[int]) -> tuple[Any, int, Any]:
        """The cache to hand `generate` for prompt `ids`, how many of its tokens it already covers, and the recorded
        hidden states of those positions (None where the entry has none).

        At least the prompt's last token is always left to prefill (generation needs its logits). Returns
        `(None, 0, None)` where nothing is shared or the cache type cannot be cropped (e.g. sliding-window caches).
        """
        entry = self.entries.pop(key, None)  # taken out: generate extends it in place, `store` puts it back
        if entry is None:
            return None, 0, None
        keep = min(common_prefix(entry.ids, ids), len(ids) - 1)
        if keep <= 0 or not croppable(entry.kv):
            return None, 0, None
        drop = len(entry.ids) - keep
        if drop > 0:
            entry.kv.crop(-drop)  # transformers ≥ 5: a negative count removes that many trailing positions
        return entry.kv, keep, None if entry.hidden is None else entry.hidden[:keep]

    def donor(self, ids: list[int], *, longer_than: int, need_hidden: bool) -> tuple[CachedPrefix, int] | None:
        """Another key's entry sharing the longest prefix with `ids` (at most all but the last token), if that is
        longer than `longer_than`; with `need_hidden`, only entries that recorded their hidden states."""
        best: tuple[CachedPrefix, int] | None = None
        for entry in self.entries.values():
            if (need_hidden and entry.hidden is None) or not croppable(entry.kv):
                continue
            n = min(common_prefix(entry.ids, ids), len(ids) - 1)
            if n > longer_than and (best is None or n > best[1]):
                best = (entry, n)
        return best

    def store(self, key: str, ids: list[int], kv: Any, hidden: Any = None) -> None:
        """Keep `kv` as `key`'s prefix: `ids` are the prompt and generated ids; `kv` covers their first positions
        (and `hidden`, when given, at least as many)."""
        if kv is None or not hasattr(kv, "get_seq_length"):
            return
        length = int(kv.get_seq_length())
        if 0 < length <= len(ids):
            kept = None if hidden is None or len(hidden) < length else hidden[:length]
            self.entries[key] = CachedPrefix(ids[:length], kv, kept)

    def clear(self) -> None:
        self.entries.clear()
