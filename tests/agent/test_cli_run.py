"""`umi run` and `umi demo` through the real command line (scripted roles, recorded responses, no model)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from umi.agent import read_trace
from umi.cli.main import app
from umi.demo.scenarios import BROKEN_VIDEO_API

from .conftest import make_roles

runner = CliRunner()


def test_demo_scripted_landscape_puts_the_broken_apis_error_in_the_planners_prompt(
    shared_data: Path, tmp_path: Path
) -> None:
    """The hand-written script makes the switch to the Search API itself; what this shows is the plumbing under it: the
    broken Video API's error becomes an observation and reaches the planner's next prompt."""
    result = runner.invoke(
        app, ["demo", "--scripted", "--scenario", "landscape", "--trace-dir", str(tmp_path)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "SCRIPTED" in result.output and "answered" in result.output
    records = read_trace(tmp_path / "landscape.jsonl")
    tools = [r for r in records if r.role == "tool"]
    assert tools[0].tool_call and tools[0].tool_call["name"] == BROKEN_VIDEO_API and tools[0].error
    assert tools[1].tool_call and tools[1].tool_call["name"] != BROKEN_VIDEO_API and not tools[1].error
    # the error reached the planner before the (scripted) switch
    second_planner = [r for r in records if r.role == "planner"][1]
    assert "503 Service Unavailable" in second_planner.prompt


def test_demo_scripted_music(shared_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--scripted", "--scenario", "music", "--trace-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = [r.tool_call["name"] for r in read_trace(tmp_path / "music.jsonl") if r.tool_call]
    assert any(n.endswith("_for_deezer") for n in names) and any(n.endswith("_for_shazam") for n in names)
    assert all(not r.error for r in read_trace(tmp_path / "music.jsonl"))


def test_run_with_tools_and_replay_files(tmp_path: Path, monkeypatch) -> None:
    import umi.models.roles as roles_module

    tools = tmp_path / "tools.json"
    tools.write_text(
        json.dumps(
            [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather in a city.",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                }
            ]
        )
    )
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cache": {"get_weather": {'{"city": "Paris"}': '{"temp_c": 21}'}}}))
    roles = make_roles(
        ["I need the weather.\n Next: caller.", "I have it.\n Next: conclusion."],
        ['Action: get_weather\nAction Input: {"city": "Paris"}'],
        ["It is 21 °C in Paris."],
    )
    monkeypatch.setattr(roles_module, "default_roles", lambda: roles)
    trace = tmp_path / "t.jsonl"
    result = runner.invoke(
        app,
        [
            "run",
            "Weather in Paris?",
            "--tools",
            str(tools),
            "--replay",
            str(replay),
            "--trace",
            str(trace),
            "--json",
            "--no-constrain",  # a scripted engine writes text; it cannot enforce a grammar
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["status"] == "answered" and summary["answer"] == "It is 21 °C in Paris."
    assert "temp_c" in result.output  # the tool's response was shown live
    assert [r.role for r in read_trace(trace)] == ["planner", "caller", "tool", "planner", "summarizer"]


def test_run_rejects_a_bad_tools_file(tmp_path: Path) -> None:
    bad = tmp_path / "tools.json"
    bad.write_text("[]")
    result = runner.invoke(app, ["run", "q", "--tools", str(bad), "--replay", str(bad)])
    assert result.exit_code != 0
