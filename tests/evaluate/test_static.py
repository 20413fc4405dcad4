"""`umi eval static` with scripted roles: the prompt layout, resume, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from umi.evaluate.metrics import read_predictions, score
from umi.evaluate.static import run_static
from umi.evaluate.steps import read_step_keys, sample_step_keys, select_steps
from umi.format import BACKBONE_CUE, CALLER_CUE, END_OF_TURN, SUMMARIZER_CUE, parse_step_text
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
        # The history slot *ends* with the prediction as the last `assistant` turn, closed by END_OF_TURN.
        if p.endswith(CALLER_CUE):
            history_slot = p.split("\nThe thought of this step is:\n")[0]
            assert history_slot.endswith("assistant: PRED thought\n Next: caller." + END_OF_TURN)
        else:
            assert p.endswith("assistant: PRED done\n Next: conclusion." + END_OF_TURN + SUMMARIZER_CUE)
    assert len(read_predictions(str(tmp_path / "predictions.jsonl"))) == 12
    # Byte for byte: each follow-up prompt is the umi.format prompt over gold history + `assistant: <pred></s>`.
    from umi.data import iter_steps, load_trajectories
    from umi.format import caller_prompt, planner_prompt, render_turn, summarizer_prompt
    from umi.schema import Turn

    seen = {p for p, _ in engine.prompts}
    for s in iter_steps(load_trajectories(ood_path).items)[:12]:
        pred = (
            "PRED thought\n Next: caller."
            if len(planner_prompt(s.tools, s.history)) % 2
            else "PRED done\n Next: conclusion."
        )
        hist = [*s.history, Turn.model_validate({"from": "assistant", "value": pred})]
        want = caller_prompt(s.tools, hist, pred) if "caller" in pred else summarizer_prompt(hist)
        assert want in seen
        assert render_turn("assistant", pred) in want


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
    assert (
        "| gold | umi (ours) | 100.00" in md and "paper (LLaMA-2-7B, OOD)" in md and "paper (GPT-4 0-shot, OOD)" in md
    )
    assert (tmp_path / "rep" / "report.png").stat().st_size > 1000
    res = runner.invoke(app, ["eval", "score", str(tmp_path / "nope.jsonl"), "--data", str(ood_path)])
    assert res.exit_code != 0 and "not found" in res.output


def test_killed_mid_run_then_resumed(ood_path: Path, tmp_path: Path) -> None:
    """A real interruption (the engine dies after 3 batches), then the same call again: no duplicates, same scores."""
    from umi.data import load_trajectories

    trajs = load_trajectories(ood_path).items
    roles, _ = scripted_roles()
    run_static(ood_path, roles, tmp_path / "full", limit=14, batch_size=2)
    full = score(read_predictions(str(tmp_path / "full" / "predictions.jsonl")), trajs)

    calls = {"n": 0}
    good, _ = scripted_roles()

    class Dying:
        name = "dying"

        def complete(self, prompts, params, *, adapter=None, cache_key=None):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] > 5:  # planner+follow-up per batch: dies inside the 3rd batch
                raise KeyboardInterrupt
            return good.planner.complete(prompts, params)  # type: ignore[union-attr]

    dying = RoleBinding(Dying())  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        run_static(
            ood_path, Roles(planner=dying, caller=dying, summarizer=dying), tmp_path / "part", limit=14, batch_size=2
        )
    done = read_predictions(str(tmp_path / "part" / "predictions.jsonl"))
    assert 0 < len(done) < 14
    roles2, engine2 = scripted_roles()
    res = run_static(ood_path, roles2, tmp_path / "part", limit=14, batch_size=2)
    assert res.skipped == len(done)
    rows = read_predictions(str(tmp_path / "part" / "predictions.jsonl"))
    raw = (tmp_path / "part" / "predictions.jsonl").read_text().splitlines()
    assert len(raw) == 14 and len({(r.traj, r.step) for r in rows}) == 14
    assert score(rows, trajs) == full


def test_steps_subset_file_and_sampling(ood_path: Path, tmp_path: Path) -> None:
    from umi.data import iter_steps, load_trajectories

    steps = iter_steps(load_trajectories(ood_path).items)
    keys = sample_step_keys(steps, 9, seed=3)
    assert keys == sample_step_keys(steps, 9, seed=3) and keys == sorted(keys) and len(set(keys)) == 9
    assert len({t for t, _ in keys}) > 3  # spread over trajectories, unlike the first 9 in file order
    path = tmp_path / "subset.json"
    path.write_text(json.dumps({"steps": [list(k) for k in keys]}))
    assert read_step_keys(path) == keys
    roles, _ = scripted_roles()
    run_static(ood_path, roles, tmp_path / "run", keys=read_step_keys(path), batch_size=4)
    got = sorted((r.traj, r.step) for r in read_predictions(str(tmp_path / "run" / "predictions.jsonl")))
    assert got == keys
    # a predictions file is a subset too (its lines are in run order: batches grouped by prompt length)
    assert sorted(read_step_keys(tmp_path / "run" / "predictions.jsonl")) == keys
    with pytest.raises(ValueError, match="not in the data"):
        select_steps(steps, keys=[(99999, 0)])
    run_static(ood_path, roles, tmp_path / "grow", limit=2)
    run_static(ood_path, roles, tmp_path / "grow", limit=4)  # a larger selection resumes
    with pytest.raises(ValueError, match="outside this selection"):
        run_static(ood_path, roles, tmp_path / "grow", limit=3)


def test_single_backbone_mapped_into_the_reference_layout(ood_path: Path, tmp_path: Path) -> None:
    outputs = iter(
        ['I call.\nAction: a_tool\nAction Input: {"q": 1}', "Done.\nconclusion: 42", "Hmm.\nconclusion: give up."] * 5
    )
    engine = ScriptedEngine(lambda prompt, adapter: next(outputs))
    roles = Roles(backbone=RoleBinding(engine))
    run_static(ood_path, roles, tmp_path, limit=9, single=True, batch_size=3)
    assert all(p.endswith(BACKBONE_CUE) for p, _ in engine.prompts)
    preds = [parse_step_text(r.prediction) for r in read_predictions(str(tmp_path / "predictions.jsonl"))]
    assert {p.plan for p in preds} == {"call", "finish", "give up"}
    call = next(p for p in preds if p.plan == "call")
    assert (call.action, call.action_input) == ("a_tool", '{"q": 1}')
    assert next(p for p in preds if p.plan == "finish").answer == "42"


def test_no_marker_defaults_to_the_caller(ood_path: Path, tmp_path: Path) -> None:
    def respond(prompt: str, adapter: str | None) -> str:
        return "Action: x\nAction Input: {}" if prompt.endswith(CALLER_CUE) else "just a thought"

    engine = ScriptedEngine(respond)
    b = RoleBinding(engine)
    run_static(ood_path, Roles(planner=b, caller=b, summarizer=b), tmp_path, limit=4)
    assert sum(p.endswith(CALLER_CUE) for p, _ in engine.prompts) == 4
    assert all(("assistant: just a thought" + END_OF_TURN) in p for p, _ in engine.prompts if p.endswith(CALLER_CUE))
    for r in read_predictions(str(tmp_path / "predictions.jsonl")):
        assert parse_step_text(r.prediction).action == "x"


def test_cli_static_with_scripted_roles_and_subset(
    ood_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import umi.models.roles as roles_mod
    from umi.cli.main import app

    roles, engine = scripted_roles()
    monkeypatch.setattr(roles_mod, "load_roles", lambda source: roles)
    runner = CliRunner()
    sub = tmp_path / "subset.json"
    res = runner.invoke(app, ["eval", "subset", "--data", str(ood_path), "--n", "6", "--seed", "1", "--out", str(sub)])
    assert res.exit_code == 0, res.output
    args = [
        "eval",
        "static",
        "--data",
        str(ood_path),
        "--roles",
        "x.toml",
        "--out",
        str(tmp_path / "run"),
        "--no-constrain",
    ]
    res = runner.invoke(app, [*args, "--steps", str(sub), "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    assert len(read_predictions(str(tmp_path / "run" / "predictions.jsonl"))) == 6
    res = runner.invoke(app, [*args, "--steps", str(sub)])  # resumes: nothing left to do
    assert res.exit_code == 0 and "6 already done" in res.output
    assert len((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()) == 6
    res = runner.invoke(app, [*args, "--steps", str(sub), "--limit", "3"])
    assert res.exit_code != 0 and "not both" in res.output
    res = runner.invoke(
        app,
        ["eval", "score", str(tmp_path / "run" / "predictions.jsonl"), "--data", str(ood_path), "--json", "--clean"],
    )
    assert res.exit_code == 0, res.output
    last = json.loads(res.output.strip().splitlines()[-1])
    assert set(last) >= {
        "plan_acc",
        "act_em",
        "hallu",
        "arg_f1",
        "arg_f1_easy",
        "arg_f1_hard",
        "rouge_l",
        "steps",
        "call_steps",
        "finish_steps",
        "giveup_steps",
        "clean",
    }
    assert last["steps"] == 6


def test_steps_run_trajectory_by_trajectory_in_step_order(ood_path: Path, tmp_path: Path) -> None:
    """One lane: every trajectory's steps in order before the next trajectory (each role's cache carries over);
    three lanes: one step of each of three trajectories per batch, each lane keeping its trajectory's order."""
    from umi.data import iter_steps, load_trajectories
    from umi.evaluate.steps import trajectory_batches

    steps = iter_steps(load_trajectories(ood_path).items)[:20]
    one = [s for batch in trajectory_batches(list(reversed(steps)), 1) for s in batch]
    assert [(s.traj, s.step) for s in one] == sorted((s.traj, s.step) for s in steps)
    batches = list(trajectory_batches(steps, 3))
    assert all(len({s.traj for s in b}) == len(b) <= 3 for b in batches)
    assert sorted((s.traj, s.step) for b in batches for s in b) == sorted((s.traj, s.step) for s in steps)
    for traj in {s.traj for s in steps}:
        order = [s.step for b in batches for s in b if s.traj == traj]
        assert order == sorted(order)
    roles, _ = scripted_roles()
    keys = sample_step_keys(steps, 8, seed=0)
    run = run_static(ood_path, roles, tmp_path, keys=list(reversed(keys)), batch_size=1)
    rows = [json.loads(line) for line in run.predictions.read_text().splitlines()]
    assert [(r["traj"], r["step"]) for r in rows] == keys  # written trajectory by trajectory, steps in order
    costs = json.loads((tmp_path / "costs.json").read_text())
    assert costs == run.costs and costs["planner"]["calls"] == 8
    assert costs["planner"]["prompt_tokens"] == costs["planner"]["prefilled_tokens"] > 0  # scripted: no cache


