"""The announcement's two scenarios, runnable offline.

* **music** — a music lover explores genres and artists with Deezer and Shazam. Shazam's tool documents come from
  StableToolBench (`G1_instruction.json`); no Deezer document exists there, so umi ships one written from
  Deezer's public API (genre list, genre artists, search, artist, track).
* **landscape** — the real StableToolBench query asking for the most viewed landscape-drawing tutorial and its
  channel, with "Simple YouTube Search". Its Video API (`video_for_simple_youtube_search`) is broken here and
  answers with an error: the planner has to notice and switch to another API.

Responses come from a replay file recorded for the demo; arguments it has not recorded get that API's first
recorded response (so a small model's slightly different arguments still see a realistic observation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles
from umi.paths import shared_data
from umi.schema import ToolSpec
from umi.tools import FaultyExecutor, ReplayCache, from_api_list
from umi.tools.base import Executor

BROKEN_VIDEO_API = "video_for_simple_youtube_search"
BROKEN_MESSAGE = "API not working error: 503 Service Unavailable. The Video endpoint is down."
QUERY_FILES = "stabletoolbench/solvable_queries/test_instruction"


@dataclass
class Scenario:
    name: str
    query: str
    tools: list[ToolSpec]
    executor: Executor
    broken: dict[str, str]


def _asset(name: str) -> Any:
    return json.loads(resources.files("umi").joinpath("assets", "demo", name).read_text(encoding="utf-8"))


def shared_data_dir() -> Path:
    """`../shared/data` beside the checkout, or `UMI_SHARED_DATA` (see `umi.paths`)."""
    return shared_data()


def _api_list(tool_name: str, group: str) -> list[dict[str, Any]]:
    path = shared_data_dir() / QUERY_FILES / f"{group}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: the demo reads StableToolBench tool documents from ../shared/data "
            "(set UMI_SHARED_DATA to its location)"
        )
    for query in json.loads(path.read_text(encoding="utf-8")):
        apis = [a for a in query["api_list"] if a["tool_name"] == tool_name]
        if apis:
            return apis
    raise ValueError(f"no '{tool_name}' tool in {path}")


def _replay(specs: list[ToolSpec]) -> ReplayCache:
    def first_recorded(spec: ToolSpec, args: dict[str, Any], examples: list[tuple[dict[str, Any], str]]) -> str:
        if examples:
            return examples[0][1]
        return json.dumps({"message": f"no recorded response for {spec.name}"})

    cache = ReplayCache(specs, miss="simulate", simulator=first_recorded)
    for api, calls in _asset("replay.json")["cache"].items():
        for args, response in calls.items():
            cache.add(api, args, response)
    return cache


def _landscape() -> Scenario:
    path = shared_data_dir() / QUERY_FILES / "G1_tool.json"
    query = (
        next(q for q in json.loads(path.read_text(encoding="utf-8")) if "draw landscapes" in q["query"])
        if path.exists()
        else None
    )
    if query is None:
        raise FileNotFoundError(f"{path} not found: set UMI_SHARED_DATA to the shared data folder")
    tools = from_api_list(query["api_list"])
    broken = {BROKEN_VIDEO_API: BROKEN_MESSAGE}
    return Scenario("landscape", query["query"], tools, FaultyExecutor(_replay(tools), broken), broken)


def _music() -> Scenario:
    tools = [ToolSpec.model_validate(t) for t in _asset("deezer_tools.json")]
    tools += from_api_list(_api_list("Shazam", "G1_instruction"))
    query = (
        "I love discovering music. Show me the music genres on Deezer, the most popular rock artists, and then "
        "use Shazam to get the top tracks of the leading rock artist and some similar tracks I might enjoy."
    )
    return Scenario("music", query, tools, _replay(tools), {})


SCENARIOS = {"music": _music, "landscape": _landscape}


def build_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]()


def scripted_roles(name: str) -> Roles:
    """Roles that play the hand-written script of a scenario (not model output; labelled so wherever shown)."""
    script = _asset("scripted.json")[name]
    return Roles(
        planner=RoleBinding(ScriptedEngine(script["planner"], name="scripted"), label="scripted"),
        caller=RoleBinding(ScriptedEngine(script["caller"], name="scripted"), label="scripted"),
        summarizer=RoleBinding(ScriptedEngine(script["summarizer"], name="scripted"), label="scripted"),
    )
