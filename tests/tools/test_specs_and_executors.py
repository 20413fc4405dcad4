"""Tool schemas from every source, executors that turn every failure into an observation, the replay cache."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from umi.schema import ToolSpec
from umi.tools import (
    FaultyExecutor,
    HTTPExecutor,
    PythonExecutor,
    ReplayCache,
    ToolBenchServerExecutor,
    ToolCall,
    from_api_list,
    from_openai_function,
    from_openapi,
    load_tools,
    tool,
)


def test_api_list_uses_toolbench_names(shared_data: Path) -> None:
    queries = json.loads((shared_data / "stabletoolbench/solvable_queries/test_instruction/G1_tool.json").read_text())
    q = next(x for x in queries if "landscape" in x["query"])
    specs = from_api_list(q["api_list"])
    names = [s.name for s in specs]
    assert "video_for_simple_youtube_search" in names and "search_for_simple_youtube_search" in names
    search = next(s for s in specs if s.name == "search_for_simple_youtube_search")
    assert search.required == ["query"] and search.param("safesearch") is not None
    assert search.meta["tool_name"] == "Simple YouTube Search" and search.meta["api_name"] == "Search"
    assert search.description.startswith('This is the subfunction for tool "simple_youtube_search"')


def test_every_stabletoolbench_api_list_converts(shared_data: Path) -> None:
    total = 0
    for f in sorted((shared_data / "stabletoolbench/solvable_queries/test_instruction").glob("*.json")):
        for q in json.loads(f.read_text()):
            specs = from_api_list(q["api_list"])
            assert all(len(s.name) <= 64 for s in specs)
            total += len(specs)
    assert total > 3000


def test_openai_and_openapi(shared_data: Path) -> None:
    spec = from_openai_function(
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "integer", "enum": [1, 2]}, "b": {"type": "string"}},
                    "required": ["a"],
                },
            },
        }
    )
    assert spec.name == "f" and spec.required == ["a"] and spec.param("a").enum == [1, 2]  # type: ignore[union-attr]
    tools = json.loads((shared_data / "toolalpaca/data/eval_simulated.json").read_text())
    all_specs = [s for t in tools for s in from_openapi(t["Documentation"])]
    assert len(all_specs) >= 10
    assert all(s.meta["method"] in ("GET", "POST", "PUT", "DELETE", "PATCH") for s in all_specs)
    assert any(s.parameters for s in all_specs)


def test_tool_decorator_reads_signature_and_docstring() -> None:
    @tool
    def weather(city: str, days: int = 1) -> str:
        """Forecast for a city.

        Args:
            city: the city name
            days: how many days
        """
        return f"{city}:{days}"

    spec: ToolSpec = weather.spec  # type: ignore[attr-defined]
    assert spec.description == "Forecast for a city."
    assert [(p.name, p.type, p.required, p.description) for p in spec.parameters] == [
        ("city", "string", True, "the city name"),
        ("days", "integer", False, "how many days"),
    ]


def test_python_executor_never_raises() -> None:
    @tool
    def boom(x: int) -> str:
        """Boom."""
        raise ValueError("bad x")

    ex = PythonExecutor([boom])
    assert "boom failed: ValueError: bad x" in ex.execute(ToolCall("boom", {"x": 1})).error
    assert "No such function name: bam" in ex.execute(ToolCall("bam", {})).error
    assert "missing required parameter(s) x" in ex.execute(ToolCall("boom", {})).error
    assert "bad arguments" in ex.execute(ToolCall("boom", {"x": 1, "y": 2})).error
    assert "empty API name" in ex.execute(ToolCall("", {})).error


def test_http_executor_errors_and_retries() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if request.url.path == "/flaky" and calls["n"] == 1:
            return httpx.Response(503)
        if request.url.path == "/missing":
            return httpx.Response(404, text="nope")
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("slow")
        return httpx.Response(200, text=json.dumps({"q": request.url.params.get("q")}))

    specs = [
        ToolSpec(name=n, meta={"method": "GET", "path": f"/{n}", "server": "http://api.test"})
        for n in ("flaky", "missing", "slow")
    ]
    ex = HTTPExecutor(specs, transport=httpx.MockTransport(handler), retries=1)
    assert ex.execute(ToolCall("flaky", {"q": "a"})).response == '{"q": "a"}'
    assert ex.execute(ToolCall("missing", {})).error.startswith("HTTP 404")
    assert "timeout" in ex.execute(ToolCall("slow", {})).error


def test_toolbench_protocol_executor() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        return httpx.Response(200, json={"error": "", "response": "{'ok': 1}"})

    spec = ToolSpec(
        name="video_for_simple_youtube_search",
        meta={"category": "Data", "tool_name": "Simple YouTube Search", "api_name": "Video"},
    )
    ex = ToolBenchServerExecutor("http://server.test/virtual", [spec], transport=httpx.MockTransport(handler))
    obs = ex.execute(ToolCall(spec.name, {"search": "x"}))
    assert obs.response == "{'ok': 1}" and obs.ok
    assert seen["api_name"] == "Video" and json.loads(seen["tool_input"]) == {"search": "x"}
    assert set(seen) == {"category", "tool_name", "api_name", "tool_input", "strip", "toolbench_key"}


def test_replay_cache_from_recorded(shared_data: Path) -> None:
    cache = ReplayCache.from_recorded(shared_data / "alpha_umi/derived_ood_observation_cache.json")
    # 795 recorded (API, raw Action Input) pairs; 9 differ only in JSON whitespace and normalise together
    assert len(cache) == 786
    recorded = json.loads((shared_data / "alpha_umi/derived_ood_observation_cache.json").read_text())["cache"]
    # every one of the 795 recorded calls replays its own recorded response, whatever its JSON whitespace
    replayed = [
        (cache.execute(ToolCall(api, json.loads(raw))), response)
        for api, calls in recorded.items()
        for raw, response in calls.items()
    ]
    assert len(replayed) == 795
    assert all(obs.ok and obs.response == response for obs, response in replayed)
    assert cache.hits == 795 and cache.misses == 0
    api = next(iter(recorded))
    miss = cache.execute(ToolCall(api, {"never": "seen"}))
    assert miss.error == f"no recorded response for {api} with these arguments" and not miss.ok


def test_replay_cache_normalises_and_simulates() -> None:
    spec = ToolSpec(name="a")
    seen = []

    def sim(s: ToolSpec, args: dict, examples: list) -> str:
        seen.append((s.name, args, examples))
        return '{"simulated": true}'

    cache = ReplayCache([spec], miss="simulate", simulator=sim)
    cache.add("a", '{"y": 2, "x": 1}', "recorded")
    assert cache.execute(ToolCall("a", {"x": 1, "y": 2})).response == "recorded"
    assert cache.execute(ToolCall("a", {"x": 3})).response == '{"simulated": true}'
    assert seen[0][2] == [({"x": 1, "y": 2}, "recorded")]
    assert cache.execute(ToolCall("a", {"x": 3})).response == '{"simulated": true}' and len(seen) == 1


def test_faulty_executor_and_load_tools(tmp_path: Path) -> None:
    inner = ReplayCache()
    inner.add("ok", {}, "fine")
    ex = FaultyExecutor(inner, {"bad": "API not working"})
    assert ex.execute(ToolCall("bad", {})).error == "API not working"
    assert ex.execute(ToolCall("ok", {})).response == "fine"
    p = tmp_path / "tools.json"
    p.write_text(json.dumps([{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}]))
    assert load_tools(p)[0].name == "f"
