"""A tool-disjoint split: trajectories that share any tool land in the same part.

ToolBench's full training release is not reachable here, so umi's in-house training set and held-out static test
set both come from α-UMi's 400 out-of-domain trajectories. Splitting by tools (not by trajectory) keeps the test
part's tools unseen in training, which is what "out of domain" meant in the paper.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from umi.format.naming import tool_of
from umi.schema import Trajectory


@dataclass
class Split:
    train: list[int]
    test: list[int]


def tool_components(trajectories: Sequence[Trajectory]) -> list[list[int]]:
    """Groups of trajectory indices connected by a shared tool (`<api>_for_<tool>`: the tool part)."""
    parent = list(range(len(trajectories)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, int] = {}
    for i, traj in enumerate(trajectories):
        for name in traj.tool_names:
            key = tool_of(name)
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(trajectories)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def split_by_tools(trajectories: Sequence[Trajectory], *, seed: int = 0, test_fraction: float = 0.5) -> Split:
    """Choose whole components for the test part so its size is as close as possible to `test_fraction`.

    Exact subset-sum over component sizes (there are few components); the seed orders components before the
    search, so ties are broken reproducibly and differently per seed.
    """
    comps = tool_components(trajectories)
    rng = random.Random(seed)
    rng.shuffle(comps)
    target = round(len(trajectories) * test_fraction)
    # reachable[s] = index of the component that first reached sum s (for reconstruction)
    reachable: dict[int, tuple[int, int]] = {0: (-1, -1)}
    for ci, comp in enumerate(comps):
        for s in sorted(reachable, reverse=True):
            t = s + len(comp)
            if t not in reachable:
                reachable[t] = (ci, s)
    best = min(reachable, key=lambda s: (abs(s - target), s))
    chosen: set[int] = set()
    s = best
    while s:
        ci, prev = reachable[s]
        chosen.add(ci)
        s = prev
    test = sorted(i for ci in chosen for i in comps[ci])
    test_set = set(test)
    train = [i for i in range(len(trajectories)) if i not in test_set]
    return Split(train=train, test=test)
