"""A scripted engine: returns texts you give it. How agent, evaluation and server tests run without a model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from umi.models.base import Completion, GenerationParams

Responder = Callable[[str, str | None], str]


class ScriptedEngine:
    """Answers from a list (in order) or from a function of (prompt, adapter).

    `latency` sleeps per prompt, for overhead benchmarks. Stop strings are honoured like a real engine: the text is
    cut at the first one. Every prompt it saw is kept in `prompts` so tests can assert on the exact bytes.
    """

    def __init__(self, script: Sequence[str] | Responder, *, latency: float = 0.0, name: str = "scripted") -> None:
        self.name = name
        self._script = script
        self._i = 0
        self.latency = latency
        self.prompts: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()  # a list script is consumed in order even under concurrent callers

    def _next(self, prompt: str, adapter: str | None) -> str:
        script = self._script
        if callable(script):
            return script(prompt, adapter)
        with self._lock:
            if self._i >= len(script):
                raise IndexError(f"scripted engine ran out of answers after {self._i} calls")
            text = script[self._i]
            self._i += 1
            return text

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
    ) -> list[Completion]:
        out: list[Completion] = []
        for prompt in prompts:
            start = time.perf_counter()
            if self.latency:
                time.sleep(self.latency)
            self.prompts.append((prompt, adapter))
            text = self._next(prompt, adapter)
            finish = "length"
            for s in params.stop:
                idx = text.find(s)
                if idx >= 0:
                    text, finish = text[:idx], "stop"
            if finish == "length" and len(text.split()) < params.max_new_tokens:
                finish = "stop"
            out.append(
                Completion(
                    text=text,
                    prompt_tokens=len(prompt.split()),
                    new_tokens=len(text.split()),
                    seconds=time.perf_counter() - start,
                    finish_reason=finish,
                )
            )
        return out
