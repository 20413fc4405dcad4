"""Resolve `--base` to something transformers can load: a hub id, a local folder, a `.gguf` file, or `embedded`.

Training needs float weights, so a GGUF (the embedded SmolLM2 among them) is dequantized once and cached as
safetensors; the resolver is `umi.models.hf.resolve_model_dir`, so training and inference share one copy.
"""

from __future__ import annotations

from umi.models.base import EngineError
from umi.models.embedded import EMBEDDED, cache_root
from umi.models.hf import resolve_model_dir

__all__ = ["EMBEDDED", "cache_root", "resolve_base"]


def resolve_base(base: str) -> str:
    """A string `from_pretrained` accepts. GGUF files (and `embedded`) go through the dequantize cache."""
    try:
        return resolve_model_dir(base)
    except EngineError as exc:
        raise FileNotFoundError(str(exc)) from None
