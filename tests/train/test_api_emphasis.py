"""API-name emphasis (`TrainConfig.api_name_weight`) and unlikelihood against the previous call
(`TrainConfig.unlikelihood`): only the step's own call is weighted or contrasted, and both terms are the same whether
rows are padded separately or prefix-packed."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from umi.data import build_rows
from umi.schema import Trajectory
from umi.train.data import encode_rows, step_call_names, unlikely_tokens
from umi.train.loop import _batch, token_losses
from umi.train.model import load_model, load_tokenizer
from umi.train.prefix_pack import collate_pack, plan_packs

SEARCH, AUTHOR = "search_for_books", "author_for_books"  # the tools of the `books` fixture (conftest)


def test_step_call_names_follow_the_step_not_every_name_in_the_thought(books: Trajectory, tiny_base: Path) -> None:
    rows = build_rows([books])
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


def test_weighted_objective_is_the_same_packed_or_padded(books: Trajectory, tiny_base: Path) -> None:
    row_sets = build_rows([books])
    rows = row_sets.planner
    tok = load_tokenizer(str(tiny_base))
    names = step_call_names(rows, row_sets.caller)
    enc = encode_rows(rows, tok, 4096, api_name_weight=5.0, emphasis=names)
    model = load_model(str(tiny_base)).eval()
    with torch.no_grad():
        padded = plain = torch.tensor(0.0)
        for i in range(len(rows)):
            ce, w, *_ = token_losses(model, _batch(enc, [i], int(tok.pad_token_id), False))
            assert w is not None and w.shape == ce.shape
            padded, plain = padded + (ce * w).sum(), plain + ce.sum()
        pack = plan_packs(rows, enc, max_tokens=100_000)[0]
        ce, w, *_ = token_losses(model, collate_pack(pack, enc))
        assert w is not None and int((w == 5.0).sum()) == sum(e.weights.count(5.0) for e in enc if e.weights)
        packed = (ce * w).sum()
    assert torch.allclose(packed, padded, rtol=1e-4), (packed, padded)
    assert float(packed) > float(plain) * 1.01  # the weight really changes the objective


def test_unlikelihood_marks_the_decision_token_against_the_previous_call(books: Trajectory, tiny_base: Path) -> None:
    rows = build_rows([books])
    tok = load_tokenizer(str(tiny_base))
    for role_rows in (rows.planner, rows.caller):
        names = step_call_names(role_rows, rows.caller)
        enc = encode_rows(role_rows, tok, 4096, emphasis=names, unlikelihood=True)
        assert enc[0].unlikely is None  # the first call has no previous call
        marks = [(i, u) for i, u in enumerate(enc[1].unlikely or []) if u != -100]
        assert len(marks) == 1, marks
        at, other = marks[0]
        gold = enc[1].labels[at]
        assert gold != -100 and gold != other
        # the gold token starts spelling this step's API where the previous call's would have gone
        assert AUTHOR.startswith(tok.decode([gold]).strip()) and SEARCH.startswith(tok.decode([other]).strip())
        assert encode_rows(role_rows, tok, 4096, emphasis=names)[1].unlikely is None  # off by default
    assert unlikely_tokens(tok, f"call {SEARCH} again", SEARCH, SEARCH) == []  # gold repeats: nothing to contrast
    assert unlikely_tokens(tok, "no name here", AUTHOR, SEARCH) == []


def test_unlikelihood_term_is_the_same_packed_or_padded_and_lowers_the_previous_call(
    books: Trajectory, tiny_base: Path
) -> None:
    rows = build_rows([books])
    tok = load_tokenizer(str(tiny_base))
    enc = encode_rows(rows.planner, tok, 4096, emphasis=step_call_names(rows.planner, rows.caller), unlikelihood=True)
    model = load_model(str(tiny_base))
    padded = token_losses(model, _batch(enc, [1], int(tok.pad_token_id), False))
    packed = token_losses(model, collate_pack(plan_packs(rows.planner, enc, max_tokens=100_000)[0], enc))
    assert padded.unlikely is not None and packed.unlikely is not None
    assert int((padded.unlikely > 0).sum()) == 1 and int((packed.unlikely > 0).sum()) == 1
    assert torch.allclose(padded.unlikely.sum(), packed.unlikely.sum(), rtol=1e-4)
    # one gradient step on the term alone lowers the previous call's probability at the decision token
    p_before = 1 - torch.exp(-padded.unlikely.sum())
    padded.unlikely.sum().backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad
    after = token_losses(model, _batch(enc, [1], int(tok.pad_token_id), False)).unlikely
    assert after is not None
    p_after = 1 - torch.exp(-after.sum())
    assert p_after < p_before, (float(p_before), float(p_after))


def test_unlikelihood_reaches_training_through_the_cli(books: Trajectory, tiny_base: Path, tmp_path: Path) -> None:
    """`--unlikelihood` is recorded in the manifest and changes the gradient: same first (plain) loss, different
    third (the preset's warm-up makes the first step's learning rate 0). The weight is large because a random tiny
    model gives the previous call's token p ≈ 4e-4, so its term's gradient is small at any sane weight."""
    from typer.testing import CliRunner

    from umi.cli.main import app
    from umi.data import write_rows
    from umi.train.manifest import load_manifest

    data = tmp_path / "rows"
    sets = build_rows([books] * 4)
    for name in ("backbone", "planner", "caller", "summarizer", "multitask"):
        write_rows(data / f"{name}.json", sets.get(name))
    args = ["train", "single", "--base", str(tiny_base), "--data", str(data), "--max-steps", "3", "--micro-batch", "2"]
    losses = {}
    for name, extra in (("plain", []), ("ul", ["--unlikelihood", "1000"])):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
        metrics = (tmp_path / name / "stage1" / "metrics.jsonl").read_text().splitlines()
        losses[name] = [json.loads(x)["loss"] for x in metrics if '"loss"' in x]
    assert load_manifest(tmp_path / "ul").hyperparameters["stage1"]["unlikelihood"] == 1000
    assert abs(losses["plain"][0] - losses["ul"][0]) < 1e-6 * losses["plain"][0]
    assert abs(losses["plain"][2] - losses["ul"][2]) > 1e-6
