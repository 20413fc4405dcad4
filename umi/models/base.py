"""The one interface every engine implements: complete a batch of raw prompts, report what it cost.

Engines know nothing of α-UMi: they never build a prompt. Roles (planner, caller, summarizer, backbone) are
*bindings* of an engine plus an optional adapter name, made by `umi.models.roles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationParams:
    """How to generate. Greedy by default (temperature 0) so evaluation is repeatable; `seed` when sampling.

    `stop` is empty here because engines know no wire format: callers pass the role's stop strings
    (`umi.format.END_OF_TURN` for every α-UMi role). Engines also stop at the tokenizer's end-of-sequence token.
    """

    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    #: An llguidance grammar text (starting `%llguidance {}`) the output must follow, or None. Engines translate
    #: it to their own mechanism (llama.cpp `grammar`, vLLM `structured_outputs`, transformers token masks) and
    #: never build one; an engine that cannot enforce it raises instead of generating unconstrained.
    grammar: str | None = None


@dataclass(frozen=True)
class Completion:
    """One generated text and its cost. `text` excludes the stop string that ended it."""

    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    finish_reason: str = "stop"  # "stop" (stop string / EOS) or "length"
    #: Prompt tokens served from a prefix cache instead of being prefilled again (0 where unknown).
    cached_tokens: int = 0
    #: Prompt tokens whose lower layers came from another role's cache (`umi.models.shared_layers`); only the
    #: layers above the adapters' lowest were computed for them. Counted in `prefilled_tokens`.
    shared_tokens: int = 0
    #: True when the engine enforced `GenerationParams.grammar` on this output.
    constrained: bool = False
    #: Speculative decoding (llama.cpp `speculative`): tokens proposed by the draft, and how many of them the model
    #: accepted (each accepted token is one decode step saved); 0 where the engine drafts nothing.
    drafted_tokens: int = 0
    accepted_tokens: int = 0

    @property
    def prefilled_tokens(self) -> int:
        """Prompt tokens the engine actually computed (prompt minus what its cache served)."""
        return max(0, self.prompt_tokens - self.cached_tokens)


@runtime_checkable
class Engine(Protocol):
    """Text completion over raw prompts. `adapter` selects a LoRA adapter (or served model name) per call.

    `cache_key` names the prompt cache a call extends (a role binding passes its role): calls with the same key
    reuse each other's longest common prefix, and a call with another key never evicts it (a batch of one key's
    prompts from several conversations finds each conversation's cache where the engine has lanes for them).
    Engines without a prompt cache ignore it.
    """

    name: str

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        adapter: str | None = None,
        cache_key: str | None = None,
    ) -> list[Completion]: ...


class EngineError(RuntimeError):
    """An engine could not load or answer. The message names the engine, the model and the fix."""


@dataclass
class CostLedger:
    """Per-role running totals: calls, prompt tokens (cached + prefilled; `shared_tokens` of the prefilled ones
    computed only above the adapters), generated tokens (`accepted_tokens` of them drafted by speculative decoding
    and accepted) and seconds."""

    totals: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, role: str, completions: Sequence[Completion]) -> None:
        t = self.totals.setdefault(role, empty_costs())
        for c in completions:
            t["calls"] += 1
            t["prompt_tokens"] += c.prompt_tokens
            t["cached_tokens"] += c.cached_tokens
            t["prefilled_tokens"] += c.prefilled_tokens
            t["shared_tokens"] += c.shared_tokens
            t["new_tokens"] += c.new_tokens
            t["drafted_tokens"] += c.drafted_tokens
            t["accepted_tokens"] += c.accepted_tokens
            t["seconds"] += c.seconds


COST_FIELDS: tuple[str, ...] = (
    "calls",
    "prompt_tokens",
    "cached_tokens",
    "prefilled_tokens",
    "shared_tokens",
    "new_tokens",
    "drafted_tokens",
    "accepted_tokens",
    "seconds",
)


def empty_costs() -> dict[str, float]:
    """One role's zeroed cost record (the fields every cost table shows, in `COST_FIELDS` order)."""
    return {k: (0.0 if k == "seconds" else 0) for k in COST_FIELDS}


def add_costs(into: dict[str, dict[str, float]], costs: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Sum per-role cost records (episodes of a suite, branches of a search) into `into`; returns it."""
    for role, t in costs.items():
        acc = into.setdefault(role, empty_costs())
        for k, v in t.items():
            acc[k] = acc.get(k, 0) + v
    return into
