"""Server-side runs: a run against recorded tools stored with its steps and streamed as SSE; an MCP server as
the run's tool source; the run store surviving a killed server; trace files shown as runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from umi.serve.run_store import RunStore

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _replay(tmp_path: Path, **responses: str) -> str:
    path = tmp_path / "replay.json"
    cache = {"get_weather": {json.dumps({"city": c}): r for c, r in responses.items()}}
    path.write_text(json.dumps({"cache": cache}), encoding="utf-8")
    return str(path)


def _wait_done(url: str, run_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = httpx.get(f"{url}/v1/runs/{run_id}").json()
        if run["done"]:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def _sse(url: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("GET", url + path, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line[5:].strip())))
    return events


def test_run_with_replayed_tools_streams_and_stores_steps(agent_server, kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = {"replay": _replay(tmp_path, Paris="sunny, 21 C"), "tools": [WEATHER]}
    with agent_server(kit.scripted_roles(latency=0.05)) as url:
        created = httpx.post(f"{url}/v1/runs", json={"query": "What is the weather in Paris?", "tool_source": source})
        assert created.status_code == 200, created.text
        run_id = created.json()["id"]
        events = _sse(url, f"/v1/runs/{run_id}/events")  # opened while the run is in flight
        run = _wait_done(url, run_id)
        listed = httpx.get(f"{url}/v1/runs").json()["data"]
    assert run["status"] == "answered" and run["answer"] == "Answer for Paris: sunny, 21 C"
    roles = [s["role"] for s in run["steps"]]
    assert roles == ["planner", "caller", "tool", "planner", "summarizer"]
    assert run["steps"][2]["observation"] == "sunny, 21 C"
    assert run["costs"]["planner"]["calls"] == 2
    steps = [e for kind, e in events if kind == "step"]
    assert [s["seq"] for s in steps] == list(range(5)) and [s["role"] for s in steps] == roles
    assert events[-1][0] == "end" and events[-1][1]["status"] == "answered"
    assert listed[0]["id"] == run_id and listed[0]["records"] == 5


def test_run_requests_are_checked(agent_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with agent_server() as url:
        cases = [
            ({"query": "x", "tool_source": {}}, "tool_source"),
            ({"query": "x", "tool_source": {"demo": "music", "mcp": "http://127.0.0.1:1/mcp"}}, "tool_source"),
            ({"query": "x", "tool_source": {"mcp": "python server.py"}}, "tool_source.mcp"),
            ({"query": "x", "tool_source": {"replay": "r.json"}}, "tool_source.tools"),
            ({"query": "", "tool_source": {"demo": "music"}}, "query"),
            ({"query": "x", "tool_source": {"demo": "jazz"}}, "tool_source.demo"),
        ]
        for body, param in cases:
            r = httpx.post(f"{url}/v1/runs", json=body)
            assert r.status_code == 400 and r.json()["error"]["param"] == param, (body, r.text)
        # a source that cannot be opened ends its run with the reason; the server stays up
        broken = {"replay": str(tmp_path / "missing.json"), "tools": [WEATHER]}
        run_id = httpx.post(f"{url}/v1/runs", json={"query": "x", "tool_source": broken}).json()["id"]
        run = _wait_done(url, run_id)
        assert run["status"] == "error" and "missing.json" in run["reason"]


MCP_SERVER = textwrap.dedent(
    '''
    from mcp.server.mcpserver import MCPServer
    server = MCPServer("weather")

    @server.tool()
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        return f"{city} is foggy"

    server.run()
    '''
)


def test_run_with_an_mcp_server(agent_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "mcp_weather.py"
    script.write_text(MCP_SERVER, encoding="utf-8")
    with agent_server(allow_commands=True) as url:
        body = {"query": "What is the weather in Lisbon?", "tool_source": {"mcp": f"{sys.executable} {script}"}}
        run = _wait_done(url, httpx.post(f"{url}/v1/runs", json=body).json()["id"], timeout=60)
    assert run["status"] == "answered" and run["answer"] == "Answer for Lisbon: Lisbon is foggy"
    assert run["source"].startswith("mcp: ")


def test_trace_files_open_as_runs(agent_server, kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from umi.agent import MultiLLMAgent
    from umi.tools import ReplayCache, from_openai_function

    traces = tmp_path / "traces"
    spec = from_openai_function(WEATHER)
    tools = ReplayCache.from_recorded(_replay(tmp_path, Quito="warm"), specs=[spec])
    MultiLLMAgent(kit.scripted_roles(), [spec], tools, trace_path=traces / "quito.jsonl").run("weather in Quito?")
    with agent_server(traces_dir=traces) as url:
        run = httpx.get(f"{url}/v1/runs/trace-quito").json()
    assert run["status"] == "answered" and run["answer"] == "Answer for Quito: warm"
    assert [s["role"] for s in run["steps"]] == ["planner", "caller", "tool", "planner", "summarizer"]


LAUNCHER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from conftest import scripted_roles
    from umi.cli.serve import bind, serve
    from umi.serve.agent_server import create_agent_app
    from umi.serve.run_store import RunStore

    def slow(prompt, adapter):
        # a planner that never concludes: the run is still going when the server is killed
        n = prompt.count("observation: ")
        if adapter == "planner":
            return f"Look up city number {n}.\\n Next: caller."
        return 'Action: get_weather\\nAction Input: {"city": "C%d"}' % n

    app = create_agent_app(scripted_roles(slow, latency=0.15), store=RunStore(sys.argv[1]))
    serve(app, bind("127.0.0.1", int(sys.argv[2])))  # what `umi serve agent` runs
    """
)


