"""The OpenAI-compatible HTTP engine: vLLM, llama.cpp's server, Ollama or any hosted endpoint.

It calls the *completions* endpoint with raw prompts (α-UMi prompts are not chat messages). A role binds to a
model name, so one vLLM server started with `--enable-lora --lora-modules planner=… caller=… summarizer=…` serves
all three roles: the role's adapter name is sent as the request's `model`. Retries with exponential backoff on
429 and 5xx (the openai client's own), a timeout per request, bounded concurrency across a batch, and the API key
read from an environment variable whose *name* is configured — the key itself is never logged or stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from umi.models.base import Completion, EngineError, GenerationParams


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
        role: str = "",
    ) -> None:
        import openai

        self.name = "openai"
        self.role = role
        self.base_url = base_url
        self.model = model
        self.concurrency = max(1, concurrency)
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        if api_key_env and not key:
            raise EngineError(f"role {role!r}, engine openai: environment variable {api_key_env} is not set; export it")
        self._client = openai.OpenAI(
            base_url=base_url, api_key=key or "not-needed", timeout=timeout, max_retries=max_retries
        )
        self._errors = (openai.APIConnectionError, openai.APIStatusError, openai.APITimeoutError)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r})"

    def _one(self, prompt: str, params: GenerationParams, model: str) -> Completion:
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
        start = time.perf_counter()
        try:
            resp = self._client.completions.create(**kwargs)
        except self._errors as exc:
            raise EngineError(
                f"role {self.role!r}, engine openai: {self.base_url} failed ({type(exc).__name__}: {exc}); "
                "check that the server is running and the URL and model name are right"
            ) from None
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
            cached_tokens=int(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0),
        )

    def complete(
        self, prompts: Sequence[str], params: GenerationParams, *, adapter: str | None = None
    ) -> list[Completion]:
        model = adapter or self.model
        if len(prompts) == 1 or self.concurrency == 1:
            return [self._one(p, params, model) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._one(p, params, model), prompts))
