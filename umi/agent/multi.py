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
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from umi.agent.budget import TokenCounter, approx_tokens, fit_history
from umi.agent.episode import Episode
from umi.agent.marker import finish_markers, needs_marker
from umi.agent.trace import EventHandler, TraceRecord, TraceWriter
from umi.format import (
    END_OF_TURN,
    PlannerOutput,
    PromptBudget,
    caller_prompt,
    caller_text,
    parse_caller,
    parse_planner,
    planner_prompt,
    planner_text,
    render_observation,
    summarizer_prompt,
    to_tool_doc,
)
from umi.format.grammar import role_grammar
from umi.models.base import Completion, CostLedger, GenerationParams
from umi.models.roles import RoleBinding, Roles
from umi.schema import ToolDoc, ToolSpec, Turn
from umi.tools.base import DEFAULT_MAX_OBSERVATION, Executor, Observation, ToolCall


def turn(role: str, value: str) -> Turn:
    return Turn.model_validate({"from": role, "value": value})


class AgentBase:
    """What the multi-LLM and single-LLM agents share: tools, budgets, traces, cost accounting."""

    def __init__(
        self,
        roles: Roles,
        tools: Sequence[ToolSpec | ToolDoc],
        executor: Executor,
        *,
        max_steps: int = 8,
        max_new_tokens: int = 512,
        context_tokens: int | None = None,
        count_tokens: TokenCounter = approx_tokens,
        max_observation: int | None = DEFAULT_MAX_OBSERVATION,
        trace_path: str | Path | None = None,
        on_event: EventHandler | None = None,
        repeat_limit: int = 2,
        budget: PromptBudget | None = None,
        constrain: bool = False,
        conclude_at_budget: bool = True,
    ) -> None:
        self.roles = roles
        # The prompt budget: given here, or the one the roles were trained with (their manifest's). Under a budget
        # every prompt is rendered by `umi.format` exactly as the training rows were; without one the legacy
        # `context_tokens` fit (oldest observations dropped by an approximate token count) applies.
        self.budget = budget if budget is not None else PromptBudget.from_dict(roles.prompt_budget)
        self.tools = list(tools)
        self.docs: list[ToolDoc] = [to_tool_doc(t) for t in self.tools]
        self.names = {d.Name for d in self.docs}
        self.executor = executor
        self.max_steps = max_steps
        self.params = GenerationParams(max_new_tokens=max_new_tokens, stop=(END_OF_TURN,))
        self.context_tokens = context_tokens
        self.count_tokens = count_tokens
        self.max_observation = max_observation
        self.trace_path = trace_path
        self.on_event = on_event
        self.repeat_limit = repeat_limit
        #: Give every role its grammar (`umi.format.grammar`, built once per tool set); a role bound with
        #: `constrain = false` opts out. The CLI turns this on by default.
        self.constrain = constrain
        #: On the last step of the step budget a constrained planner (or backbone) may only conclude or give up
        #: (`role_grammar(..., final=True)`): a call there would never be read, and the episode ends with the
        #: summarizer's answer from what the history holds instead of no answer (smolagents answers from memory
        #: at its `max_steps` the same way). One-step drivers (DFSDT branches, the chat endpoint) turn it off.
        self.conclude_at_budget = conclude_at_budget

    # -- shared helpers ---------------------------------------------------------------------------------------
    def _params(self, role: str, binding: RoleBinding, final: bool = False) -> GenerationParams:
        """The generation parameters of one role call: the agent's, plus the role's grammar when constrained
        (`final`: the budget's last step, see `conclude_at_budget`)."""
        if not self.constrained(binding):
            return self.params
        return replace(self.params, grammar=role_grammar(role, self.tools, self.roles.family, final=final))

    @staticmethod
    def _final_flag(c: Completion, final: bool) -> dict[str, bool]:
        """The trace's mark of a call made under a final-step grammar."""
        return {"final_step": True} if final and c.constrained else {}

    def constrained(self, binding: RoleBinding) -> bool:
        """Whether `binding`'s calls get their role grammar in this agent."""
        return self.constrain and binding.constrain

    def _generate(
        self, role: str, binding: RoleBinding, prompt: str, ledger: CostLedger, final: bool = False
    ) -> Completion:
        params = self._params(role, binding, final)
        completion = binding.complete([prompt], params)[0]  # raises where a grammar is not enforced
        ledger.add(role, [completion])
        return completion

    def _record(
        self,
        trace: TraceWriter,
        episode_id: str,
        step: int,
        role: str,
        prompt: str,
        c: Completion,
        parsed: dict[str, Any],
        error: str | None = None,
    ) -> None:
        trace.write(
            TraceRecord(
                episode=episode_id,
                step=step,
                role=role,
                prompt=prompt,
                output=c.text,
                parsed=parsed,
                error=error,
                prompt_tokens=c.prompt_tokens,
                cached_tokens=c.cached_tokens,
                prefilled_tokens=c.prefilled_tokens,
                new_tokens=c.new_tokens,
                seconds=c.seconds,
                constrained=c.constrained,
            )
        )

    def _execute(
        self, trace: TraceWriter, episode_id: str, step: int, call: ToolCall, history: list[Turn], episode: Episode
    ) -> Observation:
        """Run a call (with the repeat guard) and append its observation to the history."""
        repeats = sum(1 for c in episode.calls if c == call)
        start = time.perf_counter()
        if repeats >= self.repeat_limit:
            obs = Observation(
                error=f"this exact call to {call.name} was already made {repeats} times; "
                "use another API or other arguments"
            )
        else:
            try:
                obs = self.executor.execute(call)
            except Exception as exc:  # executors should not raise; if one does, the planner still gets to read it
                obs = Observation(error=f"{call.name} failed: {type(exc).__name__}: {exc}")
        episode.calls.append(call)
        text = render_observation(obs.response, obs.error, max_chars=self.max_observation)
        history.append(turn("observation", text))
        trace.write(
            TraceRecord(
                episode=episode_id,
                step=step,
                role="tool",
                tool_call={"name": call.name, "arguments": call.arguments},
                observation=text,
                error=obs.error or None,
                seconds=time.perf_counter() - start,
            )
        )
        return obs

    def _fit(self, history: list[Turn], render: Any) -> list[Turn]:
        if self.budget is not None:
            return history  # the prompt builders apply the budget themselves
        fitted, _ = fit_history(history, render, self.context_tokens, self.count_tokens)
        return fitted

    def run(self, query: str, history: Sequence[Turn] | None = None) -> Episode:
        """Solve `query` (appended as a user turn after `history`, for multi-turn tasks)."""
        turns = [*(history or []), turn("user", query)]
        return self.continue_from(turns, query=query)

    def continue_from(
        self,
        history: Sequence[Turn],
        *,
        query: str = "",
        episode_id: str | None = None,
        first_step: int = 0,
        max_steps: int | None = None,
        conclude_at_budget: bool | None = None,
    ) -> Episode:
        """Go on from a history (DFSDT expands tree nodes this way). Never raises: an engine failure ends the
        episode with status "error" and the reason, after the trace has what happened before it.

        `episode_id` and `first_step` let a search keep one id and a running step count across its branches;
        `max_steps` overrides the agent's step budget for this call, `conclude_at_budget` the agent's setting.
        """
        episode = Episode(query=query or next((t.value for t in history if t.role == "user"), ""))
        ledger = CostLedger()
        trace = TraceWriter(self.trace_path, self.on_event)
        eid = episode_id or uuid.uuid4().hex[:12]
        steps = range(first_step, first_step + (self.max_steps if max_steps is None else max_steps))
        turns = list(history)
        conclude = self.conclude_at_budget if conclude_at_budget is None else conclude_at_budget
        try:
            self._loop(turns, episode, ledger, trace, eid, steps, conclude)
        except Exception as exc:
            episode.status = "error"
            episode.reason = f"{type(exc).__name__}: {exc}"
            trace.write(
                TraceRecord(
                    episode=eid, step=first_step + max(episode.steps - 1, 0), role="agent", error=episode.reason
                )
            )
        finally:
            trace.close()
        episode.history = turns
        episode.costs = ledger.totals
        return episode

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
        """Run `steps`; with `conclude`, the last one may only conclude or give up (where the role is constrained)."""
        raise NotImplementedError


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
            c = self._generate("caller", self.roles.get("caller"), prompt, ledger)
            out = parse_caller(c.text)
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
                {"action": out.action, "arguments": out.arguments, "attempt": attempt},
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
