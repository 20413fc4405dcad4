"""The llama.cpp engine, in process, through `xllamacpp`: GGUF models, the fast path on CPU.

Why xllamacpp and not llama-cpp-python: it ships a prebuilt CPU wheel (installs in seconds, MIT) that embeds
llama.cpp's own server — continuous batching over slots, prompt caching (`cache_prompt`: a request whose prompt
extends the slot's previous prompt only prefills the new suffix, which is exactly a growing agent history),
per-request LoRA scales, and grammar / JSON-schema constrained output. llama-cpp-python builds llama.cpp from
source (about 8 minutes on 2 cores) and re-implements the server in Python.

LoRA adapters must be GGUF files. Convert a PEFT adapter (what `umi train` writes) with `umi models convert-lora
<adapter dir> --base <gguf> --out role.gguf` (or llama.cpp's `convert_lora_to_gguf.py`), then bind the role with
`adapter = "role"` and `loras = {role = "role.gguf"}` in the role configuration. All adapters load once beside the
base; each request enables only its own (scale 1) and disables the rest, so three roles cost one base model.
`base_loras` are always on: a GLPFT stage-2 role is its stage-1 adapter plus its own (both LoRA sums on the same
weights, exactly the merged stage-1 model the role was trained on).

Per-role prompt caches: the server gets one slot per cache key named in `slots` (the roles that share this
engine: planner, caller, summarizer, backbone), times `n_parallel` lanes, each `n_ctx` tokens long; every request
is pinned to its key's slot (`id_slot`, see `umi.models.slots`), so a role's cached prompt survives the other
roles' calls and each call prefills only what is new since that role's last prompt. Slots keep their KV in place
(`cache_idle_slots` off, no host-RAM prompt cache by default): memory is slots × `n_ctx` × the model's KV bytes per
token, fixed at load.

`speculative = "ngram-simple"` (see `set_speculative`): draft tokens looked up in the context, checked by the model
a batch at a time — no draft model, no extra memory; each completion reports what was drafted and accepted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from umi.models.base import Completion, EngineError, GenerationParams
from umi.models.embedded import resolve_gguf
from umi.models.slots import SlotTable, run_in_lanes


def with_grammar(request: dict[str, Any], params: GenerationParams) -> dict[str, Any]:
    """The completion request with its `grammar` field: llama.cpp reads a text starting `%llguidance {}` as an
    llguidance grammar (its GBNF grammars decoded about 5x slower here)."""
    if params.grammar is not None:
        request["grammar"] = params.grammar
    return request


#: `speculative` values: llama.cpp's draft-model-free speculative decoders (its `--spec-type`).
SPECULATIVE = ("none", "ngram-simple", "ngram-map-k", "ngram-mod")


def set_speculative(params: Any, kind: str, *, draft_max: int, ngram: int, role: str = "") -> str:
    """Turn on llama.cpp's self-speculative decoding (no draft model) in a server's `CommonParams`.

    Why: a role's output mostly copies its prompt — the caller's API name and argument values come from the tool
    documents and the query, the planner's thought restates the history — so an n-gram draft looked up in the
    context (`ngram-simple`: the last `ngram` tokens matched earlier in prompt + output, the `draft_max` tokens
    after the match proposed) is often right, and the model checks a whole draft in one batched forward pass.
    Greedy outputs are the model's own (a rejected draft token is replaced by the model's choice; the role
    grammar still applies), up to rounding: checking a batch can break a near-tie the other way (4 of 12
    static-evaluation predictions differed). Off by default because on a small CPU it did not pay
    (`benchmarks/results/speculative_decoding.md`: 0.92–0.95× with over half the tokens from drafts).
    """
    if kind not in SPECULATIVE:
        raise EngineError(
            f"role {role!r}, engine llama.cpp: unknown speculative {kind!r}; use one of {', '.join(SPECULATIVE)}"
        )
    if kind == "none":
        return kind
    if draft_max < 1 or ngram < 1:
        raise EngineError(
            f"role {role!r}, engine llama.cpp: draft_max and ngram must be at least 1 (got {draft_max}, {ngram})"
        )
    import xllamacpp

    spec = params.speculative
    member = "COMMON_SPECULATIVE_TYPE_" + kind.upper().replace("-", "_")
    spec.types = [getattr(xllamacpp.common_speculative_type, member)]
    spec.draft.n_max, spec.draft.n_min = draft_max, 0
    if kind == "ngram-mod":
        spec.ngram_mod.n_match, spec.ngram_mod.n_max, spec.ngram_mod.n_min = ngram, draft_max, 1
    else:
        table = spec.ngram_simple if kind == "ngram-simple" else spec.ngram_map_k
        table.size_n, table.size_m = ngram, draft_max
    return kind


class LlamaCppEngine:
    """Completion over raw prompts with an in-process llama.cpp server (no HTTP hop: `handle_completions`).

    `slots` names the cache keys (roles) that get slots of their own; `n_parallel` is how many lanes each key has:
    > 1 runs a batch of prompts (or that many concurrent callers) at once, decoded together, each lane on its own
    slot; 1 (the default) runs a batch one prompt after another on the key's slot. `n_ctx` is per slot; the server
    holds `len(slots) × n_parallel` of them. The same server also listens on loopback HTTP
    (`listening_address`), for tools that want an endpoint.
    """

    def __init__(
        self,
        model: str | Path = "embedded",
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_parallel: int = 1,
        loras: Mapping[str, str | Path] | None = None,
        base_loras: Sequence[str] = (),
        cache_prompt: bool = True,
        slots: Sequence[str] = (),
        cache_ram_mib: int = 0,
        verbosity: int = 0,
        role: str = "",
        speculative: str = "none",
        draft_max: int = 16,
        ngram: int = 3,
    ) -> None:
        import os

        import xllamacpp

        self.name = "llama.cpp"
        self.role = role
        try:
            self.model_path = resolve_gguf(str(model))
        except EngineError as exc:
            raise EngineError(f"role {role!r}, engine llama.cpp: {exc}") from None
        self.n_parallel = max(1, n_parallel)
        self.cache_prompt = cache_prompt
        self.slots = SlotTable(slots, self.n_parallel)
        self.n_ctx = n_ctx
        self._lora_ids: dict[str, int] = {}
        self.lora_paths: dict[str, Path] = {}  # each loaded adapter's GGUF file
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = n_ctx * self.slots.total  # llama.cpp splits n_ctx evenly over its slots
        params.n_parallel = self.slots.total
        # Keep every slot's KV in place: by default llama.cpp may move idle slots' prompts into a host-RAM prompt
        # cache (up to 8 GiB per server) and restore them later, a copy per call and memory nobody sized.
        params.cache_idle_slots = False
        params.cache_ram_mib = cache_ram_mib
        # UMI_THREADS overrides the default: on a small machine shared with other jobs one thread per engine is
        # far faster than two (OpenMP threads wait on each other whenever one is descheduled).
        params.cpuparams.n_threads = (
            n_threads or int(os.environ.get("UMI_THREADS", "0") or 0) or min(4, os.cpu_count() or 1)
        )
        params.cpuparams_batch.n_threads = params.cpuparams.n_threads
        params.warmup = False
        params.verbosity = verbosity
        params.cache_prompt = cache_prompt
        self.speculative = set_speculative(params, speculative, draft_max=draft_max, ngram=ngram, role=role)
        adapters = []
        for i, (name, path) in enumerate((loras or {}).items()):
            p = Path(path).expanduser()
            if not p.exists():
                raise EngineError(
                    f"role {role or name!r}, engine llama.cpp: LoRA adapter {p} not found; convert the PEFT adapter "
                    "with `umi models convert-lora` and point `loras` at the .gguf"
                )
            info = xllamacpp.CommonAdapterLoraInfo()
            info.path = str(p)
            info.scale = 0.0
            adapters.append(info)
            self._lora_ids[name] = i
            self.lora_paths[name] = p
        missing = [name for name in base_loras if name not in self._lora_ids]
        if missing:
            raise EngineError(
                f"role {role!r}, engine llama.cpp: base_loras {missing} are not in `loras` "
                f"({sorted(self._lora_ids)}); add them there"
            )
        self.base_loras = tuple(base_loras)
        if adapters:
            params.lora_adapters = adapters
            params.lora_init_without_apply = True
        start = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # the binding raises plain RuntimeError/ValueError
            raise EngineError(f"role {role!r}, engine llama.cpp: could not load {self.model_path}: {exc}") from exc
        self._wait_for_loop()
        self.load_seconds = time.perf_counter() - start

    def _wait_for_loop(self) -> None:
        """Return once the server's task loop runs, so `close` can always stop it.

        xllamacpp's `Server()` returns before its thread enters llama.cpp's `start_loop`, and `start_loop` begins by
        setting `running = true`: a `terminate()` that lands in that gap (closing an engine right after building
        it, likelier on a loaded machine with many engines' threads) is overwritten, the loop never ends, and the
        destructor's join waits forever while holding the GIL. A task is only answered from inside the loop, so
        one answered 1-token request proves the loop is running.
        """
        self._server.handle_completions({"prompt": " ", "max_tokens": 1, "cache_prompt": False, "id_slot": 0})

    def _lora_field(self, adapter: str | None) -> list[dict[str, Any]] | None:
        if not self._lora_ids:
            if adapter is not None:
                raise EngineError(
                    f"role {self.role!r}, engine llama.cpp: adapter {adapter!r} requested but no `loras` are loaded; "
                    "add it to the role configuration"
                )
            return None
        if adapter is not None and adapter not in self._lora_ids:
            raise EngineError(
                f"role {self.role!r}, engine llama.cpp: unknown adapter {adapter!r}; loaded: {sorted(self._lora_ids)}"
            )
        on = {adapter, *self.base_loras}
        return [{"id": i, "scale": 1.0 if name in on else 0.0} for name, i in self._lora_ids.items()]

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
    ) -> list[Completion]:
        lora = self._lora_field(adapter)
        if self.n_parallel > 1 and len(prompts) > 1:
            # handle_completions releases the GIL: threads fill the key's lanes, which decode as one batch; the
            # batch's slots are chosen together so every conversation finds its own cached history
            return run_in_lanes(self.slots, cache_key, prompts, lambda p, slot: self._one(p, params, lora, slot))
        return [self._pinned(p, params, lora, cache_key) for p in prompts]

    def _pinned(
        self, prompt: str, params: GenerationParams, lora: list[dict[str, Any]] | None, cache_key: str | None
    ) -> Completion:
        """One request on a slot of `cache_key`'s group (the one whose cache best fits `prompt`)."""
        with self.slots.acquire(cache_key, prompt) as slot:
            return self._one(prompt, params, lora, slot)

    def _one(
        self, prompt: str, params: GenerationParams, lora: list[dict[str, Any]] | None, slot: int = -1
    ) -> Completion:
        request: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": list(params.stop),
            "cache_prompt": self.cache_prompt,
            "id_slot": slot,
        }
        if params.temperature > 0 and params.seed is not None:
            request["seed"] = params.seed
        if lora is not None:
            request["lora"] = lora
        with_grammar(request, params)
        start = time.perf_counter()
        result = self._server.handle_completions(request)
        seconds = time.perf_counter() - start
        if not isinstance(result, dict) or "choices" not in result:
            error = result.get("error", result) if isinstance(result, dict) else result
            fix = "raise n_ctx in the role configuration" if "context" in str(error) else "see the llama.cpp log"
            raise EngineError(f"role {self.role!r}, engine llama.cpp: request failed ({error}); {fix}")
        choice = result["choices"][0]
        usage = result.get("usage", {})
        timings = result.get("timings", {})
        cached = timings.get("cache_n", usage.get("prompt_tokens_details", {}).get("cached_tokens"))
        return Completion(
            text=choice.get("text", ""),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            new_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            cached_tokens=int(cached or 0),
            constrained=params.grammar is not None,
            drafted_tokens=int(timings.get("draft_n", 0) or 0),
            accepted_tokens=int(timings.get("draft_n_accepted", 0) or 0),
        )

    def listening_address(self) -> str:
        """The loopback HTTP address of the embedded server (an OpenAI-compatible llama.cpp server)."""
        return str(self._server.listening_address)  # an attribute on xllamacpp.Server

    def close(self) -> None:
        """Stop the server and free the model (safe right after building: see `_wait_for_loop`)."""
        server = self.__dict__.pop("_server", None)
        if server is not None:
            del server  # the last reference: xllamacpp's destructor terminates the loop and joins its thread
