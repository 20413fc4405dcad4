"""The single-LLM baseline: one backbone model writes thought + action (or the conclusion) in one output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from umi.agent.base import AgentBase, turn
from umi.agent.episode import Episode
from umi.agent.marker import finish_backbones, needs_tail
from umi.agent.trace import TraceWriter
from umi.format import backbone_prompt, caller_text, parse_backbone, planner_text, render_observation
from umi.models.base import CostLedger
from umi.models.roles import Roles
from umi.schema import ToolDoc, ToolSpec, Turn
from umi.tools.base import Executor, ToolCall


class SingleLLMAgent(AgentBase):
    """The same task with one model in the backbone (stage-1) format. The history is kept in the stage-2 layout
    and merged by `umi.format.backbone_prompt`, so both agents share one history representation."""

    def __init__(self, roles: Roles, tools: Sequence[ToolSpec | ToolDoc], executor: Executor, **kwargs: Any) -> None:
        super().__init__(roles, tools, executor, **kwargs)
        roles.get("backbone")  # fail at construction, naming the unbound role

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
        backbone = self.roles.get("backbone")
        for step in steps:
            episode.steps += 1
            final = conclude and step == steps[-1] and self.constrained(backbone)
            prompt = backbone_prompt(
                self.docs,
                self._fit(history, lambda h: backbone_prompt(self.docs, h, family=family)),
                family=family,
                budget=self.budget,
            )
            c = self._generate("backbone", backbone, prompt, ledger, final, history, episode.calls)
            text = c.text
            flag = self._final_flag(c, final)
            if needs_tail(c):  # cut inside the thought: one call under the tail grammar writes the action
                self._record(trace, eid, step, "backbone", prompt, c, {"cut_by_token_cap": True, **flag})
                tools = self.choices(backbone, history, episode.calls)
                done = finish_backbones(backbone, [prompt], [c.text], [tools], self.params, final=final)[0]
                prompt, c, text = done.prompt, done.completion, done.text
                ledger.add("backbone", [c])
            out = parse_backbone(text)
            problems = list(out.problems)
            if out.kind == "call" and out.action and out.action not in self.names:
                problems.append(
                    f"unknown API name {out.action!r} (use exactly one of: {', '.join(sorted(self.names))})"
                )
            self._record(
                trace,
                eid,
                step,
                "backbone",
                prompt,
                c,
                {
                    "kind": out.kind,
                    "action": out.action,
                    "arguments": out.arguments,
                    "answer": out.answer,
                    **flag,
                    **self._left_out(backbone, history, episode.calls),
                },
                "; ".join(problems) or None,
            )
            thought = out.thought or None
            if out.kind == "give up":
                history.append(turn("assistant", planner_text(thought, "give up")))
                episode.status, episode.reason = "gave_up", out.thought
                return
            if out.kind == "conclusion":
                history.append(turn("assistant", planner_text(thought, "conclusion")))
                history.append(turn("conclusion", out.answer or ""))
                episode.status, episode.answer = "answered", out.answer
                episode.concluded_at_budget = final
                return
            history.append(turn("assistant", planner_text(thought, "caller")))
            if problems or out.kind != "call" or out.action is None or out.arguments is None:
                episode.parse_issues.append(f"step {step}: backbone output unusable: {'; '.join(problems)}")
                history.append(turn("caller", out.raw.strip()))
                history.append(turn("observation", render_observation("", "; ".join(problems) or "no action")))
                continue
            history.append(turn("caller", caller_text(out.action, out.action_input or "{}")))
            self._execute(trace, eid, step, ToolCall(out.action, out.arguments), history, episode)
        episode.status, episode.reason = "budget_exhausted", f"no answer after {len(steps)} steps"
