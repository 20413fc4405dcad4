"""Counts people check a data file by: trajectories, planner steps per route, tools, shared tools between parts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from umi.data.rows import iter_steps
from umi.format.naming import tool_of
from umi.schema import Trajectory


@dataclass
class DataStats:
    trajectories: int
    steps: int
    routes: dict[str, int]
    api_names: set[str] = field(repr=False)
    tools: set[str] = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "trajectories": self.trajectories,
            "steps": self.steps,
            **{f"steps_{k.replace(' ', '_')}": v for k, v in sorted(self.routes.items())},
            "apis": len(self.api_names),
            "tools": len(self.tools),
        }


def compute_stats(trajectories: Sequence[Trajectory]) -> DataStats:
    steps = iter_steps(trajectories)
    routes = Counter(s.route for s in steps)
    names = {n for t in trajectories for n in t.tool_names}
    return DataStats(
        trajectories=len(trajectories),
        steps=len(steps),
        routes={r: routes.get(r, 0) for r in ("caller", "conclusion", "give up")},
        api_names=names,
        tools={tool_of(n) for n in names},
    )


def shared(a: DataStats, b: DataStats) -> dict[str, int]:
    """How many API names and tools two parts have in common (0 and 0 for a tool-disjoint split)."""
    return {"shared_apis": len(a.api_names & b.api_names), "shared_tools": len(a.tools & b.tools)}
