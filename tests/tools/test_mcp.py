"""MCP tools against a real MCP server over stdio, written here with the SDK's server API: its tools become
ToolSpecs, an α-UMi episode calls one, and an error result (and a dead server) become observations."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from umi.agent import MultiLLMAgent
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles
from umi.tools.base import ToolCall
from umi.tools.mcp import MCPError, MCPTools

SERVER = textwrap.dedent(
    '''
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("weather-station")

    @server.tool()
    def station_weather(city: str, unit: str = "C") -> str:
        """Current weather reported by the city's station."""
        return f"{city}: 18 {unit}, light rain"

    @server.tool()
    def station_history(city: str, days: int) -> str:
        """Past readings of a city's station."""
        raise ToolError(f"the {city} station archive is offline")

    if __name__ == "__main__":
        server.run()
    '''
)


@pytest.fixture(scope="module")
def server_command(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("mcp") / "weather_server.py"
    path.write_text(SERVER, encoding="utf-8")
    return f"{sys.executable} {path}"


def _roles(calls: list[str]) -> Roles:
    """Planner: one call per entry of `calls`, then conclude; caller: the next call; summarizer: the last
    observation."""
    state = {"planner": 0, "caller": 0}

    def respond(prompt: str, adapter: str | None) -> str:
        if adapter == "planner":
            state["planner"] += 1
            if state["planner"] <= len(calls):
                return f"Step {state['planner']}: call the station.\n Next: caller."
            return "Done.\n Next: conclusion."
        if adapter == "caller":
            call = calls[state["caller"]]
            state["caller"] += 1
            return call
        return "Summary: " + prompt.rsplit("observation: ", 1)[-1][:200]

    engine = ScriptedEngine(respond)
    return Roles(
        planner=RoleBinding(engine, adapter="planner"),
        caller=RoleBinding(engine, adapter="caller"),
        summarizer=RoleBinding(engine, adapter="summarizer"),
    )


def test_tools_episode_and_error_results(server_command: str) -> None:
    with MCPTools(server_command) as mcp:
        specs = {s.name: s for s in mcp.specs}
        assert set(specs) == {"station_weather", "station_history"}
        assert specs["station_weather"].description == "Current weather reported by the city's station."
        assert specs["station_weather"].required == ["city"]
        assert [(p.name, p.type) for p in specs["station_history"].parameters] == [
            ("city", "string"),
            ("days", "integer"),
        ]

        calls = [
            'Action: station_weather\nAction Input: {"city": "Bergen"}',
            'Action: station_history\nAction Input: {"city": "Bergen", "days": 3}',
        ]
        episode = MultiLLMAgent(_roles(calls), mcp.specs, mcp, max_steps=4).run("How wet is Bergen?")
        observations = [t.value for t in episode.history if t.role == "observation"]
        assert observations[0] == "Bergen: 18 C, light rain"
        assert json.loads(observations[1]) == {
            "error": "Error executing tool station_history: the Bergen station archive is offline"
        }
        assert episode.status == "answered" and "archive is offline" in (episode.answer or "")

        unknown = mcp.execute(ToolCall("station_forecast", {"city": "Bergen"}))
        assert unknown.error.startswith("No such function name: station_forecast")
        bad_args = mcp.execute(ToolCall("station_history", {"city": "Bergen", "days": "many"}))
        assert "days" in bad_args.error and not bad_args.response


def test_transport_failures_become_observations_or_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MCPError, match="No such file"):
        MCPTools(str(tmp_path / "no-such-server"))
    dying = tmp_path / "dying.py"
    dying.write_text(
        SERVER.replace('return f"{city}: 18 {unit}, light rain"', "import os; os._exit(3)"), encoding="utf-8"
    )
    with MCPTools(f"{sys.executable} {dying}", timeout=10) as mcp:
        obs = mcp.execute(ToolCall("station_weather", {"city": "Oslo"}))
        assert obs.error and not obs.response
        assert mcp.execute(ToolCall("station_weather", {"city": "Oslo"})).error  # still no exception


def test_umi_run_mcp_flag(server_command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from umi.cli import run as run_cli
    from umi.cli.main import app

    monkeypatch.setattr(
        run_cli, "_load_roles", lambda roles: _roles(['Action: station_weather\nAction Input: {"city": "Rome"}'])
    )
    trace = tmp_path / "trace.jsonl"
    result = CliRunner().invoke(
        app, ["run", "Weather in Rome?", "--mcp", server_command, "--trace", str(trace), "--json", "--no-constrain"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["status"] == "answered" and summary["calls"] == 1
    tool_records = [json.loads(line) for line in trace.read_text().splitlines() if '"role":"tool"' in line]
    assert tool_records[0]["observation"] == "Rome: 18 C, light rain"
    bad = CliRunner().invoke(app, ["run", "x", "--mcp", str(tmp_path / "missing-server")])
    assert bad.exit_code == 1 and "No such file" in bad.output


def test_streamable_http_server_url(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "http_server.py"
    script.write_text(
        SERVER.replace("server.run()", f'server.run("streamable-http", host="127.0.0.1", port={port})'),
        encoding="utf-8",
    )
    proc = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ), stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, "MCP HTTP server did not start"
                time.sleep(0.2)
        with MCPTools(f"http://127.0.0.1:{port}/mcp") as mcp:
            assert {s.name for s in mcp.specs} == {"station_weather", "station_history"}
            obs = mcp.execute(ToolCall("station_weather", {"city": "Oslo", "unit": "F"}))
            assert obs.response == "Oslo: 18 F, light rain"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
