"""Two LoRA adapters on one tiny base: switching changes the output, and memory holds one base."""

from __future__ import annotations

from pathlib import Path

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
