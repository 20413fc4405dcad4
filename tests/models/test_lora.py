"""Two LoRA adapters on one tiny base: switching changes the output, and memory holds one base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from umi.models.base import GenerationParams
from umi.models.roles import load_roles


def _adapter(base_dir: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    )
    peft.save_pretrained(out)
    return out


def test_two_adapters_switch_and_share_one_base(tiny_llama: Path, tmp_path: Path) -> None:
    from umi.models.hf import TransformersEngine

    a = _adapter(tiny_llama, tmp_path / "a", 1)
    b = _adapter(tiny_llama, tmp_path / "b", 2)
    engine = TransformersEngine(str(tiny_llama), adapters={"planner": a, "caller": b})
    params = GenerationParams(max_new_tokens=12)
    prompt = ["the planner thinks and"]
    out_a = engine.complete(prompt, params, adapter="planner")[0].text
    out_b = engine.complete(prompt, params, adapter="caller")[0].text
    out_base = engine.complete(prompt, params, adapter=None)[0].text
    assert out_a != out_b
    assert out_base != out_a or out_base != out_b  # the bare base is not both adapters
    assert engine.complete(prompt, params, adapter="planner")[0].text == out_a  # switching back is exact
    # one base in memory: base parameters counted once, plus two small adapters
    base_params = sum(p.numel() for n, p in engine.model.named_parameters() if "lora_" not in n)
    fresh = sum(p.numel() for p in TransformersEngine(str(tiny_llama)).model.parameters())
    assert base_params == fresh
    lora_params = sum(p.numel() for n, p in engine.model.named_parameters() if "lora_" in n)
    assert 0 < lora_params < fresh / 2


def test_roles_from_config_share_one_engine(tiny_llama: Path, tmp_path: Path) -> None:
    a = _adapter(tiny_llama, tmp_path / "a", 1)
    b = _adapter(tiny_llama, tmp_path / "b", 2)
    config = tmp_path / "roles.toml"
    config.write_text(
        f'[engines.base]\nkind = "transformers"\nmodel = "{tiny_llama}"\n'
        f'adapters = {{ planner = "{a}", caller = "{b}" }}\n'
        '[roles.planner]\nengine = "base"\nadapter = "planner"\n'
        '[roles.caller]\nengine = "base"\nadapter = "caller"\n'
        '[roles.summarizer]\nengine = "base"\n'
    )
    roles = load_roles(config)
    assert roles.planner.engine is roles.caller.engine is roles.summarizer.engine  # type: ignore[union-attr]
    params = GenerationParams(max_new_tokens=8)
    texts = {
        r: roles.get(r).complete(["the caller calls"], params)[0].text for r in ("planner", "caller", "summarizer")
    }
    assert len(set(texts.values())) >= 2


def test_llamacpp_gguf_loras_switch_per_request(gguf_loras: dict[str, Path]) -> None:
    """Two GGUF LoRAs beside one llama.cpp base: each request enables only its role's adapter (scale 1)."""
    from umi.models.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine("embedded", n_ctx=256, loras=gguf_loras, role="planner/caller")
    params = GenerationParams(max_new_tokens=6)
    prompt = ["The capital of France is"]
    texts = {r: engine.complete(prompt, params, adapter=r)[0].text for r in ("planner", "caller", None)}
    assert len(set(texts.values())) == 3
    assert texts[None].strip().startswith("Paris")  # adapters off: the bare base
    assert engine.complete(prompt, params, adapter="planner")[0].text == texts["planner"]
    engine.close()


# Transformers' top two logits closer than this are a near-tie that Q4_1 (llama.cpp) and fp32 (transformers on the
# dequantized weights) may break differently; every clearer step must agree. Measured here: the converted adapter
# first differs at a step with margin 0.05, the adapter converted without the q/k permutation at one with 0.44.
NEAR_TIE = 0.25
GREEDY_TOKENS = 16
PROMPTS = ["The capital of France is", "Once upon a time, in a small village,"]


def _greedy_with_margins(engine: Any, adapter: str | None, prompt: str, n: int) -> tuple[list[int], list[float]]:
    """Transformers' greedy token ids for `prompt` under `adapter`, and at each step the gap between its top two
    logits (how clear that choice was)."""
    model, tok = engine.model, engine.tokenizer
    if adapter is not None:
        model.set_adapter(adapter)
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids, max_new_tokens=n, do_sample=False, output_scores=True, return_dict_in_generate=True, top_p=None
        )
    margins = [float(score[0].topk(2).values[0] - score[0].topk(2).values[1]) for score in out.scores]
    return out.sequences[0, ids.shape[1] :].tolist(), margins


