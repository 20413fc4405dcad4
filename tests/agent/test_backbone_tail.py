"""A constrained backbone thought cut by the token cap gets its action block from a second call under the tail
grammar, in the agent and in static evaluation; before, a cut inside the thought's own `Action: <prose>` was read
as a call of an API named by that prose (a hallucination the grammar was meant to rule out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from umi.agent import SingleLLMAgent
from umi.agent.marker import needs_tail
from umi.evaluate.static import run_static
from umi.format import parse_backbone
from umi.format.grammar import backbone_tail_grammar
from umi.models.base import Completion, GenerationParams
from umi.models.roles import RoleBinding, Roles
from umi.schema import ToolDoc
from umi.tools.base import Observation, ToolCall

TOOL = ToolDoc(Name="weather_for_meteo", function="Weather of a city.", input={"city": "string, a city"})
CUT = "I should look up the weather.\nAction: I will call the weather API for Paris and"


class CapEngine:
    """Enforces nothing itself, but reports what a grammar-enforcing engine would: the backbone's first output
    runs into the token cap inside `Action: <prose>`; under the tail grammar it writes an action block of one of
    the grammar's own API names (read off the grammar text, so a wrong grammar gives a wrong call)."""

    name = "cap"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

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
            self.calls.append((prompt, params.grammar))
            grammar = params.grammar or ""
            if grammar.splitlines()[1:2] == ['start: "Action: " api | "conclusion: " answer']:
                name = grammar.split('api: "', 1)[1].split("\\n", 1)[0]
                text, finish = f'Action: {name}\nAction Input: {{"city": "Paris"}}', "stop"
            else:
                text, finish = CUT, "length"
            out.append(Completion(text, 10, 5, 0.0, finish_reason=finish, constrained=params.grammar is not None))
        return out


class Sunny:
    def execute(self, call: ToolCall) -> Observation:
        return Observation(response='{"sky": "clear"}')


def test_the_cut_text_alone_reads_as_a_hallucinated_call() -> None:
    """Why the finishing exists: the parser takes the last `Action:` line as the API name."""
    out = parse_backbone(CUT)
    assert out.kind == "call" and out.action == "I will call the weather API for Paris and"
    assert needs_tail(Completion(CUT, 10, 5, 0.0, finish_reason="length", constrained=True))
    assert not needs_tail(Completion(CUT, 10, 5, 0.0, finish_reason="length", constrained=False))
    assert not needs_tail(Completion(CUT + "\nAction Input: {", 10, 5, 0.0, finish_reason="length", constrained=True))


def test_agent_finishes_a_cut_backbone_thought_with_a_real_call() -> None:
    engine = CapEngine()
    roles = Roles(backbone=RoleBinding(engine, adapter="backbone"))
    agent = SingleLLMAgent(roles, [TOOL], Sunny(), max_steps=1, constrain=True, conclude_at_budget=False)
    episode = agent.run("Weather in Paris?")
    assert len(engine.calls) == 2
    assert engine.calls[1][1] == backbone_tail_grammar([TOOL])
    assert engine.calls[1][0] == engine.calls[0][0] + CUT + "\n"
    assert [(c.name, c.arguments) for c in episode.calls] == [("weather_for_meteo", {"city": "Paris"})]
    assert not episode.parse_issues


def test_static_evaluation_finishes_cut_backbone_thoughts(ood_path: Path, tmp_path: Path) -> None:
    engine = CapEngine()
    roles = Roles(backbone=RoleBinding(engine, adapter="backbone"))
    run = run_static(ood_path, roles, tmp_path, single=True, limit=3, constrain=True)
    rows = [json.loads(line) for line in run.predictions.read_text().splitlines()]
    assert len(rows) == 3 and len(engine.calls) == 6
    for row, (_, grammar) in zip(rows, engine.calls[1::2], strict=True):
        assert grammar is not None and grammar.startswith("%llguidance")
        name = grammar.split('api: "', 1)[1].split("\\n", 1)[0]
        assert f"caller: Action: {name}\nAction Input:" in row["prediction"]
        assert "I will call the weather API for Paris and" not in row["prediction"].split("caller:", 1)[1]


def test_cut_turns_that_share_a_tool_set_are_finished_in_one_call() -> None:
    from umi.agent.marker import finish_backbones

    class Batches(CapEngine):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[int] = []

        def complete(self, prompts: Sequence[str], params: GenerationParams, **kw: object) -> list[Completion]:
            self.batches.append(len(prompts))
            return super().complete(prompts, params)

    other = ToolDoc(Name="news_for_daily", function="News.", input={"topic": "string, a topic"})
    engine = Batches()
    done = finish_backbones(
        RoleBinding(engine, adapter="backbone"),
        ["p0 ", "p1 ", "p2 "],
        [CUT, CUT, CUT],
        [[TOOL], [other], [TOOL]],
        GenerationParams(max_new_tokens=16),
    )
    assert sorted(engine.batches) == [1, 2]
    names = [parse_backbone(d.text).action for d in done]
    assert names == ["weather_for_meteo", "news_for_daily", "weather_for_meteo"]
