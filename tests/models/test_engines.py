"""Real generation through every engine: llama.cpp in process, transformers, and HTTP to a llama.cpp server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from umi.models.base import EngineError, GenerationParams
from umi.models.embedded import SMOLLM2_SHA256, embedded_gguf, sha256_of

GREEDY = GenerationParams(max_new_tokens=8, stop=("\n",))


def test_embedded_file_is_verified() -> None:
    path = embedded_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and sha256_of(path) == SMOLLM2_SHA256


def test_llamacpp_generates_and_caches_prefixes(llama_engine) -> None:
    first, second = llama_engine.complete(
        ["The capital of France is", "The capital of France is Paris. The capital of Spain is"], GREEDY
    )
    assert first.text.strip().startswith("Paris")
    assert first.prompt_tokens == 5 and 0 < first.new_tokens <= 8 and first.seconds > 0
    assert second.cached_tokens >= 4  # the shared prefix was not prefilled again
    again = llama_engine.complete(["The capital of France is"], GREEDY)[0]
    assert again.text == first.text  # greedy is repeatable


def test_llamacpp_stop_strings_and_length(llama_engine) -> None:
    c = llama_engine.complete(["1, 2, 3, 4,"], GenerationParams(max_new_tokens=30, stop=("7",)))[0]
    assert "7" not in c.text and c.finish_reason == "stop"
    c = llama_engine.complete(["Once upon a time"], GenerationParams(max_new_tokens=3))[0]
    assert c.finish_reason == "length" and c.new_tokens == 3


def test_http_engine_against_a_real_llamacpp_server(llama_engine) -> None:
    from umi.models.openai_http import OpenAIEngine

    address = llama_engine.listening_address()
    assert address.startswith("http://127.0.0.1:")
    engine = OpenAIEngine(address + "/v1", model="smollm2", concurrency=2, role="planner")
    outs = engine.complete(["The capital of France is", "The capital of Italy is"], GREEDY)
    assert outs[0].text.strip().startswith("Paris") and outs[1].new_tokens > 0
    assert outs[0].prompt_tokens == 5


def test_transformers_engine_on_the_embedded_gguf(hf_engine, umi_cache: Path) -> None:
    from umi.models.embedded import embedded_gguf
    from umi.models.hf import TransformersEngine, dequantized_dir

    assert hf_engine.model.dtype == torch.float32 and hf_engine.device == "cpu"  # fp32 on CPU
    outs = hf_engine.complete(["The capital of France is", "Hello, my name is"], GREEDY)
    assert outs[0].text.strip().startswith("Paris")
    assert all(o.new_tokens > 0 and o.prompt_tokens > 0 for o in outs)
    # left padding: a prompt batched with a longer one generates what it generates alone
    alone = hf_engine.complete(["Hello, my name is"], GREEDY)[0]
    assert alone.text == outs[1].text
    # the dequantized weights were cached as safetensors under UMI_CACHE; a second load reuses them untouched
    cached = dequantized_dir(embedded_gguf())
    assert cached.parent == umi_cache and any(cached.glob("*.safetensors"))
    stamp = {f.name: f.stat().st_mtime_ns for f in cached.iterdir()}
    TransformersEngine("embedded")
    assert {f.name: f.stat().st_mtime_ns for f in cached.iterdir()} == stamp


def test_transformers_stop_strings_and_eos(hf_engine) -> None:
    c = hf_engine.complete(["The capital of France is"], GenerationParams(max_new_tokens=8, stop=("Paris",)))[0]
    assert "Paris" not in c.text and c.finish_reason == "stop"
    c = hf_engine.complete(["Once upon a time"], GenerationParams(max_new_tokens=3))[0]
    assert c.finish_reason == "length" and c.new_tokens == 3
    sampled = GenerationParams(max_new_tokens=6, temperature=0.9, seed=7)
    assert hf_engine.complete(["Hi"], sampled)[0].text == hf_engine.complete(["Hi"], sampled)[0].text


def test_gemma_second_base_on_llamacpp() -> None:
    from umi.models.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine("gemma3-270m", n_ctx=256, role="backbone")
    c = engine.complete(["The capital of France is"], GREEDY)[0]
    assert c.new_tokens > 0 and engine.model_path.name == "gemma-3-270m-q4_k_m.gguf"
    engine.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_errors_name_role_engine_and_fix(tmp_path: Path) -> None:
    from umi.models.hf import TransformersEngine
    from umi.models.llamacpp import LlamaCppEngine
    from umi.models.openai_http import OpenAIEngine
    from umi.models.roles import load_roles

    with pytest.raises(EngineError, match=r"role .planner., engine llama.cpp: GGUF file .*missing\.gguf not found"):
        LlamaCppEngine(str(tmp_path / "missing.gguf"), role="planner")
    with pytest.raises(EngineError, match=r"role 'summarizer', engine transformers: GGUF file .*missing\.gguf not"):
        TransformersEngine(str(tmp_path / "missing.gguf"), role="summarizer")
    with pytest.raises(EngineError, match=r"role 'caller', engine llama.cpp: LoRA adapter .*nope\.gguf not found; con"):
        LlamaCppEngine("embedded", loras={"caller": tmp_path / "nope.gguf"}, role="caller")
    engine = OpenAIEngine(f"http://127.0.0.1:{_closed_port()}/v1", role="caller", max_retries=0, timeout=2)
    with pytest.raises(EngineError, match=r"role 'caller', engine openai: .* check that the server is running"):
        engine.complete(["x"], GREEDY)
    config = tmp_path / "roles.toml"
    config.write_text(
        '[engines.base]\nkind = "transformers"\nmodel = "embedded"\nadapters = { planner = "nope" }\n'
        '[roles.planner]\nengine = "base"\nadapter = "planner"\n'
    )
    with pytest.raises(EngineError, match=r"role 'planner', engine transformers: adapter .*nope is not a PEFT adapter"):
        load_roles(config)
    with pytest.raises(EngineError, match="unknown engine kind"):
        load_roles({"engines": {"e": {"kind": "magic"}}, "roles": {"planner": {"engine": "e"}}})


def test_packaged_configs_parse() -> None:
    import tomllib

    from umi.models.roles import packaged_config

    for name in ("embedded", "alpha-umi-7b", "alpha-umi-13b", "vllm-lora"):
        cfg = tomllib.loads(packaged_config(name).read_text())
        assert set(cfg["roles"]) >= {"planner", "caller", "summarizer"}
    assert "shenwzh3/alpha-umi-planner-7b" in packaged_config("alpha-umi-7b").read_text()