def _start(launcher: Path, db: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(launcher), str(db), str(port), str(Path(__file__).parent)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start")


def test_server_killed_mid_run_keeps_every_recorded_step(kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    launcher, db = tmp_path / "launch.py", tmp_path / "runs.sqlite"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    port = kit.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(launcher, db, port)
    try:
        source = {"replay": _replay(tmp_path), "tools": [WEATHER]}
        body = {"query": "weather everywhere", "tool_source": source, "max_steps": 40}
        run_id = httpx.post(f"{url}/v1/runs", json=body).json()["id"]
        deadline = time.time() + 30
        while len(httpx.get(f"{url}/v1/runs/{run_id}").json()["steps"]) < 7 and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # what the dead server had committed, read straight from the file
    before = RunStore(db).steps(run_id)
    assert len(before) >= 7
    proc = _start(launcher, db, port)
    try:
        run = httpx.get(f"{url}/v1/runs/{run_id}").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0  # SIGTERM: a clean stop
    assert run["status"] == "interrupted" and run["done"]
    assert run["steps"] == before
    assert [s["role"] for s in run["steps"][:3]] == ["planner", "caller", "tool"]


def test_run_against_a_toolbench_server(agent_server, kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The tool source is a ToolBench-protocol server (umi's own StableToolBench server, on loopback)."""
    from umi.serve.store import CacheStore
    from umi.serve.tool_server import create_app

    api = {
        "category_name": "Weather",
        "tool_name": "Weather Station",
        "api_name": "current",
        "api_description": "Current weather.",
        "required_parameters": [{"name": "city", "type": "STRING"}],
    }
    tools_file = tmp_path / "api_list.json"
    tools_file.write_text(json.dumps([api]), encoding="utf-8")
    cache = CacheStore(tmp_path / "cache.jsonl")
    cache.put("current_for_weather_station", {"city": "Porto"}, {"error": "", "response": "Porto: windy"})
    with kit.serving(create_app(cache)) as tool_url, agent_server() as url:
        source = {"toolbench_url": tool_url + "/virtual", "tools_file": str(tools_file)}
        body = {"query": "What is the weather in Porto?", "tool_source": source}
        run = _wait_done(url, httpx.post(f"{url}/v1/runs", json=body).json()["id"])
    assert run["status"] == "answered" and run["answer"] == "Answer for Porto: Porto: windy"
    assert run["steps"][2]["tool_call"] == {"name": "current_for_weather_station", "arguments": {"city": "Porto"}}


def test_run_a_demo_scenario(agent_server, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    from umi.demo import build_scenario, scripted_roles

    query = build_scenario("landscape").query
    with agent_server(scripted_roles("landscape")) as url:
        body = {"query": query, "tool_source": {"demo": "landscape"}}
        run = _wait_done(url, httpx.post(f"{url}/v1/runs", json=body).json()["id"])
    assert run["status"] == "answered" and "Art Lessons With Leah" in run["answer"]
    tools = [s for s in run["steps"] if s["role"] == "tool"]
    assert tools[0]["tool_call"]["name"] == "video_for_simple_youtube_search" and tools[0]["error"]
    assert tools[1]["tool_call"]["name"] == "search_for_simple_youtube_search" and not tools[1]["error"]
