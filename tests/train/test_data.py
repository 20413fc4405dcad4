"""The loss mask, truncation, length grouping and packing of `umi.train.data`."""

from __future__ import annotations

from pathlib import Path

import torch

from umi.data.rows import RowSets
from umi.format import END_OF_TURN, TRAIN_SYSTEM_PREFIX
from umi.train.data import IGNORE, collate, collate_packed, encode_row, encode_rows, plan_epoch

from .conftest import make_tokenizer


def _load(path: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_only_target_and_end_of_turn_carry_loss(tiny_base: Path, row_sets: RowSets) -> None:
    tok = _load(tiny_base)
    rows = row_sets.planner[:2] + row_sets.caller[:1]
    batch = collate(encode_rows(rows, tok, 4096), tok.pad_token_id)
    for r, row in enumerate(rows):
        ids, labels, mask = batch["input_ids"][r], batch["labels"][r], batch["attention_mask"][r]
        trained = ids[labels != IGNORE].tolist()
        prompt = ids[(labels == IGNORE) & (mask == 1)].tolist()
        # EOS is the literal "</s>": the target ends with exactly one end-of-turn, which is the EOS token.
        assert tok.decode(trained) == row.target + END_OF_TURN
        assert trained[-1] == tok.eos_token_id and trained.count(tok.eos_token_id) == 1
        assert tok.decode(prompt) == row.input
        # Padding carries neither loss nor attention; labels equal ids wherever they are set.
        assert (labels[mask == 0] == IGNORE).all()
        assert torch.equal(labels[labels != IGNORE], ids[labels != IGNORE])
        assert int(mask.sum()) == len(trained) + len(prompt)


def test_other_eos_is_appended_and_compat_prefix(row_sets: RowSets) -> None:
    row = row_sets.summarizer[0]
    tok = make_tokenizer([row.input + row.target + TRAIN_SYSTEM_PREFIX], eos="<|im_end|>")
    enc = encode_row(row, tok, 4096, compat=True)
    trained = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE]
    assert trained[-1] == tok.eos_token_id
    assert tok.decode(trained[:-1]) == row.target + END_OF_TURN
    prompt = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab == IGNORE]
    assert tok.decode(prompt) == TRAIN_SYSTEM_PREFIX + row.input


def test_truncation_cuts_the_prompt_from_the_left_and_keeps_the_target(tiny_base: Path, row_sets: RowSets) -> None:
    tok = _load(tiny_base)
    row = row_sets.caller[0]
    full = encode_row(row, tok, 4096)
    cut = encode_row(row, tok, 128)
    assert len(cut.input_ids) == 128 and cut.prompt_truncated and not cut.target_truncated
    assert cut.target_tokens == full.target_tokens
    assert cut.input_ids == full.input_ids[-128:]  # the prompt's end (history, cue) survives


def test_plan_is_a_pure_function_of_seed_and_epoch_and_groups_lengths() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(200)]
    a = plan_epoch(lengths, 4, seed=1, epoch=0)
    assert a == plan_epoch(lengths, 4, seed=1, epoch=0)
    assert a != plan_epoch(lengths, 4, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(200))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a)
    ungrouped = plan_epoch(lengths, 4, seed=1, epoch=0, group_by_length=False)
    assert spread < sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in ungrouped) / 4


def test_packed_sequences_do_not_attend_to_each_other(tiny_base: Path, row_sets: RowSets) -> None:
    """Position resets without an attention mask give a block-diagonal mask on CPU (sdpa): same logits as apart."""
    from transformers import AutoModelForCausalLM

    tok = _load(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    enc = encode_rows(row_sets.summarizer[:2], tok, 4096)
    packed = collate_packed([enc], tok.pad_token_id)
    with torch.no_grad():
        together = model(**{k: packed[k] for k in ("input_ids", "position_ids")}, use_cache=False).logits[0]
        apart = [model(input_ids=torch.tensor([e.input_ids])).logits[0] for e in enc]
    assert torch.allclose(together, torch.cat(apart), atol=1e-4)
    assert torch.equal(packed["labels"][0], torch.tensor(enc[0].labels + enc[1].labels))