def test_lanes_follow_what_the_engine_serves_side_by_side() -> None:
    """A llama.cpp engine with one slot per role runs one trajectory at a time (interleaving trajectories on one
    slot would evict each other's history); with n_parallel lanes it runs that many; engines that batch get the
    batch size."""
    from umi.evaluate.static import engine_lanes
    from umi.models.slots import SlotTable

    class Slotted:
        def __init__(self, lanes: int) -> None:
            self.slots = SlotTable(["planner", "caller"], lanes)

    class Http:
        slots = None
        concurrency = 4

    def lanes(engine: object) -> int:
        return engine_lanes(Roles(planner=RoleBinding(engine)), "planner", 8)  # type: ignore[arg-type]

    assert [lanes(Slotted(1)), lanes(Slotted(3)), lanes(Http()), lanes(ScriptedEngine(["x"]))] == [1, 3, 4, 8]


def test_gold_thought_skips_the_planner_and_hands_the_caller_the_gold_turn(ood_path: Path, tmp_path: Path) -> None:
    from umi.data import iter_steps, load_trajectories
    from umi.format import caller_prompt, summarizer_prompt
    from umi.schema import Turn

    roles, engine = scripted_roles()
    run_static(ood_path, roles, tmp_path, limit=12, batch_size=4, gold_thought=True)
    prompts = [p for p, _ in engine.prompts]
    assert all(p.endswith((CALLER_CUE, SUMMARIZER_CUE)) for p in prompts), "the planner must not be called"
    steps = iter_steps(load_trajectories(ood_path).items)[:12]
    want = []
    for s in steps:
        hist = [*s.history, Turn.model_validate({"from": "assistant", "value": s.planner})]
        if s.route == "caller":
            want.append(caller_prompt(s.tools, hist, s.planner))
        elif s.route == "conclusion":
            want.append(summarizer_prompt(hist))
    assert sorted(prompts) == sorted(want)
    scores = score(read_predictions(str(tmp_path / "predictions.jsonl")), load_trajectories(ood_path).items)
    assert scores["plan_acc"] == 100.0
    assert json.loads((tmp_path / "run.json").read_text())["gold_thought"] is True
    with pytest.raises(ValueError, match="drop --single"):
        run_static(ood_path, roles, tmp_path / "single", limit=2, single=True, gold_thought=True)