def _first_divergence(tok: Any, ids: list[int], text: str) -> int:
    """The index of the first of transformers' `ids` that `text` (llama.cpp's output) does not continue with;
    `len(ids)` when it follows all of them. Compared through the decoded text, so two tokenizations of the same
    characters count as the same tokens."""
    for i in range(len(ids)):
        if not text.startswith(tok.decode(ids[: i + 1])):
            return i
    return len(ids)


def _agreement(engine: Any, adapter: str | None, prompt: str, text: str) -> tuple[int, float | None]:
    """(tokens llama.cpp's `text` shares with transformers' greedy path, transformers' top-two margin at the first
    differing step, None when all `GREEDY_TOKENS` agree)."""
    ids, margins = _greedy_with_margins(engine, adapter, prompt, GREEDY_TOKENS)
    d = _first_divergence(engine.tokenizer, ids, text)
    return d, (margins[d] if d < len(ids) else None)


def _same_until_a_near_tie(agreement: tuple[int, float | None]) -> bool:
    return agreement[1] is None or agreement[1] < NEAR_TIE


def _mild_adapter(base: Path, out: Path, seed: int, strength: float = 0.6) -> Path:
    """A random LoRA on q/k/v/o of `base`, strong enough to change the text, mild enough to keep it fluent (so two
    engines can agree token for token)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    peft = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False),
    )
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.mul_(strength)
    peft.save_pretrained(out)
    return out


def test_peft_adapter_converted_to_gguf_generates_the_same_on_llamacpp(
    umi_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PEFT LoRA on the embedded model (q/k/v/o, so llama.cpp's q/k row permutation matters) converted by
    `peft_to_gguf_lora`: llama.cpp with the GGUF adapter writes transformers' greedy tokens with the PEFT adapter,
    token for token, up to the first near-tie of transformers' logits; the same adapter converted without the q/k
    permutation leaves that path at a clear step (the negative control). `base_loras` keeps an adapter on for every
    request."""
    import umi.models.gguf_lora as gguf_lora
    from umi.models.embedded import embedded_gguf
    from umi.models.gguf_lora import peft_to_gguf_lora
    from umi.models.hf import TransformersEngine, dequantized_dir
    from umi.models.llamacpp import LlamaCppEngine

    base = dequantized_dir(embedded_gguf())
    _mild_adapter(base, tmp_path / "peft", 0)
    gguf_path = peft_to_gguf_lora(tmp_path / "peft", tmp_path / "role.gguf")
    with monkeypatch.context() as m:
        m.setattr(gguf_lora, "_PERMUTED_ARCHS", set())  # the converter as it would be without the permutation
        unpermuted = peft_to_gguf_lora(tmp_path / "peft", tmp_path / "unpermuted.gguf")

    params = GenerationParams(max_new_tokens=GREEDY_TOKENS)
    hf = TransformersEngine(str(base), adapters={"role": str(tmp_path / "peft")})
    lc = LlamaCppEngine("embedded", n_ctx=256, loras={"role": gguf_path, "unpermuted": unpermuted})
    converted = [lc.complete([p], params, adapter="role")[0].text for p in PROMPTS]
    wrong = [lc.complete([p], params, adapter="unpermuted")[0].text for p in PROMPTS]
    bare = [lc.complete([p], params)[0].text for p in PROMPTS]
    lc.close()
    agree = [_agreement(hf, "role", p, t) for p, t in zip(PROMPTS, converted, strict=True)]
    assert all(_same_until_a_near_tie(a) for a in agree), (agree, converted)
    assert sum(n for n, _ in agree) >= GREEDY_TOKENS // 2  # not vacuous (measured here: 16 and 13 of 16 tokens)
    miss = [_agreement(hf, "role", p, t) for p, t in zip(PROMPTS, wrong, strict=True)]
    assert not all(_same_until_a_near_tie(a) for a in miss), (miss, wrong)  # measured: off at token 3, margin 0.44
    assert converted != bare
    always = LlamaCppEngine("embedded", n_ctx=256, loras={"role": gguf_path}, base_loras=["role"])
    assert [always.complete([p], params)[0].text for p in PROMPTS] == converted
    always.close()


def test_gguf_conversion_refuses_an_adapter_of_another_model(tiny_llama: Path, tmp_path: Path) -> None:
    from umi.models.base import EngineError
    from umi.models.gguf_lora import peft_to_gguf_lora

    with pytest.raises(EngineError, match="convert against the base the adapter was trained on"):
        peft_to_gguf_lora(_adapter(tiny_llama, tmp_path / "tiny", 1), tmp_path / "x.gguf")
    with pytest.raises(EngineError, match="not a PEFT adapter folder"):
        peft_to_gguf_lora(tmp_path, tmp_path / "y.gguf")


