"""What the multi-LLM and single-LLM agents share: the tools and their executor, the step and token budgets, the
trace, the cost ledger and the episode loop's entry points (`run`, `continue_from`). The loops themselves are in
`umi.agent.multi` (α-UMi's planner → caller → summarizer) and `umi.agent.single` (one backbone).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from umi.agent.budget import TokenCounter, approx_tokens, fit_history
from umi.agent.episode import Episode
from umi.agent.trace import EventHandler, TraceRecord, TraceWriter
from umi.format import (
    END_OF_TURN,
    PromptBudget,
    render_observation,
    to_tool_doc,
)
from umi.format.docs import ToolLike
from umi.format.grammar import role_grammar
from umi.format.relevance import shortlist, thought_tools
from umi.models.base import Completion, CostLedger, GenerationParams
from umi.models.roles import RoleBinding, Roles
from umi.schema import ToolDoc, ToolSpec, Turn
from umi.tools.base import DEFAULT_MAX_OBSERVATION, Executor, Observation, ToolCall


def turn(role: str, value: str) -> Turn:
    return Turn.model_validate({"from": role, "value": value})


def looped_apis(calls: Sequence[ToolCall], limit: int) -> set[str]:
    """The APIs one of whose exact calls (name and arguments) appears `limit` or more times in `calls`."""
    if limit <= 0:
        return set()
    return {c.name for i, c in enumerate(calls) if sum(1 for d in calls[i:] if d == c) >= limit}


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
        steer_loops: bool = True,
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
        #: Leave an API the episode looped on out of the constrained caller's grammar (`looped`); off, only the
        #: repeat guard refuses the copies (for tools whose identical calls are meant to repeat, such as polling).
        self.steer_loops = steer_loops

    # -- shared helpers ---------------------------------------------------------------------------------------
    def _params(
        self,
        role: str,
        binding: RoleBinding,
        final: bool = False,
        history: Sequence[Turn] = (),
        calls: Sequence[ToolCall] = (),
    ) -> GenerationParams:
        """The generation parameters of one role call: the agent's, plus the role's grammar when constrained
        (`final`: the budget's last step, see `conclude_at_budget`; `history`: what a shortlist ranks by; `calls`:
        the episode's calls so far, see `choices`)."""
        if not self.constrained(binding):
            return self.params
        tools = self.choices(binding, history, calls)
        return replace(self.params, grammar=role_grammar(role, tools, self.roles.family, final=final))

    def looped(self, history: Sequence[Turn], calls: Sequence[ToolCall]) -> set[str]:
        """The APIs `choices` leaves out at this step: those the episode looped on (`looped_apis` over `calls`: an
        exact call made `repeat_limit` times), or none where no other API would remain. The chat endpoint, whose
        client runs the tools, reads the calls from `history` instead (`umi.serve.chat_step`)."""
        if not self.steer_loops:
            return set()
        looped = looped_apis(calls, self.repeat_limit) & self.names
        if not any(d.Name not in looped and d.Name != "Finish" for d in self.docs):
            return set()
        return looped

    def choices(
        self, binding: RoleBinding, history: Sequence[Turn] = (), calls: Sequence[ToolCall] = ()
    ) -> list[ToolLike]:
        """The tools a constrained caller (or backbone) may name at this step: every tool less the APIs the
        episode looped on (`looped`), then, for a caller that follows its thought, those the planner's thought names
        (`thought_tools`; all of them when it names none of them), then the binding's shortlist.

        Why: refusing a repeat after the fact (`_execute`) only tells the planner, and a 135M planner reads the
        refusal and names the same API again (the demo's music scenario did so until its step budget ran out).
        Leaving the API out of the grammar makes the next call another API — the change of course the refusal
        asks for. Unconstrained roles keep the refusal alone."""
        looped = self.looped(history, calls)
        tools = [t for t, d in zip(self.tools, self.docs, strict=True) if d.Name not in looped]
        if binding.follow_thought and history and history[-1].role == "assistant":  # the caller's planner turn
            tools = thought_tools(history[-1].value, tools)
        return shortlist(history, tools, binding.shortlist)  # all of them unless the binding has a shortlist

    def _left_out(
        self, binding: RoleBinding, history: Sequence[Turn], calls: Sequence[ToolCall]
    ) -> dict[str, list[str]]:
        """The trace's mark of a call whose grammar left out looped APIs (see `choices`)."""
        looped = self.looped(history, calls) if self.constrained(binding) else set()
        return {"left_out": sorted(looped)} if looped else {}

    @staticmethod
    def _final_flag(c: Completion, final: bool) -> dict[str, bool]:
        """The trace's mark of a call made under a final-step grammar."""
        return {"final_step": True} if final and c.constrained else {}

    def constrained(self, binding: RoleBinding) -> bool:
        """Whether `binding`'s calls get their role grammar in this agent."""
        return self.constrain and binding.constrain

    def _generate(
        self,
        role: str,
        binding: RoleBinding,
        prompt: str,
        ledger: CostLedger,
        final: bool = False,
        history: Sequence[Turn] = (),
        calls: Sequence[ToolCall] = (),
    ) -> Completion:
        params = self._params(role, binding, final, history, calls)
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
