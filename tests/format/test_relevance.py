"""Tools ordered by relevance to the query (`PromptBudget.tool_order = "query"`): the ranking and the prompts."""

from __future__ import annotations

import pytest

from umi.format import PromptBudget, backbone_prompt, caller_prompt, planner_prompt
from umi.format.relevance import called_apis, query_of, relevance_order, shortlist
from umi.schema import ToolDoc, Turn

TOOLS = [
    ToolDoc(Name="get_weather_for_forecast", function="Current weather and forecast for a city.", input={}),
    ToolDoc(Name="search_songs_for_shazam", function="Search songs and artists by name.", input={"q": "string, name"}),
    ToolDoc(Name="exchange_rate_for_fx", function="Currency exchange rates between two currencies.", input={}),
]
QUERY = "Find me songs by the artist Adele, and search her latest album."
HISTORY = [Turn.model_validate({"from": "user", "value": QUERY})]


def test_the_tool_the_query_names_comes_first_and_ties_keep_the_given_order() -> None:
    assert relevance_order(QUERY, TOOLS)[0] == 1
    assert relevance_order("What is the exchange rate of euro to yen?", TOOLS)[0] == 2
    assert relevance_order("hello", TOOLS) == [0, 1, 2]  # no shared word: the given order
    assert relevance_order(QUERY, []) == []


def test_query_is_the_first_user_turn_of_either_history_form() -> None:
    later = {"from": "user", "value": "a restart"}
    assert query_of([{"from": "system", "value": "x"}, {"from": "user", "value": QUERY}, later]) == QUERY
    assert query_of(HISTORY) == QUERY
    assert query_of([]) == ""


@pytest.mark.parametrize("render", ["planner", "caller", "backbone"])
def test_query_order_reorders_the_tool_lines_of_every_prompt_with_tools(render: str) -> None:
    def prompt(budget: PromptBudget) -> str:
        if render == "planner":
            return planner_prompt(TOOLS, HISTORY, budget=budget)
        if render == "caller":
            history = [*HISTORY, Turn.model_validate({"from": "assistant", "value": "I will search."})]
            return caller_prompt(TOOLS, history, "I will search.", budget=budget)
        return backbone_prompt(TOOLS, HISTORY, budget=budget)

    given, ordered = prompt(PromptBudget()), prompt(PromptBudget(tool_order="query"))
    names = [t.Name for t in TOOLS]
    assert [given.index(f'"Name": "{n}"') for n in names] == sorted(given.index(f'"Name": "{n}"') for n in names)
    first = min(names, key=lambda n: ordered.index(f'"Name": "{n}"'))
    assert first == "search_songs_for_shazam"
    assert len(ordered) == len(given) and sorted(ordered) == sorted(given)  # the same bytes, moved


def test_an_unknown_tool_order_is_refused_by_name_and_old_manifests_keep_the_given_order() -> None:
    with pytest.raises(ValueError, match="tool_order 'random': use one of given, query"):
        PromptBudget(tool_order="random")
    old = {"max_chars": 6000, "observation_chars": 600, "description_chars": 256, "param_chars": 96}
    budget = PromptBudget.from_dict(old)
    assert budget is not None and budget.tool_order == "given"


def test_a_shortlist_keeps_the_k_most_relevant_tools_not_called_yet_in_the_documents_order() -> None:
    finish = ToolDoc(Name="Finish", function="Finish the task and give the answer.", input={})
    tools = [*TOOLS, finish]
    assert [t.Name for t in shortlist(HISTORY, tools, 1)] == ["search_songs_for_shazam"]
    two = [t.Name for t in shortlist(HISTORY, tools, 2)]
    assert len(two) == 2 and "search_songs_for_shazam" in two and "Finish" not in two
    assert [t.Name for t in shortlist(HISTORY, tools, 3)] == [t.Name for t in TOOLS]  # given order kept
    called = [
        *HISTORY,
        Turn.model_validate({"from": "assistant", "value": "Search."}),
        Turn.model_validate({"from": "caller", "value": 'Action: search_songs_for_shazam\nAction Input: {"q": "a"}'}),
    ]
    assert called_apis(called) == {"search_songs_for_shazam"}
    assert "search_songs_for_shazam" not in [t.Name for t in shortlist(called, tools, 2)]  # moved after the rest
    assert [t.Name for t in shortlist(called, TOOLS[1:2], 1)] == ["search_songs_for_shazam"]  # nothing else left
    assert shortlist(called, tools, 0) == tools


def test_thought_tools_are_the_apis_the_thought_names_as_whole_words() -> None:
    from umi.format.relevance import thought_tools
    from umi.schema import ToolDoc

    tools = [ToolDoc(Name=n, function="", input={}) for n in ("search", "search_songs", "albums_for_x", "rate")]
    assert [t.Name for t in thought_tools('I will call "search_songs" and then albums_for_x.', tools)] == [
        "search_songs",
        "albums_for_x",
    ]  # `search` only occurs inside `search_songs`
    assert [t.Name for t in thought_tools("Call search, not the rate API.", tools)] == ["search", "rate"]
    assert thought_tools("I will look for the songs first.", tools) == tools  # names none: every tool
