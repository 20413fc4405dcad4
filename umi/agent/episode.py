"""The result of one agent run: the answer, how it ended, what it did, and what it cost per role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from umi.schema import Turn
from umi.tools.base import ToolCall

Status = Literal["answered", "gave_up", "budget_exhausted", "error"]


@dataclass
class Episode:
    """How one task went. `status`: answered (the summarizer wrote `answer`), gave_up (the planner said so;
    `reason` holds its thought), budget_exhausted (step, token or search budget spent), error (an engine or the
    agent failed; `reason` says how). `costs` is per role: calls, prompt_tokens (= cached_tokens +
    prefilled_tokens), new_tokens, seconds. `parse_issues` lists what the models wrote that did not parse (a
    missing marker, unusable calls). `concluded_at_budget`: the answer came on the step budget's last step, where
    the constrained planner could only conclude or give up (`AgentBase.conclude_at_budget`)."""

    query: str
    status: Status = "budget_exhausted"
    answer: str | None = None
    reason: str = ""
    steps: int = 0
    calls: list[ToolCall] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    parse_issues: list[str] = field(default_factory=list)
    concluded_at_budget: bool = False

    @property
    def model_calls(self) -> int:
        return int(sum(c.get("calls", 0) for c in self.costs.values()))

    @property
    def seconds(self) -> float:
        return sum(c.get("seconds", 0.0) for c in self.costs.values())

    def summary(self) -> dict[str, object]:
        return {
            "status": self.status,
            "answer": self.answer,
            "reason": self.reason,
            "steps": self.steps,
            "concluded_at_budget": self.concluded_at_budget,
            "calls": len(self.calls),
            "costs": self.costs,
        }
