"""Which llama.cpp server slot serves which call, so each role keeps its own prompt cache.

llama.cpp's server keeps one cached prompt per slot and clears it when a request's LoRA set differs from the
slot's last one. Planner and caller alternating on one slot therefore prefill everything on every call. Here every
cache key (a role binding's role) owns a group of `lanes` slots that no other key uses, so batches and live
workers never evict another role's prompt. Within a group, a call takes the free slot whose last prompt shares the
longest prefix with its own (the same conversation one step on), else the least recently used one: several
workers' episodes each find their own cached history again. A shared prefix counts only where it is at least half
of the slot's cached prompt (`SlotTable._reuse`): the template's opening is not a conversation. A batch (several
trajectories' steps at once) takes its slots together (`acquire_batch`), longest reused prefixes first, so a new
trajectory cannot take the slot of one that comes later in the same batch. (Measured before both rules: 4 lanes
prefilled 76,124 prompt tokens where one lane prefilled 53,334 on the same 50 steps.)

Roles that run the same weights (no adapter, or one adapter for all: the zero-shot base, a multi-task model, one
served model behind every role) compute the same keys and values for the same tokens, so they share one key
(`umi.models.build.bind_roles`), named once per role: that key's group pools one slot per role (times `lanes`), and
a call takes whichever slot's last prompt it extends furthest — with the α-UMi templates (the role instruction
after the history) the planner's next prompt extends the caller's last one, so a shared pool prefills about what
one cache for all roles would (`benchmarks/results/prefill_floor.md`: 37,360 tokens instead of 51,196 per role
on the static evaluation's first 50 steps).

Slot ids are consecutive per group, in the order the keys were declared; a key nobody declared (a direct engine
user, `None`) uses the first group.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class SlotTable:
    """The server's slots, grouped by cache key, with who is using which right now and what each holds."""

    def __init__(self, keys: Sequence[str], lanes: int = 1) -> None:
        self.keys: list[str] = list(dict.fromkeys(keys)) or [""]
        self.lanes = max(1, lanes)
        # a key named k times (k roles running the same weights share it) pools k × lanes slots
        ids = itertools.count()
        self.groups: dict[str, list[int]] = {
            key: [next(ids) for _ in range(max(1, list(keys).count(key)) * self.lanes)] for key in self.keys
        }
        self._busy: set[int] = set()
        self._prompt: dict[int, str] = {}  # slot -> the last prompt it served (what its cache holds)
        self._used: dict[int, int] = {}  # slot -> tick of its last use
        self._tick = itertools.count(1)
        self._cond = threading.Condition()

    @property
    def total(self) -> int:
        """How many slots the server needs (`n_parallel`)."""
        return sum(len(group) for group in self.groups.values())

    def group_of(self, key: str | None) -> list[int]:
        return self.groups[key if key in self.groups else self.keys[0]]

    def _reuse(self, slot: int, prompt: str) -> int:
        """How much of `slot`'s cached prompt `prompt` reuses: their shared prefix, counted only where it is at
        least half of what the slot holds (`prompt` goes on from that conversation). Less is only the template's
        opening or the tool-list boilerplate that every trajectory starts with: taking the slot for it would throw
        its conversation's history away for a few saved tokens (measured: with 4 lanes every trajectory's caller
        turn took the one caller slot that shared the 49-character system header, while three stayed empty, and
        prefilled 76k prompt tokens where one lane prefilled 53k). llama.cpp's own slot choice has the same rule
        (`--slot-prompt-similarity`, 0.5)."""
        held = self._prompt.get(slot, "")
        shared = len(os.path.commonprefix([held, prompt]))
        return shared if held and 2 * shared >= len(held) else 0

    def _best(self, free: list[int], prompt: str) -> int:
        reuse = {s: self._reuse(s, prompt) for s in free}
        best = max(free, key=reuse.__getitem__)
        if reuse[best] > 0:
            return best
        return min(free, key=lambda s: self._used.get(s, 0))  # nothing reused: the coldest slot (unused ones first)

    @contextmanager
    def acquire_batch(self, key: str | None, prompts: Sequence[str]) -> Iterator[list[int]]:
        """Hold one slot of `key`'s group per prompt (at most the group's size), matched jointly: the (prompt, slot)
        pairs reusing the longest prefix (`_reuse`) are taken first, then each prompt left over takes the least
        recently used free slot. Waits until that many slots of the group are free."""
        group = self.group_of(key)
        if len(prompts) > len(group):
            raise ValueError(f"{len(prompts)} prompts for {len(group)} slot(s) of {key!r}; send at most that many")
        with self._cond:
            while len(free := [s for s in group if s not in self._busy]) < len(prompts):
                self._cond.wait()
            shared = sorted(
                ((self._reuse(s, p), -self._used.get(s, 0), i, s) for i, p in enumerate(prompts) for s in free),
                reverse=True,
            )
            chosen: dict[int, int] = {}
            for n, _, i, s in shared:
                if n > 0 and i not in chosen and s not in chosen.values():
                    chosen[i] = s
            rest = sorted((s for s in free if s not in chosen.values()), key=lambda s: self._used.get(s, 0))
            for i in range(len(prompts)):
                if i not in chosen:
                    chosen[i] = rest.pop(0)
            slots = [chosen[i] for i in range(len(prompts))]
            for s, p in zip(slots, prompts, strict=True):
                self._take(s, p)
        with self._holding(slots):
            yield slots

    @contextmanager
    def acquire(self, key: str | None, prompt: str = "") -> Iterator[int]:
        """Hold one slot of `key`'s group for a request with `prompt`; waits while every slot of the group is busy."""
        group = self.group_of(key)
        with self._cond:
            while not (free := [s for s in group if s not in self._busy]):
                self._cond.wait()
            slot = self._best(free, prompt)
            self._take(slot, prompt)
        with self._holding([slot]):
            yield slot

    def _take(self, slot: int, prompt: str) -> None:
        """Mark `slot` busy with `prompt` (under `self._cond`)."""
        self._busy.add(slot)
        self._prompt[slot] = prompt
        self._used[slot] = next(self._tick)

    @contextmanager
    def _holding(self, slots: Sequence[int]) -> Iterator[None]:
        """Release `slots` when the caller is done with them, waking whoever waits for a free slot."""
        try:
            yield
        finally:
            with self._cond:
                self._busy.difference_update(slots)
                self._cond.notify_all()


def run_in_lanes(table: SlotTable, key: str | None, prompts: Sequence[str], call: Callable[[str, int], T]) -> list[T]:
    """`call(prompt, slot)` for every prompt, as many at once as `key`'s group has lanes, each chunk's slots taken
    together (`acquire_batch`). The calls run in threads: llama.cpp decodes the requests in flight as one batch
    (xllamacpp releases the GIL; an HTTP server batches concurrent requests). Results keep the prompts' order."""
    lanes = len(table.group_of(key))
    out: list[T] = []
    with ThreadPoolExecutor(max_workers=max(1, min(lanes, len(prompts)))) as pool:
        for at in range(0, len(prompts), lanes):
            chunk = list(prompts[at : at + lanes])
            with table.acquire_batch(key, chunk) as slots:
                out += pool.map(call, chunk, slots)
    return out