@pytest.mark.parametrize("base_quant", [None, "Q8_0", "merged"])
def test_glpft_manifest_binds_on_llamacpp_like_on_transformers(
    umi_cache: Path, tmp_path: Path, base_quant: str | None
) -> None:
    """A packaged-style GLPFT manifest on the embedded base (stage-1 adapter under `base_adapters`, one adapter per
    role): bound on llama.cpp (converted GGUF LoRAs, stage 1 always on) it generates what the transformers binding
    (stage 1 merged into the base, role adapter on top) generates, on the shipped Q4_1 base and on its Q8_0 copy
    (umi's default); and so does one Q8_0 model with both adapters folded in (`merge_gguf_loras`)."""
    import json

    from umi.models.embedded import embedded_gguf
    from umi.models.hf import dequantized_dir
    from umi.models.roles import llamacpp_roles_from_manifest, roles_from_manifest

    base = dequantized_dir(embedded_gguf())
    # milder than one adapter alone: two stacked random updates at 0.6 push Q4_1 and fp32 apart on near-ties
    _mild_adapter(base, tmp_path / "stage1", 1, strength=0.4)
    _mild_adapter(base, tmp_path / "planner", 2, strength=0.4)
    manifest = {
        "umi_manifest": 1,
        "recipe": "glpft",
        "base": "embedded",
        "base_adapters": ["stage1"],
        "roles": {"planner": {"adapter": "planner"}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    quant = "Q8_0" if base_quant == "merged" else base_quant
    fast = llamacpp_roles_from_manifest(tmp_path / "manifest.json", n_ctx=256, base_quant=quant)
    engine = fast.get("planner").engine
    assert engine.model_path.name.endswith(".Q8_0.gguf") is (quant == "Q8_0")  # type: ignore[attr-defined]
    if base_quant == "merged":
        from umi.models.gguf_merge import merge_gguf_loras
        from umi.models.llamacpp import LlamaCppEngine

        loras = engine._lora_ids  # type: ignore[attr-defined]
        assert set(loras) == {"stage1", "planner"}
        paths = [engine.lora_paths[n] for n in ("stage1", "planner")]  # type: ignore[attr-defined]
        merged = LlamaCppEngine(merge_gguf_loras("embedded", paths, tmp_path / "planner.gguf"), n_ctx=256)
        params = GenerationParams(max_new_tokens=GREEDY_TOKENS)
        planner = [merged.complete([p], params)[0].text for p in PROMPTS]
        merged.close()
        reference = roles_from_manifest(tmp_path / "manifest.json").get("planner")
        agree = [_agreement(reference.engine, reference.adapter, p, t) for p, t in zip(PROMPTS, planner, strict=True)]
        assert all(_same_until_a_near_tie(a) for a in agree), (agree, planner)
        assert sum(n for n, _ in agree) >= GREEDY_TOKENS // 2
        return
    slow = roles_from_manifest(tmp_path / "manifest.json")
    params = GenerationParams(max_new_tokens=GREEDY_TOKENS)
    planner = [fast.get("planner").complete([p], params)[0].text for p in PROMPTS]
    reference = slow.get("planner")
    agree = [_agreement(reference.engine, reference.adapter, p, t) for p, t in zip(PROMPTS, planner, strict=True)]
    assert all(_same_until_a_near_tie(a) for a in agree), (agree, planner)
    assert sum(n for n, _ in agree) >= GREEDY_TOKENS // 2  # (measured here: 16 and 16 of 16 tokens)
    assert fast.get("planner").engine.name == "llama.cpp" and fast.backbone is not None
    stage1 = [fast.get("backbone").complete([p], params)[0].text for p in PROMPTS]  # stage 1 alone
    assert stage1 != planner
    # transformers: the backbone is the same engine with no role adapter (stage 1 is merged into its base)
    backbone = slow.get("backbone")
    assert backbone.engine is reference.engine and backbone.adapter is None


def test_merge_refuses_adapters_of_another_model_and_unknown_quants(
    gguf_loras: dict[str, Path], tmp_path: Path
) -> None:
    """`merge_gguf_loras` checks every adapted tensor against the base and names the supported quantizations."""
    from umi.models.base import EngineError
    from umi.models.gguf_merge import merge_gguf_loras

    with pytest.raises(EngineError, match="use one of Q8_0, F16"):
        merge_gguf_loras("embedded", [gguf_loras["planner"]], tmp_path / "x.gguf", quant="Q3_K")
    wrong = _lora_of_shape(tmp_path / "wrong.gguf", n_in=100, n_out=576)  # SmolLM2's attn_q is 576 x 576
    with pytest.raises(EngineError, match="merge onto the base the adapters were made for"):
        merge_gguf_loras("embedded", [wrong], tmp_path / "y.gguf")


def _lora_of_shape(path: Path, *, n_in: int, n_out: int) -> Path:
    """A one-tensor GGUF LoRA on blk.0.attn_q of the given shape (another model's adapter, for the embedded base)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 16.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.ones((8, n_in), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.ones((n_out, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
