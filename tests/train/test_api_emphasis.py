"""API-name emphasis (`TrainConfig.api_name_weight`): only the step's own call is weighted, and the weighted
objective is the same whether rows are padded separately or prefix-packed."""

from __future__ import annotations

from pathlib import Path

import torch

from umi.data import build_rows
from umi.schema import ToolDoc, Trajectory, Turn
from umi.train.data import encode_rows, step_call_names
from umi.train.loop import _batch, token_losses
from umi.train.model import load_model, load_tokenizer
from umi.train.prefix_pack import collate_pack, plan_packs

SEARCH, AUTHOR = "search_for_books", "author_for_books"


def _trajectory() -> Trajectory:
    tools = [
        ToolDoc(Name=SEARCH, function="Search books by title.", input={"q": "string, a title"}),
        ToolDoc(Name=AUTHOR, function="The author of a book.", input={"id": "string, a book id"}),
    ]
    conv = [
        Turn(role="user", value="Who wrote the best book about rivers?"),
        Turn(role="assistant", value=f"I call {SEARCH} to find river books.\n Next: caller."),
        Turn(role="caller", value=f'Action: {SEARCH}\nAction Input: {{"q": "rivers"}}'),
        Turn(role="observation", value='{"id": "b7", "title": "River"}'),
        Turn(role="assistant", value=f"{SEARCH} found b7; now {AUTHOR} gives its author.\n Next: caller."),
        Turn(role="caller", value=f'Action: {AUTHOR}\nAction Input: {{"id": "b7"}}'),
        Turn(role="observation", value='{"author": "Ann"}'),
        Turn(role="assistant", value="Ann wrote River.\n Next: conclusion."),
        Turn(role="conclusion", value="River, by Ann."),
    ]
    return Trajectory(tools=tools, instruction=conv[0].value, conversations=conv)


def test_step_call_names_follow_the_step_not_every_name_in_the_thought(tiny_base: Path) -> None:
    rows = build_rows([_trajectory()])
    assert step_call_names(rows.planner, rows.caller) == [[SEARCH], [AUTHOR], []]
    assert step_call_names(rows.caller, rows.caller) == [[SEARCH], [AUTHOR]]
    tok = load_tokenizer(str(tiny_base))
    names = step_call_names(rows.planner, rows.caller)
    enc = encode_rows(rows.planner, tok, 4096, api_name_weight=5.0, emphasis=names)
    hot = [tok.decode([x for x, w in zip(e.input_ids, e.weights or [], strict=True) if w == 5.0]) for e in enc]
    # Step 2's thought names the previous call (SEARCH) too: only its own call (AUTHOR) is weighted.
    assert [h.strip() for h in hot] == [SEARCH, AUTHOR, ""]
    assert all(w == 1.0 for e in enc for w, x in zip(e.weights or [], e.labels, strict=True) if x == -100)
    assert encode_rows(rows.planner, tok, 4096, emphasis=names)[0].weights is None  # weight 1: plain mean


def test_weighted_objective_is_the_same_packed_or_padded(tiny_base: Path) -> None:
    row_sets = build_rows([_trajectory()])
    rows = row_sets.planner
    tok = load_tokenizer(str(tiny_base))
    names = step_call_names(rows, row_sets.caller)
    enc = encode_rows(rows, tok, 4096, api_name_weight=5.0, emphasis=names)
    model = load_model(str(tiny_base)).eval()
    with torch.no_grad():
        padded = plain = torch.tensor(0.0)
        for i in range(len(rows)):
            ce, w = token_losses(model, _batch(enc, [i], int(tok.pad_token_id), False))
            assert w is not None and w.shape == ce.shape
            padded, plain = padded + (ce * w).sum(), plain + ce.sum()
        pack = plan_packs(rows, enc, max_tokens=100_000)[0]
        ce, w = token_losses(model, collate_pack(pack, enc))
        assert w is not None and int((w == 5.0).sum()) == sum(e.weights.count(5.0) for e in enc if e.weights)
        packed = (ce * w).sum()
    assert torch.allclose(packed, padded, rtol=1e-4), (packed, padded)
    assert float(packed) > float(plain) * 1.01  # the weight really changes the objective
