"""Prefix-shared packing is exact: the same per-token losses and gradients as training the rows separately."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from umi.data import build_rows
from umi.schema import ToolDoc, Trajectory, Turn
from umi.train.data import IGNORE, encode_rows
from umi.train.loop import _batch, token_loss_sum
from umi.train.model import load_model, load_tokenizer
from umi.train.prefix_pack import collate_pack, pack_stats, plan_packs, use_pack_attention


def _long_trajectory() -> Trajectory:
    tool = ToolDoc(Name="search_for_books", function="Search books by title.", input={"q": "string, a title"})
    conv = [Turn(role="user", value="Find three books about rivers and tell me their authors.")]
    for k in range(3):
        conv += [
            Turn(role="assistant", value=f"Step {k}: I search for rivers, page {k}.\n Next: caller."),
            Turn(role="caller", value=f'Action: search_for_books\nAction Input: {{"q": "rivers {k}"}}'),
            Turn(role="observation", value=f'{{"title": "River {k}", "author": "A{k}"}}' if k != 1 else ""),
        ]
    conv += [
        Turn(role="assistant", value="I have all three.\n Next: conclusion."),
        Turn(role="conclusion", value="River 0 by A0, River 1 by A1, River 2 by A2."),
    ]
    return Trajectory(tools=[tool], instruction=conv[0].value, conversations=conv)


def _per_token_losses(model, encoded, order):  # type: ignore[no-untyped-def]
    out = []
    for i in order:
        batch = _batch(encoded, [i], 0, False)
        shifted = batch.pop("shifted")
        logits = model(**batch, use_cache=False).logits[0]
        keep = shifted[0] != IGNORE
        out.append(torch.nn.functional.cross_entropy(logits[keep], shifted[0][keep], reduction="none"))
    return torch.cat(out)


@pytest.mark.parametrize(
    ("row_set", "attention"),
    [("backbone", "sdpa"), ("planner", "sdpa"), ("caller", "sdpa"), ("backbone", "segments"), ("planner", "segments")],
)
def test_prefix_packed_losses_and_gradients_equal_separate_rows(tiny_base: Path, row_set: str, attention: str) -> None:
    """`sdpa`: one attention over the pack under its 4D mask; `segments`: `pack_attention`, segment by segment."""
    rows = build_rows([_long_trajectory()]).get(row_set)
    assert len(rows) >= 3
    tok = load_tokenizer(str(tiny_base))
    encoded = encode_rows(rows, tok, 4096)
    packs = plan_packs(rows, encoded, max_tokens=100_000)
    assert len(packs) == 1 and len(packs[0].branches) == len(rows) - 1
    stats = pack_stats(packs, encoded)
    assert stats["packed_tokens"] < 0.75 * stats["row_tokens"]  # the shared prefix is really shared
    order = [packs[0].base, *[i for i, _ in packs[0].branches]]

    model = load_model(str(tiny_base))
    model.eval()  # no dropout: both sides compute the same function
    separate = _per_token_losses(model, encoded, order)
    if attention == "segments":
        use_pack_attention(model)  # after the separate rows: those ran on transformers' own SDPA
    separate.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    batch = collate_pack(packs[0], encoded)
    assert int(batch["targets"].numel()) == separate.numel() == sum(e.target_tokens for e in encoded)
    positions, targets = batch.pop("loss_positions"), batch.pop("targets")
    logits = model(**batch, use_cache=False).logits[0, positions]
    packed = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert torch.allclose(packed, separate, atol=5e-5), (packed - separate).abs().max()
    packed.sum().backward()
    for name, p in model.named_parameters():
        rel = (p.grad - grads[name]).norm() / (grads[name].norm() + 1e-12)
        assert rel < 1e-4, (name, float(rel))


def test_prefix_pack_mask_is_needed(tiny_base: Path) -> None:
    """Negative control: the same pack with a plain causal mask (branches see other branches) gives other losses."""
    rows = build_rows([_long_trajectory()]).planner
    tok = load_tokenizer(str(tiny_base))
    encoded = encode_rows(rows, tok, 4096)
    pack = plan_packs(rows, encoded, max_tokens=100_000)[0]
    batch = collate_pack(pack, encoded)
    positions, targets = batch.pop("loss_positions"), batch.pop("targets")
    model = load_model(str(tiny_base)).eval()
    with torch.no_grad():
        right = torch.nn.functional.cross_entropy(model(**batch).logits[0, positions], targets)
        batch.pop("attention_mask")
        wrong = torch.nn.functional.cross_entropy(model(**batch).logits[0, positions], targets)
    assert abs(float(right) - float(wrong)) > 1e-3


def test_lm_head_at_loss_positions_gives_the_same_loss(tiny_base: Path) -> None:
    rows = build_rows([_long_trajectory()]).caller
    tok = load_tokenizer(str(tiny_base))
    encoded = encode_rows(rows, tok, 4096)
    model = load_model(str(tiny_base)).eval()
    with torch.no_grad():
        for micro in ([0, 1], [2]):
            batch = _batch(encoded, micro, int(tok.pad_token_id), False)
            fast = token_loss_sum(model, batch, lm_head_at_loss=True)
            full = token_loss_sum(model, batch, lm_head_at_loss=False)
            assert torch.allclose(fast, full, rtol=1e-5), (fast, full)
        pack = plan_packs(rows, encoded, max_tokens=100_000)[0]
        b = collate_pack(pack, encoded)
        assert torch.allclose(token_loss_sum(model, b), token_loss_sum(model, b, lm_head_at_loss=False), rtol=1e-5)


def test_packs_respect_their_token_bound(tiny_base: Path) -> None:
    rows = build_rows([_long_trajectory(), _long_trajectory()]).backbone
    tok = load_tokenizer(str(tiny_base))
    encoded = encode_rows(rows, tok, 4096)
    longest = max(len(e.input_ids) for e in encoded)
    packs = plan_packs(rows, encoded, max_tokens=longest + 10)
    assert all(p.tokens <= longest + 10 for p in packs)
    covered = sorted([p.base for p in packs] + [i for p in packs for i, _ in p.branches])
    assert covered == list(range(len(rows)))  # every row exactly once


@pytest.fixture(scope="module")
def tiny_gemma3(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer Gemma 3 (two sliding-window layers of 16 tokens, then a global one) on the tiny tokenizer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = load_tokenizer(str(tiny_base))
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=16,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=2048,
        initializer_range=0.3,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-gemma3")
    Gemma3ForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_segment_attention_keeps_sliding_windows_exact(tiny_gemma3: Path) -> None:
    """On a sliding-window model the packed losses and gradients still equal separate rows: each segment applies the
    window in its row's own positions (without it the branches would see keys their rows never see)."""
    rows = build_rows([_long_trajectory()]).planner
    tok = load_tokenizer(str(tiny_gemma3))
    encoded = encode_rows(rows, tok, 4096)
    pack = plan_packs(rows, encoded, max_tokens=100_000)[0]
    assert min(c for _, c in pack.branches) > 16  # every branch's prefix is longer than the window
    order = [pack.base, *[i for i, _ in pack.branches]]
    model = load_model(str(tiny_gemma3)).eval()
    separate = _per_token_losses(model, encoded, order)
    separate.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    use_pack_attention(model)
    batch = collate_pack(pack, encoded)
    positions, targets = batch.pop("loss_positions"), batch.pop("targets")
    packed = torch.nn.functional.cross_entropy(
        model(**batch, use_cache=False).logits[0, positions], targets, reduction="none"
    )
    assert torch.allclose(packed, separate, atol=5e-5), (packed - separate).abs().max()
    packed.sum().backward()
    for name, p in model.named_parameters():
        if name in grads:
            rel = (p.grad - grads[name]).norm() / (grads[name].norm() + 1e-12)
            assert rel < 1e-4, (name, float(rel))
