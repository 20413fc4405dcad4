"""Name ranking (`TrainConfig.name_rank`): each of the task's API names scored as a whole where the target spells the
step's API; in a prefix pack the candidates are branches, and their scores equal separate forward passes over the
rows with the name replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from umi.data import build_rows
from umi.schema import ToolDoc, Trajectory
from umi.train.data import encode_rows, step_call_names
from umi.train.loop import token_losses
from umi.train.model import load_model, load_tokenizer
from umi.train.name_rank import name_choice
from umi.train.prefix_pack import collate_pack, plan_packs, use_pack_attention

SEARCH, AUTHOR = "search_for_books", "author_for_books"  # the tools of the `books` fixture (conftest)
SHOPS = "search_for_bookshops"


def _with_shops(books: Trajectory) -> Trajectory:
    """The `books` fixture with a third API whose name has the first API's as a prefix (the token after a name
    must be scored, or the shorter name would win by stopping early)."""
    shops = ToolDoc(Name=SHOPS, function="Shops that sell a book.", input={"id": "string, a book id"})
    return books.model_copy(update={"tools": [*books.tools, shops]})


def _separate_scores(model, tok, row, gold: str, names: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    """Each candidate's summed log-probability (its tokens and the one after it), one plain forward pass per name
    over the row with the name in the gold one's place."""
    from umi.format import END_OF_TURN

    prompt = tok(row.input, add_special_tokens=True)["input_ids"]
    choice = name_choice(tok, row.target, gold, names)
    assert choice is not None
    at = row.target.find(gold)
    out = []
    for name, cand in zip(choice.names, choice.candidates, strict=True):
        ids = tok(row.target[:at] + name + row.target[at + len(gold) :] + END_OF_TURN, add_special_tokens=False)
        seq = prompt + ids["input_ids"][: choice.at + len(cand)]
        assert tuple(seq[len(prompt) + choice.at :]) == cand
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([seq])).logits[0].float(), -1)
        start = len(prompt) + choice.at
        out.append(sum(float(logp[start + k - 1, t]) for k, t in enumerate(cand)))
    return out


def test_name_choice_lists_gold_first_and_scores_the_token_after_the_name(tiny_base: Path) -> None:
    tok = load_tokenizer(str(tiny_base))
    target = f"now '{AUTHOR}' gives its author. Next: caller."
    choice = name_choice(tok, target, AUTHOR, [SEARCH, AUTHOR, SHOPS])
    assert choice is not None and len(choice.candidates) == 3 and choice.names == (AUTHOR, SEARCH, SHOPS)
    texts = [tok.decode(list(c)) for c in choice.candidates]
    assert texts[0].strip().startswith(AUTHOR) and texts[0].rstrip().endswith("'")  # the quote after the name
    assert {t.strip(" '") for t in texts[1:]} == {SEARCH, SHOPS}
    assert name_choice(tok, "no name here", AUTHOR, [SEARCH, AUTHOR]) is None
    assert name_choice(tok, target, AUTHOR, [AUTHOR]) is None  # nothing to rank against


@pytest.mark.parametrize("attention", ["sdpa", "segments"])
def test_packed_name_scores_equal_separate_rows(books: Trajectory, tiny_base: Path, attention: str) -> None:
    rows = build_rows([_with_shops(books)])
    tok = load_tokenizer(str(tiny_base))
    names = step_call_names(rows.planner, rows.caller)
    enc = encode_rows(rows.planner, tok, 4096, emphasis=names, name_rank=True)
    assert [e.choice is not None for e in enc] == [True, True, False]
    packs = plan_packs(rows.planner, enc, max_tokens=100_000)
    assert len(packs) == 1 and packs[0].base == 2  # both ranked rows are branches: their candidates see their row
    model = load_model(str(tiny_base)).eval()
    expected = [_separate_scores(model, tok, rows.planner[i], names[i][0], [SEARCH, AUTHOR, SHOPS]) for i in (0, 1)]
    if attention == "segments":
        use_pack_attention(model)
    batch = collate_pack(packs[0], enc)
    assert len(batch["pack_segments"]) > 3  # candidate branches beyond the three rows' segments
    positions, targets = batch.pop("loss_positions"), batch.pop("targets")
    at, tokens = batch.pop("rank_at"), batch.pop("rank_tokens")
    group, cand = batch.pop("rank_group"), batch.pop("rank_candidate")
    with torch.no_grad():
        logits = model(**batch, use_cache=False).logits[0].float()
    lp = torch.log_softmax(logits[at], -1).gather(-1, tokens[:, None]).squeeze(-1)
    # the groups follow the pack's row order: branch rows in plan order
    order = [i for i, _ in packs[0].branches]
    for g, row in enumerate(order):
        got = [float(lp[(group == g) & (cand == c)].sum()) for c in range(len(expected[row]))]
        assert got == pytest.approx(expected[row], abs=2e-4), (row, got, expected[row])
    # the rows' own losses are unchanged by the candidate branches
    plain = collate_pack(packs[0], encode_rows(rows.planner, tok, 4096))
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(logits[positions], targets)
        plain_logits = model(**{k: v for k, v in plain.items() if k not in ("loss_positions", "targets")})
        ce_plain = torch.nn.functional.cross_entropy(plain_logits.logits[0, plain["loss_positions"]], plain["targets"])
    assert float(ce) == pytest.approx(float(ce_plain), abs=1e-5)


def test_name_rank_loss_trains_the_choice(books: Trajectory, tiny_base: Path) -> None:
    """A few gradient steps on the ranking term alone put the gold name first in both ranked rows."""
    rows = build_rows([_with_shops(books)])
    tok = load_tokenizer(str(tiny_base))
    enc = encode_rows(rows.planner, tok, 4096, emphasis=step_call_names(rows.planner, rows.caller), name_rank=True)
    batch = collate_pack(plan_packs(rows.planner, enc, max_tokens=100_000)[0], enc)
    torch.manual_seed(0)
    model = load_model(str(tiny_base))
    use_pack_attention(model)
    first = token_losses(model, batch)
    assert first.rank is not None and len(first.rank) == 2
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(30):
        losses = token_losses(model, batch)
        assert losses.rank is not None
        opt.zero_grad()
        losses.rank.sum().backward()
        opt.step()
    last = token_losses(model, batch)
    assert last.rank is not None
    assert float(last.rank.detach().sum()) < 0.5 * float(first.rank.detach().sum()) and last.rank_hits == 2


def test_name_rank_without_prefix_packing_is_refused(books: Trajectory, tiny_base: Path, tmp_path: Path) -> None:
    from umi.train.config import TrainConfig
    from umi.train.loop import train

    rows = build_rows([_with_shops(books)]).planner
    with pytest.raises(ValueError, match="prefix_packing"):
        train(rows, str(tiny_base), tmp_path / "run", TrainConfig(name_rank=1.0, max_length=512))
    assert not (tmp_path / "run").exists()  # refused before anything is written
