"""A caller bound with a tool shortlist (`shortlist = k` in its role table) may call only the k tools most relevant
to the query that the episode has not called yet: the grammar shrinks, the prompt still lists every tool.

Real embedded model on llama.cpp, real grammar, greedy. The planner is a script whose thought names the currency
tool, the least relevant one to the query, so a caller that follows its thought (as the trained and bare callers
mostly do) would call it; with `shortlist = 1` the grammar leaves it only the song search, then, once that is
called, the next tool in the ranking.
"""

from __future__ import annotations

import pytest

from umi.agent import MultiLLMAgent
from umi.format.relevance import relevance_order
from umi.models import ScriptedEngine
from umi.models.base import EngineError
from umi.models.roles import RoleBinding, load_roles
from umi.schema import ToolDoc
from umi.tools.base import Observation, ToolCall

TOOLS = [
    ToolDoc(Name="exchange_rate_for_fx", function="Currency exchange rates between two currencies.", input={}),
    ToolDoc(Name="search_songs_for_shazam", function="Search songs and artists by name.", input={"q": "string, name"}),
    ToolDoc(Name="artist_albums_for_shazam", function="Albums of an artist.", input={"artist": "string, artist"}),
]
QUERY = "Find songs by the artist Adele and list the albums of that artist."
THOUGHT = "I will call exchange_rate_for_fx to get the exchange rate. Next: caller."


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
