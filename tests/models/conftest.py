"""Real models for engine tests: the embedded GGUF on llama.cpp, and a tiny random Llama built here."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="package", autouse=True)
def umi_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh cache for this package: the GGUF is dequantized once here, not read from ~/.cache/umi."""
    old = os.environ.get("UMI_CACHE")
    path = tmp_path_factory.mktemp("umi-cache")
    os.environ["UMI_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("UMI_CACHE", None)
    else:
        os.environ["UMI_CACHE"] = old


@pytest.fixture(scope="package")
def llama_engine(umi_cache: Path):
    from umi.models.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine("embedded", n_ctx=4096, role="test")
    yield engine
    engine.close()


@pytest.fixture(scope="package")
def hf_engine(umi_cache: Path):
    """The embedded GGUF through transformers: dequantized once into the package's cache (timed)."""
    import time

    from umi.models.hf import TransformersEngine

    start = time.perf_counter()
    engine = TransformersEngine("embedded", role="test")
    engine.first_load_seconds = time.perf_counter() - start  # type: ignore[attr-defined]
    return engine


def write_gguf_lora(path: Path, seed: int, rank: int = 8) -> Path:
    """A random LoRA on every attn_q of the embedded GGUF, in llama.cpp's adapter format (what
    convert_lora_to_gguf.py writes: general.type=adapter, `<tensor>.lora_a` (r, in) and `.lora_b` (out, r))."""
    import gguf
    import numpy as np

    from umi.models.embedded import embedded_gguf

    reader = gguf.GGUFReader(str(embedded_gguf()))
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 16.0)
    for t in reader.tensors:
        if t.name.endswith("attn_q.weight"):
            n_in, n_out = int(t.shape[0]), int(t.shape[1])
            writer.add_tensor(t.name + ".lora_a", rng.normal(0, 0.5, (rank, n_in)).astype(np.float32))
            writer.add_tensor(t.name + ".lora_b", rng.normal(0, 0.5, (n_out, rank)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def build_tiny_llama(root: Path, save_tiny_llama: Callable[..., Path]) -> Path:
    """A randomly initialised 2-layer Llama with a BPE tokenizer trained here: a few MB, real architecture."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "the planner thinks and the caller calls an api",
        "observation: the tool answered with json",
        "conclusion: the answer is here",
        'Action: search\nAction Input: {"q": 1}',
    ] * 20
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    return save_tiny_llama(fast, root / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, tiny_llama_saver: Callable[..., Path]) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models"), tiny_llama_saver)


@pytest.fixture(scope="package")
def gguf_loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random GGUF LoRAs (planner, caller) for the embedded base."""
    root = tmp_path_factory.mktemp("gguf-loras")
    return {role: write_gguf_lora(root / f"{role}.gguf", seed) for seed, role in enumerate(("planner", "caller"), 1)}


def write_tiny_gguf(path: Path, *, seed: int = 0, n_embd: int = 64, n_layers: int = 2, n_ff: int = 128) -> Path:
    """A randomly initialised 2-layer Llama GGUF with the embedded model's real tokenizer (every `tokenizer.*`
    field copied): the llama.cpp twin of the tiny transformers model, a few MB, real architecture."""
    import gguf
    import numpy as np

    from umi.models.embedded import embedded_gguf

    reader = gguf.GGUFReader(str(embedded_gguf()))
    vocab = int(reader.fields["llama.vocab_size"].contents())
    heads = 4
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(n_embd // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for name, field in reader.fields.items():
        if name.startswith("tokenizer."):
            kinds = field.types
            sub = kinds[1] if kinds[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), kinds[0], sub_type=sub)
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, shape).astype(np.float32)

    writer.add_tensor("token_embd.weight", w(vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    for i in range(n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for part in ("q", "k", "v", "output"):
            writer.add_tensor(f"blk.{i}.attn_{part}.weight", w(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", w(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", w(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", w(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")
