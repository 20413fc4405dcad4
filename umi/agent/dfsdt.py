"""DFSDT: ToolBench's depth-first search decision tree around either agent.

```python
episode = DFSDT(MultiLLMAgent(roles, tools, executor), width=2, max_depth=4, max_model_calls=40).run(query)
```

Each tree node is a history prefix at a planner decision. A child is one agent step from it (a call and its
observation). A chain that gives up, fails or reaches the depth limit backtracks to its parent, which tries
another child after a user message listing the candidates already tried there, so the model is pushed to act
differently. Search ends at the first answer, or when the tree width at every node or the model-call budget is
spent. `max_depth` is the per-chain limit in planner steps (ToolBench's 12 tree nodes a chain allowed 4).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from umi.agent.base import AgentBase, turn
from umi.agent.episode import Episode
from umi.schema import Turn


def diversity_message(tried: list[str]) -> str:
    """The user turn that tells the model which actions were already tried from this state."""
    listing = json.dumps(tried, indent=2, ensure_ascii=False)
    return (
        "This is not the first time you try this task; the previous attempts from this point failed. "
        f"These actions were already tried here:\n{listing}\n"
        "Choose an action that is different from all of them."
    )


@dataclass
class DFSDT:
    """Depth-first search over single agent steps. `run` returns the first answered episode (its history is the
    successful chain), or the last branch's episode with status budget_exhausted (or gave_up) and costs summed
    over the whole search."""

    agent: AgentBase
    width: int = 2
    max_depth: int = 4
    max_model_calls: int = 40
    _used: int = field(default=0, init=False)
    _costs: dict[str, dict[str, float]] = field(default_factory=dict, init=False)
    _last: Episode | None = field(default=None, init=False)
    _eid: str = field(default="", init=False)

    def run(self, query: str, history: Sequence[Turn] | None = None) -> Episode:
        """Search for an answer to `query`, appended as a user turn after `history` (multi-turn tasks)."""
        self._used, self._costs, self._last = 0, {}, None
        self._eid = uuid.uuid4().hex[:12]
        found = self._search([*(history or []), turn("user", query)], 0)
        result = found or self._last or Episode(query=query, status="budget_exhausted")
        if found is None and result.status != "gave_up":
            result.status = "budget_exhausted"
            result.reason = (
                f"DFSDT found no answer (width {self.width}, depth {self.max_depth}, {self._used} model calls)"
            )
        result.query = query
        result.costs = self._costs
        return result

    def _step(self, history: list[Turn], depth: int) -> Episode:
        # a branch's one step is not the search's last: it may call (the search, not the branch, has the budget)
        ep = self.agent.continue_from(
            history, episode_id=self._eid, first_step=depth, max_steps=1, conclude_at_budget=False
        )
        self._used += ep.model_calls
        for role, totals in ep.costs.items():
            acc = self._costs.setdefault(role, {})
            for k, v in totals.items():
                acc[k] = acc.get(k, 0) + v
        self._last = ep
        return ep

    def _search(self, prefix: list[Turn], depth: int) -> Episode | None:
        tried: list[str] = []
        for _ in range(self.width):
            if self._used >= self.max_model_calls:
                return None
            history = list(prefix) + ([turn("user", diversity_message(tried))] if tried else [])
            ep = self._step(history, depth)
            if ep.status == "answered":
                return ep
            new = ep.history[len(history) :]
            tried.append(" ".join(t.value for t in new if t.role in ("assistant", "caller"))[-400:] or "(no action)")
            if ep.status in ("gave_up", "error") or depth + 1 >= self.max_depth:
                continue
            found = self._search(ep.history, depth + 1)
            if found is not None:
                return found
        return None
