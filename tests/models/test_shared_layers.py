"""Cross-role sharing below the adapters (`umi.models.shared_layers`): a prefix another role ran, grafted onto this
role's cache, gives the same keys and values as prefilling it under this role's adapter, and the engine's greedy
text is the same with sharing on, off, and with no cache at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .test_prompt_caches import growing_history, run


def _upper_adapter(base_dir: Path, out: Path, seed: int, layers: list[int]) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        layers_to_transform=layers,
        init_lora_weights=False,
    )
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def deep_llama(tiny_llama: Path, tiny_llama_saver, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The tiny Llama with 4 layers: with adapters on the upper two, grafting runs attention in a layer whose
    output feeds another layer's keys (with one upper layer a wrong mask would change nothing cached)."""
    from transformers import AutoTokenizer

    return Path(
        tiny_llama_saver(
            AutoTokenizer.from_pretrained(tiny_llama), tmp_path_factory.mktemp("deep") / "m", num_hidden_layers=4
        )
    )


@pytest.fixture(scope="module")
def upper_adapters(deep_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("upper-loras")
    return {role: _upper_adapter(deep_llama, root / role, seed, [2, 3]) for seed, role in enumerate(("p", "c"), 1)}


def _kv(model, ids: torch.Tensor, recorder=None):  # type: ignore[no-untyped-def]
    from transformers import DynamicCache

    cache = DynamicCache(config=model.get_base_model().config)
    with torch.inference_mode():
        if recorder is None:
            model(input_ids=ids, cache=cache, use_cache=True)
            return cache, None
        with recorder.record() as parts:
            model(input_ids=ids, cache=cache, use_cache=True)
        return cache, torch.cat(parts)


def test_graft_equals_a_full_prefill_under_this_roles_adapter(
    deep_llama: Path, upper_adapters: dict[str, Path]
) -> None:
    from transformers import DynamicCache

    from umi.models.hf import TransformersEngine
    from umi.models.shared_layers import HiddenRecorder, graft, shared_depth

    engine = TransformersEngine(str(deep_llama), adapters=upper_adapters, role="test", share_layers=True)
    model = engine.model
    assert shared_depth(model) == 2  # 4 layers, both adapters on layers 2 and 3
    recorder = HiddenRecorder(model, 2)
    ids = engine.tokenizer("the planner thinks and the caller calls an api " * 3, return_tensors="pt").input_ids
    n, keep = ids.shape[1], 5

    def new_cache():  # type: ignore[no-untyped-def]
        return DynamicCache(config=model.get_base_model().config)

    model.set_adapter("p")
    donor, hidden = _kv(model, ids, recorder)
    assert hidden is not None and hidden.shape[0] == n
    model.set_adapter("c")
    reference, _ = _kv(model, ids)
    own, _ = _kv(model, ids[:, :keep])
    for start, base in ((keep, own), (0, None)):
        grafted = graft(model, 2, base, start, donor, hidden, n, new_cache)
        for layer in range(4):
            for got, want in (
                (grafted.layers[layer].keys, reference.layers[layer].keys),
                (grafted.layers[layer].values, reference.layers[layer].values),
            ):
                assert got.shape == want.shape
                assert torch.allclose(got, want, atol=1e-5), (start, layer, (got - want).abs().max())
    # the adapter matters above the split: the donor's own upper layer differs from this role's
    assert not torch.allclose(donor.layers[3].keys, reference.layers[3].keys, atol=1e-3)
    recorder.close()


def test_engine_text_is_the_same_with_sharing_on_off_and_without_a_cache(
    deep_llama: Path, upper_adapters: dict[str, Path]
) -> None:
    from umi.models.hf import TransformersEngine

    engine = TransformersEngine(str(deep_llama), adapters=upper_adapters, role="test", share_layers=True)
    roles = {"planner": "p", "caller": "c"}
    calls = growing_history(3)
    shared = run(engine, calls, roles)
    # each caller call after the first takes the planner's just-run history from below the adapters
    assert [c.shared_tokens > 0 for (role, _), c in zip(calls, shared, strict=True) if role == "caller"][1:] == [
        True,
        True,
    ]
    engine.prefix_cache.clear()  # type: ignore[union-attr]
    engine.share_layers = False
    own_only = run(engine, calls, roles)
    assert all(c.shared_tokens == 0 for c in own_only)
    engine.prefix_cache = None
    uncached = run(engine, calls, roles)
    assert [c.text for c in shared] == [c.text for c in own_only] == [c.text for c in uncached]
    # sharing serves more of each caller prompt from below the adapters than its own cache serves
    caller_prefilled_own = sum(c.prefilled_tokens for (r, _), c in zip(calls, own_only, strict=True) if r == "caller")
    caller_full = sum(
        c.prefilled_tokens - c.shared_tokens for (r, _), c in zip(calls, shared, strict=True) if r == "caller"
    )
    assert caller_full < caller_prefilled_own


def test_roles_without_adapters_share_the_whole_cache(tiny_llama: Path) -> None:
    from umi.models.hf import TransformersEngine

    engine = TransformersEngine(str(tiny_llama), role="test", share_layers=True)
    calls = growing_history(2)
    shared = run(engine, calls)
    assert shared[1].shared_tokens > 0  # the caller's first call starts from the planner's history, all layers
    engine.prefix_cache = None
    assert [c.text for c in shared] == [c.text for c in run(engine, calls)]
