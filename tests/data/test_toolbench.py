"""ToolBench raw answer files → trajectories, checked against the reference's own stage-2 output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi.data import DataError
from umi.data.toolbench import (
    COMPAT_STAGE1_LIMIT,
    chain_to_conversations,
    load_answer_folder,
    observation_text,
    tool_doc_from_function,
)
from umi.format.naming import api_function_name, standardize, tool_of


def test_stage1_chains_reproduce_released_stage2(train_example: Path) -> None:
    raw = train_example / "raw_data"
    s1 = json.loads((raw / "raw_data_stage_1.json").read_text())
    s2 = json.loads((raw / "raw_data_stage_2.json").read_text())
    assert len(s1) == len(s2) == 20
    for a, b in zip(s1, s2, strict=True):
        assert chain_to_conversations(a["instruction"], a["chains"], compat=True) == b["conversations"]
        assert a["tools"] == b["tools"]


def test_default_mode_removes_stray_quote_from_observations(train_example: Path) -> None:
    s1 = json.loads((train_example / "raw_data" / "raw_data_stage_1.json").read_text())
    changed: dict[int, int] = {}
    for i, a in enumerate(s1):
        compat = chain_to_conversations(a["instruction"], a["chains"], compat=True)
        fixed = chain_to_conversations(a["instruction"], a["chains"])
        for x, y in zip(compat, fixed, strict=True):
            if x != y and x["from"] == "assistant":  # the final thought kept (tests/data/test_converter_thoughts.py)
                assert x["value"].startswith(" Next:") and not y["value"].startswith(" Next:")
                continue
            if x != y:
                assert x["from"] == "observation" and x["value"].startswith(' "')
                assert not y["value"].startswith(' "')
                changed[i] = changed.get(i, 0) + 1
    # README: 10 of the 20 example trajectories change (19 observations in all); the rest are byte-identical
    assert sorted(changed) == [0, 2, 3, 4, 5, 6, 10, 11, 15, 19]
    assert sum(changed.values()) == 19


def test_answer_folder_13_valid_2_invalid(shared_data: Path) -> None:
    folder = shared_data / "toolbench" / "data_example" / "answer"
    with pytest.raises(DataError, match="no train_messages"):
        load_answer_folder(folder)
    loaded = load_answer_folder(folder, skip_invalid=True)
    assert len(loaded.items) == 13
    assert sorted(Path(e.path).name for e in loaded.skipped) == [
        "69_ChatGPT_DFS_woFilter_w2.json",
        "8_ChatGPT_DFS_woFilter_w2.json",
    ]
    for traj in loaded.items:
        assert traj.conversations[0].role == "user"
        assert "Finish" not in traj.tool_names
        assert all(len(n) <= 64 for n in traj.tool_names)
    give_ups = [t for t in loaded.items if "Next: give up." in t.conversations[-1].value]
    assert len(give_ups) == 4  # finish_type give_up in 4 of the valid files
    # DFSDT "not the first time" user turns are kept
    assert any(
        t.role == "user" and "not the first time" in t.value for tr in loaded.items for t in tr.conversations[1:]
    )


def test_compat_keeps_the_reference_20_trajectory_limit(tmp_path: Path, shared_data: Path) -> None:
    src = next((shared_data / "toolbench" / "data_example" / "answer" / "G1_answer").glob("10_*.json"))
    for i in range(COMPAT_STAGE1_LIMIT + 5):
        (tmp_path / f"{i:03d}_x.json").write_text(src.read_text())
    assert len(load_answer_folder(tmp_path).items) == 25
    assert len(load_answer_folder(tmp_path, compat=True).items) == 20


def test_tool_doc_from_function() -> None:
    fn = {
        "name": "x" * 70 + "_for_tool",
        "description": "d" * 300,
        "parameters": {"properties": {"q": {"type": "string", "description": "query"}, "n": {"type": "integer"}}},
    }
    doc = tool_doc_from_function(fn)
    assert len(doc["Name"]) == 64 and doc["Name"].endswith("_for_tool")
    assert len(doc["function"]) == 256
    assert doc["input"] == {"q": "string, query", "n": "integer"}


def test_observation_text_fallbacks() -> None:
    assert observation_text('{"error": "", "response": "ok"}') == "ok"
    truncated = '{"error": "", "response": "{\'a\': 1, \'b\': \\"x'
    assert observation_text(truncated, compat=True).startswith(' "')
    assert observation_text(truncated).startswith("{'a': 1")
    assert observation_text("garbage") == ""


def test_toolbench_naming_rules() -> None:
    assert standardize("Simple YouTube Search!") == "simple_youtube_search"
    assert api_function_name("Video", "Simple YouTube Search") == "video_for_simple_youtube_search"
    assert api_function_name("from", "t") == "is_from_for_t"
    assert api_function_name("id", "t") == "is_id_for_t"
    long = api_function_name("a" * 80, "tool")
    assert len(long) == 64 and long.endswith("_for_tool")
    assert tool_of("video_for_simple_youtube_search") == "simple_youtube_search"
