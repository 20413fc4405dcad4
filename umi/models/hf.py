"""The transformers (PyTorch) engine: a hub id, a local folder or a GGUF file, with PEFT LoRA adapters per role.

Several adapters sit on one base model (`PeftModel.load_adapter`), and each call activates its role's adapter
(`set_adapter`) or runs the bare base with adapters disabled, so three roles cost one base model of memory.
Batches are left-padded. A lone prompt reuses its role's prefix KV cache (`umi.models.prefix_cache`): only the
tokens after the longest prefix shared with that role's last prompt are prefilled. With `share_layers` (off by
default: it saved no time in `benchmarks/agent_overhead.py --engine transformers`, where decoding dominates), where
another role has run a longer prefix, the layers below every adapter come from that role's cache
(`umi.models.shared_layers`). `dtype="auto"` is fp32 on
CPU (the same greedy text on every CPU; bf16 is a role-config choice, fast only where `bf16_is_fast` says so) and
bf16 on CUDA devices that support it. A GGUF file is dequantized once
and cached as safetensors, so later loads take about a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from umi.models.base import Completion, EngineError, GenerationParams
from umi.models.embedded import EMBEDDED, GEMMA, cache_root, resolve_gguf
from umi.models.prefix_cache import PrefixCache

#: Fewer shared positions than this are not worth a graft (a few layers' worth of small matrix products).
MIN_SHARED = 16


def bf16_is_fast(device: str = "cpu", cpuinfo: str | None = None) -> bool:
    """Whether bf16 matrix products run faster than fp32 on `device`: CUDA with bf16 support, or a CPU with AMX or
    AVX512-BF16 units (`amx_bf16` / `avx512_bf16` in `/proc/cpuinfo`'s flags, or in `cpuinfo` when given). Without
    them PyTorch emulates bf16 and it is slower: on an AVX2 AMD EPYC, bf16 matrix products ran about 8x slower than
    fp32, while an AMX Xeon ran the same training step about 3x faster in bf16 (`benchmarks/train_throughput.py`)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def dequantized_dir(gguf: Path) -> Path:
    """Dequantize a GGUF to an fp32 safetensors folder with its tokenizer, once (the folder is the cache)."""
    out = cache_root() / ("dequant-" + gguf.stem.lower())
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # plain fp32 tensors now; only the GGUF marker blocks save_pretrained
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + f".tmp{time.time_ns()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if not out.exists():
        tmp.replace(out)
    return out


def resolve_model_dir(model: str) -> str:
    """What `from_pretrained` accepts: GGUFs (and the `embedded` / `gemma3-270m` aliases) go through the cache."""
    if model in (EMBEDDED, GEMMA) or model.endswith(".gguf"):
        return str(dequantized_dir(resolve_gguf(model)))
    return model


class TransformersEngine:
    """Batched greedy/sampled generation with transformers, optional LoRA adapters switched per call."""

    def __init__(
        self,
        model: str = EMBEDDED,
        *,
        adapters: Mapping[str, str | Path] | None = None,
        device: str | None = None,
        dtype: str = "auto",
        max_input_tokens: int | None = None,
        prefix_cache: bool = True,
        share_layers: bool = False,
        role: str = "",
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = "transformers"
        self.role = role
        self.share_layers = share_layers
        self._recorder: Any = None  # the HiddenRecorder of the current adapter set (built on first use)
        self._lock = threading.Lock()
        self.max_input_tokens = max_input_tokens
        self.prefix_cache = PrefixCache() if prefix_cache else None
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            use_bf16 = self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
            torch_dtype = torch.bfloat16 if use_bf16 else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        start = time.perf_counter()
        try:
            source = resolve_model_dir(model)
        except EngineError as exc:
            raise EngineError(f"role {role!r}, engine transformers: {exc}") from None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            base = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        except OSError as exc:
            raise EngineError(
                f"role {role!r}, engine transformers: cannot load model {model!r} ({str(exc).splitlines()[0]}); "
                "give a local folder, a .gguf file, `embedded`, or a hub id on a machine that reaches the hub"
            ) from None
        self.tokenizer.padding_side = "left"
        self.tokenizer.truncation_side = "left"  # an over-long agent history loses its oldest tokens, not the cue
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model: Any = base
        self.adapters: list[str] = []
        for name, path in (adapters or {}).items():
            self.add_adapter(name, path)
        self.model.to(self.device)  # type: ignore[arg-type]
        self.model.eval()
        self.model_name = model
        self.load_seconds = time.perf_counter() - start

    def add_adapter(self, name: str, path: str | Path) -> None:
        """Load a PEFT LoRA adapter beside the others on the same base."""
        from peft import PeftModel

        p = Path(path).expanduser()
        if not (p / "adapter_config.json").exists():
            raise EngineError(
                f"role {self.role or name!r}, engine transformers: adapter {name!r} at {p} is not a PEFT adapter "
                "folder (no adapter_config.json); point the role at the adapter folder `umi train` wrote"
            )
        try:
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(p), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(p), adapter_name=name)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise EngineError(
                f"role {self.role or name!r}, engine transformers: adapter {name!r} at {p} does not fit this base "
                f"({str(exc).splitlines()[0][:160]}); use the adapter trained on this base model"
            ) from None
        self.model.to(getattr(self, "device", "cpu"))
        self.model.eval()
        self.adapters.append(name)
        if self._recorder is not None:  # the shared depth may change with this adapter: rebuilt on next use
            self._recorder.close()
            self._recorder = None
        if self.prefix_cache is not None:
            self.prefix_cache.clear()

    def base_model(self) -> Any:
        """The single base model object every adapter shares."""
        from peft import PeftModel

        return self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model

    def _sharing(self) -> Any:
        """The hidden-state recorder when cross-role layer sharing is on and possible, else None."""
        from umi.models.shared_layers import HiddenRecorder, shared_depth

        if not self.share_layers or self.prefix_cache is None:
            return None
        if self._recorder is None:
            self._recorder = HiddenRecorder(self.model, shared_depth(self.model))
        return self._recorder if self._recorder.split > 0 else None

    def _prefix_start(self, key: str | None, enc: dict[str, Any]) -> tuple[Any, int, Any, int]:
        """The cache `generate` starts from for a lone prompt under `key`, how many prompt tokens the role's own
        cache covers, the hidden states recorded for the positions the returned cache covers (None: not recorded),
        and how many more positions came from another role's cache below the adapters (`umi.models.shared_layers`).

        A fresh `DynamicCache` where nothing is reused, so the prompt's cache can be kept afterwards."""
        from transformers import DynamicCache

        if self.prefix_cache is None or key is None:
            return None, 0, None, 0
        ids = enc["input_ids"][0].tolist()
        past, keep, hidden = self.prefix_cache.reuse(key, ids)

        def new_cache() -> Any:
            return DynamicCache(config=self.base_model().config)

        recorder = self._sharing()
        if recorder is not None:
            from umi.models.shared_layers import decoder_layers, graft

            need_hidden = recorder.split < len(decoder_layers(self.model))
            found = self.prefix_cache.donor(ids, longer_than=keep + MIN_SHARED, need_hidden=need_hidden)
            if found is not None:
                entry, upto = found
                start = keep if past is not None else 0
                past = graft(self.model, recorder.split, past, start, entry.kv, entry.hidden, upto, new_cache)
                hidden = None if entry.hidden is None else entry.hidden[:upto]
                return past, start, hidden, upto - start
        return (past if past is not None else new_cache()), keep, hidden, 0

    def _generate(self, batch: list[str], params: GenerationParams, prefix_key: str | None = None) -> list[Completion]:
        import torch

        enc = self.tokenizer(
            batch,
            return_tensors="pt",
            padding=True,
            truncation=self.max_input_tokens is not None,
            max_length=self.max_input_tokens,
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
        }
        if params.temperature > 0:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        start = time.perf_counter()  # a graft (`_prefix_start`) is model compute: it counts in the call's seconds
        past, cached, hidden, shared = self._prefix_start(prefix_key if len(batch) == 1 else None, enc)
        if past is not None:
            kwargs["past_key_values"] = past
        recorder = self._sharing() if past is not None else None
        if recorder is not None and hidden is None and cached + shared > 0:
            recorder = None  # this prefix's hidden states were never recorded: the new entry cannot lend them
        if params.grammar is not None:
            kwargs["logits_processor"] = self._grammar_masks(params.grammar, len(batch), enc["input_ids"].shape[1])
        with torch.inference_mode():
            if recorder is not None:
                with recorder.record() as parts:
                    out = self.model.generate(**enc, **kwargs)
                pieces = [h for h in [hidden, *parts] if h is not None]
                hidden = torch.cat(pieces) if pieces else None
            else:
                out = self.model.generate(**enc, **kwargs)
                hidden = None
        seconds = time.perf_counter() - start
        if past is not None and self.prefix_cache is not None and prefix_key is not None:
            self.prefix_cache.store(prefix_key, out[0].tolist(), past, hidden)
        width = enc["input_ids"].shape[1]
        results: list[Completion] = []
        for i in range(len(batch)):
            new_ids = out[i, width:]
            new_ids = (
                new_ids[new_ids != self.tokenizer.pad_token_id] if self.tokenizer.pad_token_id is not None else new_ids
            )
            text = str(self.tokenizer.decode(new_ids, skip_special_tokens=True))
            finish = "length" if len(new_ids) >= params.max_new_tokens else "stop"
            for s in params.stop:
                idx = text.find(s)
                if idx >= 0:
                    text, finish = text[:idx], "stop"
            results.append(
                Completion(
                    text=text,
                    prompt_tokens=int(enc["attention_mask"][i].sum()),
                    new_tokens=len(new_ids),
                    seconds=seconds / len(batch),
                    finish_reason=finish,
                    cached_tokens=cached,
                    shared_tokens=shared,
                    constrained=params.grammar is not None,
                )
            )
        return results

    def _grammar_masks(self, grammar: str, batch: int, prompt_width: int) -> Any:
        """The llguidance mask processor for one batch (`umi.models.hf_grammar`); the tokenizer is wrapped once."""
        from transformers import LogitsProcessorList

        from umi.models.hf_grammar import GrammarCompiler

        compiler = getattr(self, "_grammar_compiler", None)
        if compiler is None:
            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            compiler = self._grammar_compiler = GrammarCompiler(self.tokenizer, vocab, role=self.role)
        return LogitsProcessorList([compiler.processor(grammar, batch, prompt_width)])

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
        batch_size: int = 8,
    ) -> list[Completion]:
        from peft import PeftModel

        if adapter is not None and adapter not in self.adapters:
            raise EngineError(
                f"role {self.role!r}, engine transformers: adapter {adapter!r} is not loaded (loaded: {self.adapters})"
            )
        out: list[Completion] = []
        # The KV of an adapter differs from the base's: one prefix per (cache key, adapter).
        prefix_key = f"{cache_key or ''}|{adapter or ''}"
        # One request at a time: the active adapter is model state, so concurrent callers (live evaluation's
        # workers) must not switch it under each other.
        with self._lock:
            for i in range(0, len(prompts), batch_size):
                batch = list(prompts[i : i + batch_size])
                if isinstance(self.model, PeftModel):
                    if adapter is None:
                        with self.model.disable_adapter():
                            out += self._generate(batch, params, prefix_key)
                        continue
                    self.model.set_adapter(adapter)
                out += self._generate(batch, params, prefix_key)
        return out


def merged_base(base: str, adapters: Sequence[str]) -> Path:
    """`base` with LoRA adapters merged in, in order, cached by content so it is built once.

    Packaged GLPFT roles ship stage 1 as a small adapter instead of a full merged model; this rebuilds the
    stage-1 model they sit on.
    """
    import hashlib

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    key = hashlib.sha256("|".join([base, *[str(Path(a).resolve()) for a in adapters]]).encode()).hexdigest()[:16]
    out = cache_root() / f"merged-{key}"
    if (out / "config.json").exists():
        return out
    source = resolve_model_dir(base)
    model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tmp = out.with_name(out.name + f".tmp{time.time_ns()}")
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
    if not out.exists():
        tmp.replace(out)
    return out
