"""PEFT LoRA adapter → llama.cpp GGUF LoRA, so roles trained by `umi train` run on the fast CPU path.

What llama.cpp expects (the layout its own `convert_lora_to_gguf.py` writes): `general.type = adapter`,
`adapter.type = lora`, `adapter.lora.alpha`, and for every adapted weight `blk.N.<tensor>.weight.lora_a` of shape
(r, in) and `.lora_b` of shape (out, r); llama.cpp scales the product by alpha / r, as PEFT does. One detail is easy
to miss: for Llama-architecture models the GGUF converter permutes the rows of `q_proj` and `k_proj` (llama.cpp's
rotary layout), so the adapter's `lora_b` rows of those two projections must be permuted the same way, or the
adapter silently adds its update to the wrong rows. The base GGUF's own metadata gives the head counts, and every
tensor is checked against the base's shapes, so an adapter for another model is an error, not garbage output.

    umi models convert-lora runs/x/glpft/planner/adapter --base embedded --out planner.gguf
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from umi.models.base import EngineError
from umi.models.embedded import resolve_gguf

# Hugging Face module name -> llama.cpp tensor name (Llama-family blocks).
_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])(?:\.\w+)?\.weight$")
_PERMUTED_ARCHS = {"llama"}


def _permute_rows(rows: Any, n_head: int) -> Any:
    """llama.cpp's rotary row order for q/k (the permutation its HF → GGUF converter applies to the weights)."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def gguf_field(reader: Any, name: str) -> Any:
    """A GGUF metadata value (a string, or a scalar as a Python number); None when the file lacks the key."""
    field = reader.fields.get(name)
    if field is None:
        return None
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types and field.types[0].name == "STRING" else value[0].item()


def peft_to_gguf_lora(adapter_dir: str | Path, out: str | Path, *, base: str | Path = "embedded") -> Path:
    """Write the PEFT adapter in `adapter_dir` as a GGUF LoRA for the GGUF model `base` (a path or `embedded`).

    Tensors are stored as float16 (llama.cpp applies F16 LoRAs directly). Raises EngineError naming the adapter
    when it is not a LoRA, adapts modules llama.cpp cannot map, or does not fit the base's shapes."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    src = Path(adapter_dir).expanduser()
    config_path, weights_path = src / "adapter_config.json", src / "adapter_model.safetensors"
    if not config_path.exists() or not weights_path.exists():
        raise EngineError(f"{src}: not a PEFT adapter folder (needs adapter_config.json and adapter_model.safetensors)")
    config = json.loads(config_path.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise EngineError(f"{src}: a {config.get('peft_type')} adapter; only LoRA converts to llama.cpp")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("use_rslora"):
        alpha = alpha * math.sqrt(rank)  # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r
    if config.get("use_dora"):
        raise EngineError(f"{src}: DoRA adapters have no llama.cpp form; train with plain LoRA")

    base_path = resolve_gguf(str(base))
    reader = gguf.GGUFReader(str(base_path))
    arch = gguf_field(reader, "general.architecture")
    n_head = int(gguf_field(reader, f"{arch}.attention.head_count"))
    n_head_kv = int(gguf_field(reader, f"{arch}.attention.head_count_kv") or n_head)
    shapes = {t.name: (int(t.shape[1]), int(t.shape[0])) for t in reader.tensors if len(t.shape) == 2}  # (out, in)

    tensors = load_file(str(weights_path))
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        match = _KEY.search(key)
        if match is None:
            raise EngineError(f"{src}: tensor {key!r} is not a LoRA weight llama.cpp can map (Llama-family blocks)")
        layer, module, which = match.groups()
        pairs.setdefault(f"blk.{layer}.{_MODULES[module]}.weight", {})[which] = value.astype(np.float32)

    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    for name in sorted(pairs, key=lambda n: (int(n.split(".")[1]), n)):
        a, b = pairs[name].get("A"), pairs[name].get("B")
        if a is None or b is None:
            raise EngineError(f"{src}: {name} has only one of lora_A / lora_B")
        if name not in shapes or shapes[name] != (b.shape[0], a.shape[1]):
            raise EngineError(
                f"{src}: {name} is {(b.shape[0], a.shape[1])} in the adapter but {shapes.get(name)} in {base_path}; "
                "convert against the base the adapter was trained on"
            )
        if arch in _PERMUTED_ARCHS and name.endswith("attn_q.weight"):
            b = _permute_rows(b, n_head)
        elif arch in _PERMUTED_ARCHS and name.endswith("attn_k.weight"):
            b = _permute_rows(b, n_head_kv)
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a).astype(np.float16))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out)


def cached_gguf_lora(adapter_dir: str | Path, *, base: str | Path = "embedded") -> Path:
    """`peft_to_gguf_lora` once per adapter content and base: the result sits in umi's cache, keyed by a hash of
    the adapter's files, so shipped PEFT adapters run on llama.cpp without shipping a second copy of them."""
    import hashlib

    from umi.models.embedded import cache_root, cached_file

    src = Path(adapter_dir).expanduser()
    digest = hashlib.sha256(str(resolve_gguf(str(base))).encode())
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        path = src / name
        digest.update(path.read_bytes() if path.exists() else b"")
    out = cache_root() / "gguf-lora" / f"{digest.hexdigest()[:20]}.gguf"
    return cached_file(out, lambda tmp: peft_to_gguf_lora(src, tmp, base=base))
