"""DFSDT: ToolBench's depth-first search decision tree around either agent.

Each tree node is a history prefix at a planner decision. A child is one agent step from it (a call and its
observation). A chain that gives up, fails or reaches the depth limit backtracks to its parent, which tries
another child after a user message listing the candidates already tried there, so the model is pushed to act
differently. Search ends at the first answer, or when the tree width at every node or the model-call budget is
spent. `max_depth` is in planner steps (the reference's 12 tree nodes allowed 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from umi.agent.episode import Episode
from umi.agent.multi import AgentBase, turn
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
    agent: AgentBase
    width: int = 2
    max_depth: int = 4
    max_model_calls: int = 40

    def run(self, query: str) -> Episode:
        self._used = 0
        self._costs: dict[str, dict[str, float]] = {}
        self._last: Episode | None = None
        found = self._search([turn("user", query)], 0)
        result = found or self._last or Episode(query=query, status="budget_exhausted")
        if found is None and result.status != "gave_up":
            result.status = "budget_exhausted"
            result.reason = (
                f"DFSDT found no answer (width {self.width}, depth {self.max_depth}, {self._used} model calls)"
            )
        result.query = query
        result.costs = self._costs
        return result

    def _step(self, history: list[Turn]) -> Episode:
        saved = self.agent.max_steps
        self.agent.max_steps = 1
        try:
            ep = self.agent.continue_from(history)
        finally:
            self.agent.max_steps = saved
        self._used += ep.steps
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
            ep = self._step(history)
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