def test_planner_from_hands_on_an_earlier_runs_planner_turns_without_calling_the_planner(
    ood_path: Path, tmp_path: Path
) -> None:
    from umi.evaluate.steps import kept_planner_turns

    roles, engine = scripted_roles()
    run_static(ood_path, roles, tmp_path / "a", limit=12, batch_size=4)
    first = [p for p, _ in engine.prompts if p.endswith((CALLER_CUE, SUMMARIZER_CUE))]
    roles, engine = scripted_roles()
    run_static(ood_path, roles, tmp_path / "b", limit=12, batch_size=4, planner_from=tmp_path / "a")
    prompts = [p for p, _ in engine.prompts]
    assert all(p.endswith((CALLER_CUE, SUMMARIZER_CUE)) for p in prompts), "the planner must not be called"
    assert sorted(prompts) == sorted(first)  # the same turns, so the same caller and summarizer prompts
    a, b = ((tmp_path / d / "predictions.jsonl").read_text().splitlines() for d in "ab")
    assert [json.loads(x)["prediction"] for x in a] == [json.loads(x)["prediction"] for x in b]
    assert json.loads((tmp_path / "b" / "run.json").read_text())["planner_from"] == str(tmp_path / "a")

    row = {"traj": 0, "step": 9, "reference": "", "prediction": "I cannot go on.\n Next: give up."}
    (tmp_path / "g.jsonl").write_text(json.dumps(row) + "\n{broken")
    with pytest.raises(ValueError, match=r"g.jsonl, line 2: not a prediction row"):
        kept_planner_turns(tmp_path / "g.jsonl")
    (tmp_path / "g.jsonl").write_text(json.dumps(row) + "\n")
    assert kept_planner_turns(tmp_path / "g.jsonl") == {(0, 9): ("I cannot go on.\n Next: give up.", "give up")}
    with pytest.raises(ValueError, match="no step"):
        run_static(ood_path, roles, tmp_path / "c", limit=12, planner_from=tmp_path / "g.jsonl")
    with pytest.raises(ValueError, match="not found"):
        run_static(ood_path, roles, tmp_path / "d", limit=2, planner_from=tmp_path / "nowhere")
