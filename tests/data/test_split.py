"""The tool-disjoint split of the α-UMi test set and the data commands around it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from umi.cli.main import app
from umi.data import compute_stats, load_trajectories, shared, split_by_tools, tool_components
from umi.data.rows import build_rows


def test_split_is_tool_disjoint_balanced_and_deterministic(ood_path: Path) -> None:
    trajs = load_trajectories(ood_path).items
    a = split_by_tools(trajs, seed=0)
    b = split_by_tools(trajs, seed=0)
    assert a == b
    assert sorted(a.train + a.test) == list(range(400))
    # The largest tool-connected group holds 218 trajectories, so 218/182 is the closest to 50/50 (README, "Data").
    assert max(len(c) for c in tool_components(trajs)) == 218
    assert (len(a.train), len(a.test)) == (218, 182)
    train = compute_stats([trajs[i] for i in a.train])
    test = compute_stats([trajs[i] for i in a.test])
    # the README's table, cell for cell
    assert (train.as_dict(), test.as_dict()) == (
        {
            "trajectories": 218,
            "steps": 832,
            "steps_caller": 613,
            "steps_conclusion": 172,
            "steps_give_up": 47,
            "apis": 343,
            "tools": 183,
        },
        {
            "trajectories": 182,
            "steps": 715,
            "steps_caller": 533,
            "steps_conclusion": 122,
            "steps_give_up": 60,
            "apis": 367,
            "tools": 113,
        },
    )
    assert shared(train, test) == {"shared_apis": 0, "shared_tools": 0}


def test_cli_split_and_stats(tmp_path: Path, ood_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "split", "--by-tools", str(ood_path), "--out", str(tmp_path), "--seed", "3"])
    assert res.exit_code == 0, res.output
    train = json.loads((tmp_path / "train.json").read_text())
    test = json.loads((tmp_path / "test.json").read_text())
    assert len(train) + len(test) == 400
    original = json.loads(ood_path.read_text())
    assert all(t in original for t in test[:20])  # the input's own layout, unchanged
    res = runner.invoke(app, ["data", "stats", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["shared_tools"] == 0 and summary["shared_apis"] == 0
    assert summary["train"]["trajectories"] + summary["test"]["trajectories"] == 400
    assert summary["train"]["steps"] + summary["test"]["steps"] == 1547


def test_build_all_rows_from_400_trajectories_quickly(ood_path: Path) -> None:
    trajs = load_trajectories(ood_path).items
    start = time.perf_counter()
    rows = build_rows(trajs)
    elapsed = time.perf_counter() - start
    # README, "Data": 1,547 backbone and planner rows, 1,146 caller, 293 summarizer, 2,986 multi-task
    assert rows.counts() == {"backbone": 1547, "planner": 1547, "caller": 1146, "summarizer": 293, "multitask": 2986}
    print(f"built {sum(rows.counts().values())} rows in {elapsed:.2f} s")


def test_cli_build_compat_matches_released(tmp_path: Path, train_example: Path) -> None:
    runner = CliRunner()
    src = train_example / "raw_data" / "raw_data_stage_2.json"
    res = runner.invoke(app, ["data", "build", str(src), "--out", str(tmp_path), "--compat", "--json"])
    assert res.exit_code == 0, res.output
    counts = json.loads(res.output.strip().splitlines()[-1])
    assert (counts["backbone"], counts["planner"], counts["caller"], counts["summarizer"]) == (79, 79, 59, 14)
    assert counts["multitask"] == 79 + 59 + 14
    res = runner.invoke(app, ["data", "rows-check", str(tmp_path), str(train_example)])
    assert res.exit_code == 0, res.output
