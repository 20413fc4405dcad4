"""A constrained planner thought cut by the token cap gets its route marker from a second, marker-only call."""

from __future__ import annotations

from collections.abc import Sequence

from umi.agent import MultiLLMAgent
from umi.format import NEXT_CALLER
from umi.format.grammar import marker_grammar
from umi.models.base import Completion, GenerationParams
from umi.models.roles import RoleBinding, Roles
from umi.schema import ToolDoc
from umi.tools.base import Observation, ToolCall

TOOL = ToolDoc(Name="weather_for_meteo", function="Weather of a city.", input={"city": "string, a city"})


class CapEngine:
    """Enforces nothing itself, but reports what a grammar-enforcing engine would: the planner's first output runs
    into the token cap mid-thought; under the marker-only grammar it writes the marker."""

    name = "cap"

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, str | None]] = []

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
    ) -> list[Completion]:
        out = []
        for prompt in prompts:
            self.calls.append((adapter, prompt, params.grammar))
            if adapter == "planner" and params.grammar == marker_grammar():
                text, finish = NEXT_CALLER, "stop"
            elif adapter == "planner":
                text, finish = "I should look up the weather of Paris and then", "length"
            elif adapter == "caller":
                text, finish = 'Action: weather_for_meteo\nAction Input: {"city": "Paris"}', "stop"
            else:
                text, finish = "It is sunny.", "stop"
            out.append(Completion(text, 10, 5, 0.0, finish_reason=finish, constrained=params.grammar is not None))
        return out


class Sunny:
    def execute(self, call: ToolCall) -> Observation:
        return Observation(response='{"sky": "clear"}')


def test_cut_thought_gets_its_marker_and_the_call_follows() -> None:
    engine = CapEngine()
    roles = Roles(**{r: RoleBinding(engine, adapter=r) for r in ("planner", "caller", "summarizer")})
    agent = MultiLLMAgent(roles, [TOOL], Sunny(), max_steps=1, constrain=True, conclude_at_budget=False)
    episode = agent.run("Weather in Paris?")
    planner_calls = [c for c in engine.calls if c[0] == "planner"]
    assert len(planner_calls) == 2
    assert planner_calls[1][2] == marker_grammar()
    assert planner_calls[1][1] == planner_calls[0][1] + "I should look up the weather of Paris and then\n "
    assert [c.name for c in episode.calls] == ["weather_for_meteo"]
    assistant = [t.value for t in episode.history if t.role == "assistant"]
    assert assistant == ["I should look up the weather of Paris and then\n " + NEXT_CALLER]
    assert not episode.parse_issues


def test_unconstrained_cut_thought_keeps_the_default_route_and_says_so() -> None:
    engine = CapEngine()
    roles = Roles(**{r: RoleBinding(engine, adapter=r) for r in ("planner", "caller", "summarizer")})
    episode = MultiLLMAgent(roles, [TOOL], Sunny(), max_steps=1, constrain=False).run("Weather in Paris?")
    assert len([c for c in engine.calls if c[0] == "planner"]) == 1
    assert episode.parse_issues and "no Next: marker" in episode.parse_issues[0]
