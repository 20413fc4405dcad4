"""`umi eval static` with scripted roles: the prompt layout, resume, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from umi.evaluate.metrics import read_predictions, score
from umi.evaluate.static import run_static
from umi.format import CALLER_CUE, END_OF_TURN, SUMMARIZER_CUE
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles


def scripted_roles() -> tuple[Roles, ScriptedEngine]:
    def respond(prompt: str, adapter: str | None) -> str:
        if prompt.endswith(CALLER_CUE):
            return "Action: x\nAction Input: {}"
        if prompt.endswith(SUMMARIZER_CUE):
            return "the answer"
        return "PRED thought\n Next: caller." if len(prompt) % 2 else "PRED done\n Next: conclusion."

    engine = ScriptedEngine(respond)
    b = RoleBinding(engine)
    return Roles(planner=b, caller=b, summarizer=b), engine


def test_caller_and_summarizer_see_the_planners_prediction_as_assistant(ood_path: Path, tmp_path: Path) -> None:
    roles, engine = scripted_roles()
    run_static(ood_path, roles, tmp_path, limit=12, batch_size=4)
    follow_ups = [p for p, _ in engine.prompts if p.endswith((CALLER_CUE, SUMMARIZER_CUE))]
    assert follow_ups
    for p in follow_ups:
        assert ("assistant: PRED thought\n Next: caller." + END_OF_TURN) in p or (
            "assistant: PRED done\n Next: conclusion." + END_OF_TURN + SUMMARIZER_CUE
        ) in p
        assert "planner: " not in p
    assert len(read_predictions(str(tmp_path / "predictions.jsonl"))) == 12


def test_resume_after_a_crash(ood_path: Path, tmp_path: Path) -> None:
    from umi.data import load_trajectories

    roles, _ = scripted_roles()
    run_static(ood_path, roles, tmp_path / "full", limit=10, batch_size=3)
    full = score(read_predictions(str(tmp_path / "full" / "predictions.jsonl")), load_trajectories(ood_path).items)
    part = tmp_path / "part"
    run_static(ood_path, roles, part, limit=10, batch_size=3)
    lines = (part / "predictions.jsonl").read_text().splitlines()
    (part / "predictions.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][:25])  # killed mid-line
    roles2, engine2 = scripted_roles()
    result = run_static(ood_path, roles2, part, limit=10, batch_size=3)
    assert result.skipped == 4
    rows = read_predictions(str(part / "predictions.jsonl"))
    assert len(rows) == 10 and len({(r.traj, r.step) for r in rows}) == 10
    assert score(rows, load_trajectories(ood_path).items) == full
    for line in (part / "predictions.jsonl").read_text().splitlines():
        json.loads(line)


def test_cli_score_json_last_line(ood_path: Path, tmp_path: Path) -> None:
    from umi.cli.main import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["eval", "baseline", "--kind", "gold", "--data", str(ood_path), "--out", str(tmp_path), "--limit", "30"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "score", str(tmp_path / "predictions.jsonl"), "--data", str(ood_path), "--json"])
    assert res.exit_code == 0, res.output
    last = json.loads(res.output.strip().splitlines()[-1])
    assert last["plan_acc"] == 100.0 and last["steps"] == 30
    res = runner.invoke(app, ["eval", "report", str(tmp_path), "--out", str(tmp_path / "rep"), "--name", "gold"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| gold | umi (ours) | 100.00" in md and "paper (α-UMi Table 1" in md
    assert (tmp_path / "rep" / "report.png").stat().st_size > 1000
    res = runner.invoke(app, ["eval", "score", str(tmp_path / "nope.jsonl"), "--data", str(ood_path)])
    assert res.exit_code != 0 and "not found" in res.output
