"""What a constrained caller may call: its shortlist and the APIs the episode looped on.

A caller bound with a tool shortlist (`shortlist = k` in its role table) may call only the k tools most relevant
to the query that the episode has not called yet: the grammar shrinks, the prompt still lists every tool.

Real embedded model on llama.cpp, real grammar, greedy. The planner is a script whose thought names the currency
tool, the least relevant one to the query, so a caller that follows its thought (as the trained and bare callers
mostly do) would call it; with `shortlist = 1` the grammar leaves it only the song search, then, once that is
called, the next tool in the ranking.

An API the episode looped on (an exact call made `repeat_limit` times) leaves the constrained caller's grammar, so
the next call is another API instead of a third copy that the repeat guard would refuse. The planner is a script
naming the currency tool at every step; the bare caller follows it with the same arguments each time (asserted),
so the loop is the model's.
"""

from __future__ import annotations

import json

import pytest

from umi.agent import MultiLLMAgent
from umi.agent.base import looped_apis
from umi.format.relevance import relevance_order
from umi.models import ScriptedEngine
from umi.models.base import EngineError
from umi.models.roles import RoleBinding, load_roles
from umi.schema import ToolDoc
from umi.tools.base import Observation, ToolCall

from .conftest import make_roles

TOOLS = [
    ToolDoc(Name="exchange_rate_for_fx", function="Currency exchange rates between two currencies.", input={}),
    ToolDoc(Name="search_songs_for_shazam", function="Search songs and artists by name.", input={"q": "string, name"}),
    ToolDoc(Name="artist_albums_for_shazam", function="Albums of an artist.", input={"artist": "string, artist"}),
]
QUERY = "Find songs by the artist Adele and list the albums of that artist."
THOUGHT = "I will call exchange_rate_for_fx to get the exchange rate. Next: caller."


RATE_QUERY = "What is the exchange rate between euros and dollars?"


class Echo:
    def execute(self, call: ToolCall) -> Observation:
        return Observation(response='{"ok": true}')


@pytest.mark.parametrize("k", [1, 0])
def test_the_caller_calls_only_shortlisted_tools(k: int) -> None:
    roles = load_roles("embedded")
    try:
        assert roles.caller is not None
        roles.caller.shortlist = k
        roles.planner = RoleBinding(ScriptedEngine([THOUGHT, THOUGHT]), constrain=False)
        ep = MultiLLMAgent(roles, TOOLS, Echo(), max_steps=2, max_new_tokens=48, constrain=True).run(QUERY)
        called = [c.name for c in ep.calls]
    finally:
        roles.close()
    assert len(called) == 2
    ranked = [TOOLS[i].Name for i in relevance_order(QUERY, TOOLS)]
    assert ranked[-1] == "exchange_rate_for_fx"  # the thought's tool is the query's least relevant
    if k == 1:  # the ranking's best, then the best not called yet
        assert called == ranked[:2]
    else:  # every tool allowed: the bare caller follows the thought (what the shortlist overrides above)
        assert "exchange_rate_for_fx" in called


def test_a_shortlist_on_a_role_that_calls_no_tools_is_refused_by_name() -> None:
    config = {
        "engines": {"s": {"kind": "scripted", "outputs": ["x"]}},
        "roles": {"planner": {"engine": "s", "shortlist": 2}},
    }
    with pytest.raises(EngineError, match="role 'planner' has shortlist = 2.*only the caller and the backbone"):
        load_roles(config)
    config["roles"] = {"caller": {"engine": "s", "shortlist": -1}}
    with pytest.raises(EngineError, match="whole number >= 0"):
        load_roles(config)


def test_looped_apis_counts_exact_calls_only() -> None:
    a, b = ToolCall("a", {"x": 1}), ToolCall("a", {"x": 2})
    assert looped_apis([a, b], 2) == set()  # the same API with other arguments is not a loop
    assert looped_apis([a, b, a], 2) == {"a"}
    assert looped_apis([a, a], 3) == set()
    assert looped_apis([a, a], 0) == set()  # no repeat guard, no steering


def test_nothing_is_left_out_when_no_other_api_would_remain() -> None:
    roles = make_roles(["x"])
    loop = [ToolCall(TOOLS[0].Name, {})] * 2
    assert MultiLLMAgent(roles, TOOLS, Echo()).looped([], loop) == {TOOLS[0].Name}
    assert MultiLLMAgent(roles, TOOLS[:1], Echo()).looped([], loop) == set()  # the only API: kept
    assert MultiLLMAgent(roles, TOOLS[1:], Echo()).looped([], loop) == set()  # not one of this episode's tools
    assert MultiLLMAgent(roles, TOOLS, Echo(), steer_loops=False).looped([], loop) == set()  # turned off


@pytest.mark.parametrize("repeat_limit", [2, 99])
def test_a_looped_api_leaves_the_callers_grammar(repeat_limit: int, tmp_path) -> None:
    roles = load_roles("embedded")
    trace = tmp_path / "trace.jsonl"
    try:
        roles.planner = RoleBinding(ScriptedEngine([THOUGHT] * 3), constrain=False)
        agent = MultiLLMAgent(
            roles,
            TOOLS,
            Echo(),
            max_steps=3,
            max_new_tokens=48,
            constrain=True,
            repeat_limit=repeat_limit,
            conclude_at_budget=False,
            trace_path=trace,
        )
        ep = agent.run(RATE_QUERY)
    finally:
        roles.close()
    calls = ep.calls
    assert len(calls) == 3
    assert calls[0] == calls[1] and calls[0].name == "exchange_rate_for_fx"  # the model's own loop
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    tool_turns = [r for r in records if r["role"] == "tool"]
    callers = [r for r in records if r["role"] == "caller"]
    if repeat_limit == 2:  # the third call is another API, and it ran
        assert calls[2].name != "exchange_rate_for_fx"
        assert tool_turns[2]["error"] is None
        assert callers[-1]["parsed"]["left_out"] == ["exchange_rate_for_fx"]
        assert "left_out" not in callers[0]["parsed"]
    else:  # no loop yet by this limit: the grammar keeps every API and the model makes its third copy
        assert calls[2] == calls[0]
        assert all("left_out" not in r["parsed"] for r in callers)


def test_a_caller_that_follows_its_thought_may_call_only_the_apis_the_thought_names() -> None:
    """`follow_thought` on the caller's binding: its choices are the APIs the planner's turn names (the looped ones
    still left out), every tool when the turn names none; off, every tool."""
    from umi.schema import Turn

    roles = make_roles([THOUGHT])
    agent = MultiLLMAgent(roles, TOOLS, Echo(), max_steps=1, constrain=True)
    history = [Turn(role="user", value=QUERY), Turn(role="assistant", value=THOUGHT)]
    caller = roles.get("caller")
    assert [d.Name for d in agent.choices(caller, history)] == [t.Name for t in TOOLS]
    caller.follow_thought = True
    assert [d.Name for d in agent.choices(caller, history)] == ["exchange_rate_for_fx"]
    vague = [Turn(role="user", value=QUERY), Turn(role="assistant", value="I will look it up. Next: caller.")]
    assert [d.Name for d in agent.choices(caller, vague)] == [t.Name for t in TOOLS]
    calls = [ToolCall(name="exchange_rate_for_fx", arguments={})] * agent.repeat_limit
    assert "exchange_rate_for_fx" not in [d.Name for d in agent.choices(caller, history, calls)]
