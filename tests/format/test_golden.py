"""Golden conformance: the released α-UMi rows, reproduced byte for byte from their trajectories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.data.io import load_trajectories
from umi.data.rows import build_rows

EXPECTED = {"backbone": 79, "planner": 79, "caller": 59, "summarizer": 14}


@pytest.fixture(scope="module")
def compat_rows(train_example: Path):
    trajs = load_trajectories(train_example / "raw_data" / "raw_data_stage_2.json").items
    return build_rows(trajs, compat=True)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_compat_rows_identical_to_released(compat_rows, train_example: Path, name: str) -> None:
    released = json.loads((train_example / f"train_{name}.json").read_text())
    ours = [r.as_json_dict() for r in compat_rows.get(name)]
    assert len(released) == len(ours) == EXPECTED[name]
    for i, (a, b) in enumerate(zip(ours, released, strict=True)):
        assert a["input"] == b["input"], f"{name} row {i}: input differs"
        assert a["target"] == b["target"], f"{name} row {i}: target differs"
        assert a["history"] == b["history"], f"{name} row {i}: history differs"
        assert a["tools"] == b["tools"], f"{name} row {i}: tools differ"


def test_default_mode_fixes_stale_give_up_input(compat_rows, train_example: Path) -> None:
    """Exactly the 6 backbone give-up rows change: each gets its own prompt instead of the previous row's."""
    trajs = load_trajectories(train_example / "raw_data" / "raw_data_stage_2.json").items
    fixed = build_rows(trajs)
    compat_b = compat_rows.backbone
    changed = [i for i, (a, b) in enumerate(zip(fixed.backbone, compat_b, strict=True)) if a != b]
    assert changed == [6, 31, 36, 41, 60, 74]
    for i in changed:
        assert compat_b[i].target.endswith("conclusion: give up.")
        assert compat_b[i].input == compat_b[i - 1].input  # the reference's stale prompt
        assert fixed.backbone[i].input != fixed.backbone[i - 1].input
        # the fixed prompt holds the last observation of the row's own history
        assert fixed.backbone[i].input.count("observation: ") > compat_b[i].input.count("observation: ")
    # role rows are untouched by this fix
    for name in ("planner", "caller", "summarizer"):
        assert fixed.get(name) == compat_rows.get(name)


def test_default_mode_drops_hallucinated_calls_from_global_rows(train_example: Path) -> None:
    trajs = load_trajectories(train_example / "raw_data" / "raw_data_stage_2.json").items
    traj = trajs[2].model_copy(deep=True)
    caller_turns = [i for i, t in enumerate(traj.conversations) if t.role == "caller"]
    first = caller_turns[0]
    traj.conversations[first].value = "Action: invalid_hallucination_function_name\nAction Input: {}"
    compat = build_rows([traj], compat=True)
    fixed = build_rows([traj])
    assert len(compat.backbone) == len(fixed.backbone) + 1
    assert any("invalid_hallucination_function_name" in r.target for r in compat.backbone)
    assert not any("invalid_hallucination_function_name" in r.target for r in fixed.backbone)
    # both modes drop it from the role rows but keep it in later histories
    for rows in (compat, fixed):
        assert not any("invalid_hallucination_function_name" in r.target for r in rows.caller)
        assert len(rows.planner) == len(fixed.backbone)
        assert any("invalid_hallucination_function_name" in r.input for r in rows.planner)
