"""A GGUF requantized (to Q8_0 or F16), optionally with GGUF LoRAs folded in.

Why: the embedded base is Q4_1, which llama.cpp's AVX2 kernels prefill slowly; the same weights stored as Q8_0
ran the shipped planner 1.35x faster at prefill and 1.59x at decode on this project's CPU
(`benchmarks/results/engines.md`), so the shipped roles bind on a Q8_0 copy of the base (made once, cached) with
their adapters still applied at run time. Folding the adapters in (one model per role) was measured too: no clear
gain (faster prefill, slower decode in one measurement), a model per role in memory, and a lower static-subset
score; it stays available for deployments that want a role as one file.

The merge is plain arithmetic on the GGUF tensors llama.cpp would combine at run time: every quantized weight
`W` becomes `W + Σ (alpha / r) · B·A` over the adapters given (the LoRA GGUFs already hold B's rows in llama.cpp's
rotary order, so no permutation is needed here), then is quantized to `quant`. Q8_0 rounds each weight to 1/127 of
its 32-weight block's largest magnitude; `F16` keeps more (and prefills slower). Tensors stored unquantized
(norms) are copied as they are.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from umi.models.base import EngineError
from umi.models.embedded import cache_root, cached_file, resolve_gguf
from umi.models.gguf_lora import gguf_field

#: The storage types a merged role can use: Q8_0 (fast on CPUs, the default) or F16 (closer, slower to prefill).
MERGE_QUANTS = ("Q8_0", "F16")


def _lora_deltas(path: Path) -> tuple[dict[str, tuple[Any, Any]], float]:
    """{base tensor name: (A, B)} of one GGUF LoRA, and its alpha."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    if gguf_field(reader, "general.type") != "adapter":
        raise EngineError(f"{path}: not a GGUF LoRA adapter (general.type is not 'adapter')")
    alpha = float(gguf_field(reader, "adapter.lora.alpha") or 0.0)
    parts: dict[str, dict[str, Any]] = {}
    for t in reader.tensors:
        name, _, which = t.name.rpartition(".")
        parts.setdefault(name, {})[which] = t.data
    pairs = {}
    for name, ab in parts.items():
        if "lora_a" not in ab or "lora_b" not in ab:
            raise EngineError(f"{path}: {name} has only one of lora_a / lora_b")
        pairs[name] = (ab["lora_a"], ab["lora_b"])
    return pairs, alpha


def merge_gguf_loras(base: str | Path, loras: Sequence[str | Path], out: str | Path, *, quant: str = "Q8_0") -> Path:
    """Write `base` (a GGUF path or `embedded`) with the GGUF LoRAs in `loras` folded in, quantized to `quant`.

    Raises EngineError when an adapter names a tensor the base lacks or has another shape (an adapter of another
    model), or when `quant` is not one of `MERGE_QUANTS`."""
    import gguf
    import numpy as np

    if quant not in MERGE_QUANTS:
        raise EngineError(f"merge quantization {quant!r} is not supported; use one of {', '.join(MERGE_QUANTS)}")
    target = gguf.GGMLQuantizationType[quant]
    base_path = resolve_gguf(str(base))
    reader = gguf.GGUFReader(str(base_path))
    deltas: dict[str, list[tuple[Any, Any, float]]] = {}
    for lora in loras:
        pairs, alpha = _lora_deltas(Path(lora))
        for name, (a, b) in pairs.items():
            rank = a.shape[0]
            deltas.setdefault(name, []).append((a, b, (alpha / rank) if alpha else 1.0))
    tensors = {t.name: t for t in reader.tensors}
    unknown = sorted(set(deltas) - set(tensors))
    if unknown:
        raise EngineError(f"{loras}: adapts {unknown[:3]}, which {base_path} does not have; merge onto its own base")

    writer = gguf.GGUFWriter(str(out), gguf_field(reader, "general.architecture"))
    for field in reader.fields.values():
        if field.name in ("general.architecture", "general.file_type") or field.name.startswith("GGUF."):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    for t in reader.tensors:
        plain = t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
        if t.name not in deltas and (plain or t.tensor_type == target):
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)  # norms, and weights already in `target`
            continue
        weight = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        for a, b, scale in deltas.get(t.name, []):
            if weight.shape != (b.shape[0], a.shape[1]):
                raise EngineError(
                    f"{loras}: {t.name} is {(b.shape[0], a.shape[1])} in an adapter but {weight.shape} in "
                    f"{base_path}; merge onto the base the adapters were made for"
                )
            weight += scale * (b.astype(np.float32) @ a.astype(np.float32))
        if target == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(t.name, weight.astype(np.float16))
        else:
            writer.add_tensor(t.name, gguf.quants.quantize(weight, target), raw_dtype=target)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out)


def cached_merged_gguf(base: str | Path, loras: Sequence[str | Path], *, quant: str = "Q8_0") -> Path:
    """`merge_gguf_loras` once per base, adapter contents and quantization, kept in umi's cache (a shipped role
    is merged on its first use, a few seconds, then loaded like any GGUF)."""
    base_path = resolve_gguf(str(base))
    digest = hashlib.sha256(f"merge-v1|{base_path}|{os.path.getsize(base_path)}|{quant}".encode())
    for lora in loras:
        digest.update(Path(lora).read_bytes())
    out = cache_root() / "gguf-merged" / f"{digest.hexdigest()[:20]}.{quant}.gguf"
    return cached_file(out, lambda tmp: merge_gguf_loras(base_path, loras, tmp, quant=quant))
