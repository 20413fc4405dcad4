"""The converter keeps the final step's thought when an answer file writes it as a content-only assistant turn
right before a bare `Finish` call (the shape of StableToolBench's CoT / DFS answer files)."""

from __future__ import annotations

import json
from pathlib import Path

from umi.data.toolbench import chain_to_conversations

CHAIN = [
    {"role": "system", "content": "You are AutoGPT."},
    {"role": "user", "content": "Find news about rivers."},
    {"role": "assistant", "content": "I will search.", "function_call": {"name": "news_for_x", "arguments": "{}"}},
    {"role": "function", "name": "news_for_x", "content": '{"error": "", "response": "no articles"}'},
    {"role": "assistant", "content": "No articles exist; I will say so."},
    {
        "role": "assistant",
        "content": None,
        "function_call": {
            "name": "Finish",
            "arguments": '{"return_type": "give_answer", "final_answer": "There are no river news."}',
        },
    },
]


def test_thought_before_a_bare_finish_is_kept() -> None:
    conv = chain_to_conversations("Find news about rivers.", CHAIN)
    assert conv[-2] == {"from": "assistant", "value": "No articles exist; I will say so.\n Next: conclusion."}
    assert conv[-1] == {"from": "conclusion", "value": "There are no river news."}


def test_compat_drops_it_as_the_reference_did() -> None:
    conv = chain_to_conversations("Find news about rivers.", CHAIN, compat=True)
    assert conv[-2] == {"from": "assistant", "value": " Next: conclusion."}


def test_real_answer_files_of_that_shape(shared_data: Path) -> None:
    """The two ToolBench answer files in the shared data with this shape keep their final thought."""
    base = shared_data / "toolbench" / "data_example" / "answer"
    for name, start in (
        ("G3_answer/15_ChatGPT_DFS_woFilter_w2.json", "Great! The modified function call"),
        ("G1_answer/57_ChatGPT_DFS_woFilter_w2.json", "I apologize, but it seems that I am unable"),
    ):
        ag = json.loads((base / name).read_text())["answer_generation"]
        conv = chain_to_conversations(ag["query"], ag["train_messages"][-1])
        finals = [
            t
            for t in conv
            if t["from"] == "assistant" and ("Next: conclusion." in t["value"] or "Next: give up." in t["value"])
        ]
        assert finals and finals[-1]["value"].startswith(start), (name, finals[-1:])
        old = chain_to_conversations(ag["query"], ag["train_messages"][-1], compat=True)
        old_finals = [t for t in old if t["from"] == "assistant" and t["value"].startswith(" Next:")]
        assert old_finals, name  # the reference's walk lost it
