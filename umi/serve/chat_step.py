"""One chat request = one α-UMi decision: the planner thinks on the history; the caller names a call the client
should run, or the summarizer answers, or the planner gives up.

The roles run through `MultiLLMAgent` itself (its planner retries, marker fallback, caller validation and JSON
repair), one planner step at a time, with an executor that only captures the call: the client runs tools, not
the server. When the caller's output is unusable, the failed attempt stays in this request's history (the
planner reads it, as in a full episode) and the step is tried again, up to `attempts` times.

`tool_choice` is honoured by routing and by the tool set the caller is shown:
- `none`: a caller route is turned into a conclusion (the summarizer answers from the history);
- `required`: a conclusion or give-up route is turned into a caller route;
- a named function: a caller route, and the caller sees that one tool only (its prompt documents, its name
  check, and any output grammar built from them).
With output grammars on (`agent_options={"constrain": True}`, where the agent has them) the caller's grammar is
built from that narrowed tool set, which makes `required` and named calls exact. Without them a weak caller can
still fail to write a valid call under `required`; the step then
ends with `kind == "no_call"` and the reason. With them, an API the client's task has looped on (the same call
`repeat_limit` times since the last user message) leaves the caller's grammar, as in a server-side episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from umi.agent import MultiLLMAgent
from umi.agent.trace import TraceRecord
from umi.format import planner_text, strip_marker, to_tool_doc
from umi.format.parse import parse_caller
from umi.models.roles import Roles
from umi.schema import ToolSpec, Turn
from umi.tools.base import Observation, ToolCall

StepKind = Literal["tool_call", "answer", "gave_up", "no_call", "error"]


class _CaptureExecutor:
    """Records the call instead of running it: the client executes tools in the OpenAI protocol."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    def execute(self, call: ToolCall) -> Observation:
        self.calls.append(call)
        return Observation(response="")


class _RoutedAgent(MultiLLMAgent):
    """The α-UMi agent with a route the request may force and a tool set the caller may be limited to."""

    def __init__(self, *args: Any, force_route: str | None, caller_tools: Sequence[ToolSpec] | None, **kw: Any):
        super().__init__(*args, **kw)
        self.force_route = force_route
        self.caller_tools = list(caller_tools) if caller_tools is not None else None

    def _plan(
        self, history: list[Turn], episode: Any, ledger: Any, trace: Any, eid: str, step: int, final: bool = False
    ) -> tuple[str, str]:
        route, thought = super()._plan(history, episode, ledger, trace, eid, step, final)
        forced = self.force_route
        if forced == "conclusion" and route == "caller" or forced == "caller" and route != "caller":
            return forced, planner_text(strip_marker(thought) or None, forced)
        return route, thought

    def looped(self, history: Sequence[Turn], calls: Sequence[ToolCall]) -> set[str]:
        """The agent's rule (`AgentBase.looped`) over the client's calls: the client runs the tools, so what this
        task has called is in the history (its caller turns since the last user message), not in the episode."""
        return super().looped(history, client_calls(history))

    def _call(self, history: list[Turn], thought: str, *args: Any) -> None:
        if self.caller_tools is None:
            return super()._call(history, thought, *args)
        saved = self.tools, self.docs, self.names
        self.tools = list(self.caller_tools)
        self.docs = [to_tool_doc(t) for t in self.tools]
        self.names = {d.Name for d in self.docs}
        try:
            super()._call(history, thought, *args)
        finally:
            self.tools, self.docs, self.names = saved


def client_calls(history: Sequence[Turn]) -> list[ToolCall]:
    """The calls of the history's caller turns after its last user turn (the client's current task)."""
    start = max((i for i, t in enumerate(history) if t.role == "user"), default=-1) + 1
    out: list[ToolCall] = []
    for t in history[start:]:
        if t.role != "caller":
            continue
        call = parse_caller(t.value, structured=True)  # `translate` wrote it with `caller_text`: its layout
        if call.ok and call.action is not None and call.arguments is not None:
            out.append(ToolCall(call.action, call.arguments))
    return out


@dataclass
class StepResult:
    """What the roles decided, with every role's cost and trace record (for usage and logs)."""

    kind: StepKind
    thought: str = ""
    call: ToolCall | None = None
    answer: str = ""
    reason: str = ""
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    records: list[TraceRecord] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return int(sum(c.get("prompt_tokens", 0) for c in self.costs.values()))

    @property
    def completion_tokens(self) -> int:
        return int(sum(c.get("new_tokens", 0) for c in self.costs.values()))


def _add_costs(total: dict[str, dict[str, float]], more: dict[str, dict[str, float]]) -> None:
    for role, cost in more.items():
        t = total.setdefault(role, {})
        for k, v in cost.items():
            t[k] = t.get(k, 0) + v


def decide(
    roles: Roles,
    tools: Sequence[ToolSpec],
    history: Sequence[Turn],
    *,
    tool_choice: str = "auto",
    named: str | None = None,
    max_new_tokens: int = 256,
    attempts: int = 3,
    agent_options: dict[str, Any] | None = None,
) -> StepResult:
    """Run the roles on `history` until they name a call, answer or give up (at most `attempts` planner steps).

    `agent_options` go to the agent as they are (e.g. `constrain=True` where the agent has output grammars)."""
    force = {"none": "conclusion", "required": "caller"}.get(tool_choice)
    caller_tools = None
    if named is not None:
        force = "caller"
        caller_tools = [t for t in tools if t.name == named]
    if not tools:
        force = "conclusion"
    executor = _CaptureExecutor()
    records: list[TraceRecord] = []
    agent = _RoutedAgent(
        roles,
        tools,
        executor,
        force_route=force,
        caller_tools=caller_tools,
        max_steps=1,
        max_new_tokens=max_new_tokens,
        on_event=records.append,
        **{**(agent_options or {}), "conclude_at_budget": False},  # one step per request: the client's loop ends it
    )
    result = StepResult(kind="no_call", records=records)
    turns = list(history)
    for _ in range(attempts):
        episode = agent.continue_from(turns)
        _add_costs(result.costs, episode.costs)
        planner = [r for r in records if r.role == "planner"]
        result.thought = planner[-1].output if planner else ""
        if episode.status == "error":
            result.kind, result.reason = "error", episode.reason
            return result
        if episode.status == "answered":
            result.kind, result.answer = "answer", episode.answer or ""
            result.thought = next((t.value for t in reversed(episode.history) if t.role == "assistant"), "")
            return result
        if episode.status == "gave_up":
            result.kind, result.reason = "gave_up", strip_marker(episode.reason)
            return result
        if executor.calls:
            result.kind, result.call = "tool_call", executor.calls[-1]
            result.thought = next((t.value for t in reversed(episode.history) if t.role == "assistant"), "")
            return result
        result.reason = "; ".join(episode.parse_issues) or "the caller wrote no usable call"
        turns = episode.history  # the failed call and its error observation: the planner reads them next time
    return result
