"""BFCL multi-turn through the α-UMi agent: gold call sequences replayed by scripted roles pass BFCL's own
checker; one wrong call fails its task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.agent import MultiLLMAgent
from umi.evaluate.live.bfcl import BFCLExecutor, load_tasks, parse_call_string, run_suite, run_task
from umi.format import caller_text, planner_text
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles


def gold_roles(entry: dict, corrupt: int | None = None) -> Roles:
    methods = BFCLExecutor(entry).methods
    planner, caller, summarizer = [], [], []
    k = 0
    for turn in entry["ground_truth"]:
        for call in turn:
            c = parse_call_string(call, methods)
            args = dict(c.arguments)
            if corrupt is not None and k == corrupt and args:
                key = next(iter(args))
                args[key] = "definitely_wrong_value"
            planner.append(planner_text(f"I will call {c.name}.", "caller"))
            caller.append(caller_text(c.name, json.dumps(args)))
            k += 1
        planner.append(planner_text("This turn is done.", "conclusion"))
        summarizer.append("Done.")
    return Roles(
        planner=RoleBinding(ScriptedEngine(planner)),
        caller=RoleBinding(ScriptedEngine(caller)),
        summarizer=RoleBinding(ScriptedEngine(summarizer)),
    )


def factory(roles: Roles):
    def make(specs, executor, trace_path=None):
        return MultiLLMAgent(roles, specs, executor, max_steps=30, repeat_limit=99)

    return make


@pytest.fixture(scope="module")
def base_tasks() -> list[dict]:
    return load_tasks("multi_turn_base")


def test_gold_replay_passes_the_official_checker(base_tasks: list[dict], tmp_path: Path) -> None:
    entries = base_tasks[:24]
    results = [run_task(e, factory(gold_roles(e))) for e in entries]
    failed = [(r.id, r.error) for r in results if not r.passed]
    assert not failed, failed
    assert all(s == "answered" for r in results for s in r.statuses)


def test_a_wrong_call_fails_its_task(base_tasks: list[dict]) -> None:
    entry = base_tasks[0]
    result = run_task(entry, factory(gold_roles(entry, corrupt=2)))
    assert not result.passed and result.error


def test_suite_is_resumable_and_counts(base_tasks: list[dict], tmp_path: Path) -> None:
    entries = base_tasks[:1]
    roles = {e["id"]: gold_roles(e) for e in entries}

    def must_not_run(specs, executor, trace_path=None):
        raise AssertionError("a finished task ran again")

    first = run_suite(entries[:1], factory(roles[entries[0]["id"]]), tmp_path)
    assert first == {"tasks": 1, "passed": 1, "accuracy": 100.0}
    again = run_suite(entries[:1], must_not_run, tmp_path)  # the result file exists: nothing re-runs
    assert again == first


def test_missing_functions_are_hidden_until_their_turn() -> None:
    entry = load_tasks("multi_turn_miss_func")[0]
    seen: list[set[str]] = []

    def make(specs, executor):
        seen.append({s.name for s in specs})
        unused = RoleBinding(ScriptedEngine(lambda p, a: "unused"))
        planner = RoleBinding(ScriptedEngine(lambda p, a: "x\n Next: give up."))
        return MultiLLMAgent(Roles(planner=planner, caller=unused, summarizer=unused), specs, executor, max_steps=1)

    run_task(entry, make)
    ((turn, names),) = entry["missed_function"].items()
    for fn in names:
        assert all(fn not in s for s in seen[: int(turn)])
        assert fn in seen[-1]


def test_run_bfcl_and_the_live_command(base_tasks: list[dict], tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    import umi.models.roles as roles_module
    from umi.cli.main import app
    from umi.evaluate.live.bfcl import run_bfcl

    entry = base_tasks[0]
    summary = run_bfcl(gold_roles(entry), "multi_turn_base", tmp_path / "api", limit=1, max_steps=30)
    assert summary == {"tasks": 1, "passed": 1, "accuracy": 100.0}
    assert json.loads((tmp_path / "api" / f"{entry['id']}.json").read_text())["passed"]

    monkeypatch.setattr(roles_module, "load_roles", lambda source: gold_roles(entry))
    args = [
        "eval",
        "live",
        "--roles",
        "x.toml",
        "--out",
        str(tmp_path / "cli"),
        "--limit",
        "1",
        "--max-steps",
        "30",
        "--no-constrain",
    ]  # scripted roles
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert "1/1 tasks pass = 100.00%" in result.output
    assert json.loads(result.output.strip().splitlines()[-1])["accuracy"] == 100.0
    bad = CliRunner().invoke(app, ["eval", "live", "--suite", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 1
    assert "unknown suite" in bad.output
