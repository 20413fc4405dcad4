"""The α-UMi loop: the planner thinks and routes, the caller turns the thought into a call, the tool answers, and
the summarizer writes the final answer from the history alone.

```python
agent = MultiLLMAgent(roles, tools, executor, max_steps=8, trace_path="trace.jsonl")
episode = agent.run("Find the most viewed landscape drawing tutorial")
episode.status, episode.answer, episode.costs
```

Every prompt comes from `umi.format`, so the agent's history is byte-identical in layout to the training rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from umi.agent.base import AgentBase, turn
from umi.agent.episode import Episode
from umi.agent.marker import finish_markers, needs_marker
from umi.agent.trace import TraceWriter
from umi.format import (
    PlannerOutput,
    caller_prompt,
    caller_text,
    parse_caller,
    parse_planner,
    planner_prompt,
    planner_text,
    render_observation,
    summarizer_prompt,
)
from umi.models.base import CostLedger
from umi.models.roles import Roles
from umi.schema import ToolSpec, Turn
from umi.tools.base import Executor, ToolCall


class MultiLLMAgent(AgentBase):
    """Planner → caller (→ tool) or summarizer, until an answer, a give up, or the step budget."""

    def __init__(
        self,
        roles: Roles,
        tools: Sequence[ToolSpec],
        executor: Executor,
        *,
        planner_retries: int = 2,
        default_route: str = "caller",
        caller_repairs: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(roles, tools, executor, **kwargs)
        for role in ("planner", "caller", "summarizer"):
            roles.get(role)  # fail at construction, naming the unbound role, not mid-episode
        self.planner_retries = planner_retries
        self.default_route = default_route
        self.caller_repairs = caller_repairs

    def _plan(
        self,
        history: list[Turn],
        episode: Episode,
        ledger: CostLedger,
        trace: TraceWriter,
        eid: str,
        step: int,
        final: bool = False,
    ) -> tuple[str, str]:
        """The planner's (route, thought). Empty outputs are retried; a missing marker takes the default route.
        `final`: the budget's last step (the planner's grammar then leaves out `Next: caller.`)."""
        family = self.roles.family
        prompt = planner_prompt(
            self.docs,
            self._fit(history, lambda h: planner_prompt(self.docs, h, family=family)),
            family=family,
            budget=self.budget,
        )
        for attempt in range(self.planner_retries + 1):
            c = self._generate("planner", self.roles.get("planner"), prompt, ledger, final)
            p = parse_planner(c.text)
            self._record(
                trace,
                eid,
                step,
                "planner",
                prompt,
                c,
                {"route": p.route, "has_marker": p.has_marker, "attempt": attempt, **self._final_flag(c, final)},
                None if p.has_marker else "no Next: marker",
            )
            if not p.empty:
                break
        if needs_marker(c):
            p = self._finish_marker(prompt, c.text, ledger, trace, eid, step, final)
        if p.has_marker:
            return p.route, p.thought
        episode.parse_issues.append(f"step {step}: planner wrote no Next: marker; routed to {self.default_route}")
        return self.default_route, planner_text(p.raw.strip() or None, self.default_route)

    def _finish_marker(
        self, prompt: str, cut: str, ledger: CostLedger, trace: TraceWriter, eid: str, step: int, final: bool = False
    ) -> PlannerOutput:
        """A constrained thought cut by the token cap: one short call under the marker-only grammar writes the
        route after it (the thought is bounded in words, not tokens, so the cap can come first)."""
        planner = self.roles.get("planner")
        done = finish_markers(planner, [prompt], [cut], self.params, self.roles.family, final=final)[0]
        cont, c = done.prompt, done.completion
        ledger.add("planner", [c])
        p = parse_planner(done.text)
        self._record(
            trace,
            eid,
            step,
            "planner",
            cont,
            c,
            {"route": p.route, "has_marker": p.has_marker, "marker_continuation": True, **self._final_flag(c, final)},
        )
        return p

    def _call(
        self,
        history: list[Turn],
        thought: str,
        episode: Episode,
        ledger: CostLedger,
        trace: TraceWriter,
        eid: str,
        step: int,
    ) -> None:
        """The caller's turn: exact-name validation and JSON arguments, with one bounded repair retry."""
        family = self.roles.family
        problem = ""
        text = ""
        for attempt in range(self.caller_repairs + 1):
            slot = thought if not problem else f"{thought}\n(The previous call was invalid: {problem}. Fix it.)"
            prompt = caller_prompt(
                self.docs,
                self._fit(history, lambda h, s=slot: caller_prompt(self.docs, h, s, family=family)),
                slot,
                family=family,
                budget=self.budget,
            )
            caller = self.roles.get("caller")
            c = self._generate("caller", caller, prompt, ledger, history=history, calls=episode.calls)
            out = parse_caller(c.text, structured=c.constrained)  # the grammar fixed the layout
            text = out.raw.strip()
            problems = list(out.problems)
            if out.action and out.action not in self.names:
                problems.append(
                    f"unknown API name {out.action!r} (use exactly one of: {', '.join(sorted(self.names))})"
                )
            problem = "; ".join(problems)
            self._record(
                trace,
                eid,
                step,
                "caller",
                prompt,
                c,
                {
                    "action": out.action,
                    "arguments": out.arguments,
                    "attempt": attempt,
                    **self._left_out(caller, history, episode.calls),
                },
                problem or None,
            )
            if not problem:
                assert out.action is not None and out.arguments is not None
                call = ToolCall(out.action, out.arguments)
                history.append(turn("caller", caller_text(out.action, out.action_input or "{}")))
                self._execute(trace, eid, step, call, history, episode)
                return
        episode.parse_issues.append(f"step {step}: caller output unusable: {problem}")
        history.append(turn("caller", text))
        history.append(turn("observation", render_observation("", problem)))

    def _loop(
        self,
        history: list[Turn],
        episode: Episode,
        ledger: CostLedger,
        trace: TraceWriter,
        eid: str,
        steps: range,
        conclude: bool,
    ) -> None:
        family = self.roles.family
        for step in steps:
            episode.steps += 1
            final = conclude and step == steps[-1] and self.constrained(self.roles.get("planner"))
            route, thought = self._plan(history, episode, ledger, trace, eid, step, final)
            history.append(turn("assistant", thought))
            if route == "give up":
                episode.status, episode.reason = "gave_up", thought
                return
            if route == "conclusion":
                prompt = summarizer_prompt(
                    self._fit(history, lambda h: summarizer_prompt(h, family=family)),
                    family=family,
                    budget=self.budget,
                )
                c = self._generate("summarizer", self.roles.get("summarizer"), prompt, ledger)
                answer = c.text.strip()
                self._record(trace, eid, step, "summarizer", prompt, c, {"answer": answer})
                history.append(turn("conclusion", answer))
                episode.status, episode.answer = "answered", answer
                episode.concluded_at_budget = final
                return
            self._call(history, thought, episode, ledger, trace, eid, step)
        episode.status, episode.reason = "budget_exhausted", f"no answer after {len(steps)} planner steps"


def arguments_text(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)
