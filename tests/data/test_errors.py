"""Bad input: a clear error naming the file, the record and the problem; nothing dropped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from umi.cli.main import app
from umi.data import DataError, load_trajectories

GOOD = {"tools": [], "instruction": "hi", "conversations": [{"from": "user", "value": "hi"}]}


def _write(tmp_path: Path, data: object, name: str = "in.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"tools": [], "conversations": [{"from": "user", "value": "x"}]}, "missing field 'instruction'"),
        ({"tools": [], "instruction": "x", "conversations": [{"from": "robot", "value": "x"}]}, "unknown role 'robot'"),
        ({"tools": [], "instruction": "x", "conversations": []}, "empty conversation"),
        (
            {"tools": [], "instruction": "x", "conversations": [{"from": "user"}]},
            "missing field 'conversations.0.value'",
        ),
        ("not an object", "expected an object"),
    ],
)
def test_bad_records_name_file_index_and_problem(tmp_path: Path, record: object, message: str) -> None:
    path = _write(tmp_path, [GOOD, record])
    with pytest.raises(DataError) as info:
        load_trajectories(path)
    text = str(info.value)
    assert str(path) in text and "record 1" in text and message in text


def test_not_json(tmp_path: Path) -> None:
    path = _write(tmp_path, '[{"tools": ')
    with pytest.raises(DataError, match=r"not JSON .* line 1"):
        load_trajectories(path)


def test_skip_invalid_reports_which(tmp_path: Path) -> None:
    path = _write(tmp_path, [GOOD, {"bad": 1}, GOOD, {"tools": [], "instruction": "x", "conversations": []}])
    loaded = load_trajectories(path, skip_invalid=True)
    assert len(loaded.items) == 2
    assert [e.index for e in loaded.skipped] == [1, 3]


def test_cli_exits_non_zero_with_one_clear_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, [GOOD, {"tools": [], "instruction": "x", "conversations": [{"from": "robot", "value": "x"}]}]
    )
    runner = CliRunner()
    result = runner.invoke(app, ["data", "build", str(path), "--out", str(tmp_path / "rows")])
    assert result.exit_code != 0
    assert "record 1" in result.output and "unknown role" in result.output
    assert not (tmp_path / "rows" / "backbone.json").exists()
    ok = runner.invoke(app, ["data", "build", str(path), "--out", str(tmp_path / "rows"), "--skip-invalid"])
    assert ok.exit_code == 0, ok.output
    assert "skipped 1 invalid record" in ok.output and "record 1" in ok.output
    rows = json.loads((tmp_path / "rows" / "planner.json").read_text())
    assert rows == []


def test_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "build", str(tmp_path / "nope.json"), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "no such file" in result.output


def test_data_tools_converts_each_source(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    cases = {
        "stabletoolbench/solvable_queries/test_instruction/G1_tool.json": 100,
        "toolalpaca/data/eval_simulated.json": 10,
        "toolbench/data_example/instruction/G1_query.json": 5,
    }
    for rel, at_least in cases.items():
        out = tmp_path / "tools.json"
        res = runner.invoke(app, ["data", "tools", str(shared_data / rel), "--out", str(out), "--json"])
        assert res.exit_code == 0, res.output
        specs = json.loads(out.read_text())
        assert len(specs) >= at_least and all("parameters" in s and s["name"] for s in specs)
    bad = _write(tmp_path, "{broken")
    res = runner.invoke(app, ["data", "tools", str(bad), "--out", str(tmp_path / "x.json")])
    assert res.exit_code != 0 and "not JSON" in res.output
