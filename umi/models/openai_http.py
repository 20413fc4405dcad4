"""The OpenAI-compatible HTTP engine: vLLM, llama.cpp's server, Ollama or any hosted endpoint.

It calls the *completions* endpoint with raw prompts (α-UMi prompts are not chat messages). A role binds to a
model name, so one vLLM server started with `--enable-lora --lora-modules planner=… caller=… summarizer=…` serves
all three roles: the role's adapter name is sent as the request's `model`. Retries with exponential backoff on
429 and 5xx (the openai client's own), a timeout per request, bounded concurrency across a batch, and the API key
read from an environment variable whose *name* is configured — the key itself is never logged or stored.

Per-role prompt caches on a server:
- llama.cpp's `llama-server`: set `llamacpp_slots = true` in the engine table. Each role is pinned to a slot of
  its own (`id_slot`, ids in role order: planner, caller, summarizer, backbone, `slot_lanes` each) with
  `cache_prompt: true`, so planner and caller stop evicting each other. Start the server with `--parallel` ≥
  roles × lanes, `--ctx-size` = that × the per-slot context, and `--cache-ram 0 --no-cache-idle-slots` to keep
  each slot's KV in place.
- vLLM: automatic prefix caching (`--enable-prefix-caching`, on by default in the V1 engine) shares KV blocks by
  token hash, and blocks computed under one LoRA adapter are only reused by requests for that adapter, so
  `--enable-lora --lora-modules planner=… caller=…` already keeps one cache per role; nothing is sent per request.
  Add `--enable-prompt-tokens-details` so responses carry `usage.prompt_tokens_details.cached_tokens`.
Cached-token counts are read from `usage.prompt_tokens_details.cached_tokens` or llama.cpp's `timings.cache_n`.
Grammars (`GenerationParams.grammar`, llguidance text) go in the field the server reads, set by `grammar_field`:
`structured_outputs` (vLLM ≥ 0.12: `{"structured_outputs": {"grammar": …}}`; start it with
`--structured-outputs-config.backend guidance`) or `grammar` (llama.cpp's server). A server that rejects the
field answers 400, which becomes one error naming the role, the engine and the fix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from umi.models.base import Completion, EngineError, GenerationParams
from umi.models.slots import SlotTable, run_in_lanes

GRAMMAR_FIELDS: tuple[str, ...] = ("structured_outputs", "grammar")


def grammar_body(field: str, grammar: str) -> dict[str, Any]:
    """The request's extra body carrying `grammar` in the field the server reads (see the module docstring)."""
    if field == "structured_outputs":
        return {"structured_outputs": {"grammar": grammar}}
    return {"grammar": grammar}


class OpenAIEngine:
    """Raw-prompt completions against an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "default",
        api_key_env: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        concurrency: int = 4,
        llamacpp_slots: bool = False,
        slots: Sequence[str] = (),
        slot_lanes: int = 1,
        grammar_field: str = "structured_outputs",
        role: str = "",
    ) -> None:
        import openai

        self.name = "openai"
        self.role = role
        self.base_url = base_url
        self.model = model
        self.concurrency = max(1, concurrency)
        self.slots = SlotTable(slots, slot_lanes) if llamacpp_slots else None
        if grammar_field not in GRAMMAR_FIELDS:
            raise EngineError(
                f"role {role!r}, engine openai: grammar_field {grammar_field!r} is not one of {list(GRAMMAR_FIELDS)}"
            )
        self.grammar_field = grammar_field
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        if api_key_env and not key:
            raise EngineError(f"role {role!r}, engine openai: environment variable {api_key_env} is not set; export it")
        self._client = openai.OpenAI(
            base_url=base_url, api_key=key or "not-needed", timeout=timeout, max_retries=max_retries
        )
        self._errors = (openai.APIConnectionError, openai.APIStatusError, openai.APITimeoutError)
        self._bad_request = openai.BadRequestError

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r})"

    def _pinned(self, prompt: str, params: GenerationParams, model: str, key: str | None) -> Completion:
        """One request; on a llama.cpp server, on a slot of `key` (see `umi.models.slots`)."""
        if self.slots is None:
            return self._one(prompt, params, model)
        with self.slots.acquire(key, prompt) as slot:
            return self._one(prompt, params, model, _slot_fields(slot))

    def _failed(self, exc: Exception) -> EngineError:
        return EngineError(
            f"role {self.role!r}, engine openai: {self.base_url} failed ({type(exc).__name__}: {exc}); "
            "check that the server is running and the URL and model name are right"
        )

    def _one(
        self, prompt: str, params: GenerationParams, model: str, extra: dict[str, Any] | None = None
    ) -> Completion:
        kwargs: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            kwargs["stop"] = list(params.stop)[:4]  # the OpenAI API takes at most four
        if params.seed is not None:
            kwargs["seed"] = params.seed
        body = dict(extra or {})
        if params.grammar is not None:
            body.update(grammar_body(self.grammar_field, params.grammar))
        if body:
            kwargs["extra_body"] = body
        start = time.perf_counter()
        try:
            resp = self._client.completions.create(**kwargs)
        except self._bad_request as exc:
            if params.grammar is None:
                raise EngineError(
                    f"role {self.role!r}, engine openai: {self.base_url} refused the request ({exc})"
                ) from None
            raise EngineError(
                f"role {self.role!r}, engine openai: {self.base_url} rejected the grammar in `{self.grammar_field}` "
                f"({str(exc)[:200]}); start vLLM with --structured-outputs-config.backend guidance, set "
                'grammar_field = "grammar" for a llama.cpp server, or set constrain = false for this role'
            ) from None
        except self._errors as exc:
            raise self._failed(exc) from None
        seconds = time.perf_counter() - start
        choice = resp.choices[0]
        usage = resp.usage
        text, finish = choice.text or "", "length" if choice.finish_reason == "length" else "stop"
        for s in params.stop:  # the server stops on the first four; cut here too (more stops, lax servers)
            idx = text.find(s)
            if idx >= 0:
                text, finish = text[:idx], "stop"
        return Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            new_tokens=usage.completion_tokens if usage else 0,
            seconds=seconds,
            finish_reason=finish,
            cached_tokens=cached_tokens(resp),
            constrained=params.grammar is not None,
        )

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
    ) -> list[Completion]:
        model = adapter or self.model
        if self.slots is not None and len(prompts) > 1 and self.concurrency > 1:
            # a llama.cpp server: the key's lanes decode as one batch, their slots chosen together (joint matching)
            return run_in_lanes(
                self.slots, cache_key, prompts, lambda p, slot: self._one(p, params, model, _slot_fields(slot))
            )
        if len(prompts) == 1 or self.concurrency == 1:
            return [self._pinned(p, params, model, cache_key) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._pinned(p, params, model, cache_key), prompts))


def _slot_fields(slot: int) -> dict[str, Any]:
    """What llama.cpp's server needs to keep a role's cache: the slot to use, and to keep and reuse its prompt."""
    return {"id_slot": slot, "cache_prompt": True}


def cached_tokens(resp: Any) -> int:
    """Prompt tokens the server served from its cache: the OpenAI field (vLLM, hosted APIs, llama.cpp) or, where
    only that is returned, llama.cpp's `timings.cache_n`; 0 where the server says nothing."""
    details = getattr(getattr(resp, "usage", None), "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None)
    if cached is None:
        timings = (getattr(resp, "model_extra", None) or {}).get("timings") or {}
        cached = timings.get("cache_n") if isinstance(timings, dict) else None
    return int(cached or 0)
