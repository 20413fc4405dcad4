"""Role bindings: an engine plus the adapter that makes it planner, caller, summarizer or backbone.

The types only; `umi.models.role_config` reads configurations and `umi.models.build` builds engines from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from umi.models.base import Completion, Engine, EngineError, GenerationParams

ROLE_NAMES: tuple[str, ...] = ("planner", "caller", "summarizer", "backbone")


@dataclass
class RoleBinding:
    """An engine plus the adapter (LoRA name, or served model name) that makes it one role.

    `cache_key` (the role's name when built from a configuration; `planner/caller/…` for roles that run the same
    weights, see `umi.models.build.share_caches`) names the role's prompt cache on the engine: calls with one key
    extend each other's cached prompts and never evict another key's.
    """

    engine: Engine
    adapter: str | None = None
    label: str = ""
    cache_key: str | None = None
    #: False when the role configuration says `constrain = false`: this role always generates unconstrained.
    constrain: bool = True
    #: The caller's (or backbone's) tool shortlist under its grammar (`umi.format.relevance.shortlist`): the API
    #: alternatives are the `shortlist` tools ranked most relevant to the query, not called yet; 0: every tool.
    shortlist: int = 0
    #: The caller's grammar names only the APIs its planner's thought names (`umi.format.relevance.thought_tools`;
    #: every tool when the thought names none). False: every tool.
    follow_thought: bool = False

    def complete(self, prompts: Sequence[str], params: GenerationParams) -> list[Completion]:
        """The engine's completions; with a grammar, every one must say the engine enforced it (never silently
        unconstrained: an engine that cannot raises here, for every caller of a role)."""
        done = self.engine.complete(prompts, params, adapter=self.adapter, cache_key=self.cache_key)
        if params.grammar is not None and not all(c.constrained for c in done):
            raise EngineError(
                f"role {self.cache_key or self.label or '?'!r}, engine {getattr(self.engine, 'name', '?')}: does "
                "not enforce grammars; use llama.cpp, transformers or an openai server with structured outputs, "
                "set constrain = false for the role, or pass --no-constrain"
            )
        return done


@dataclass
class Roles:
    """The bound roles of one agent. Multi-LLM needs planner, caller and summarizer; single-LLM needs backbone."""

    planner: RoleBinding | None = None
    caller: RoleBinding | None = None
    summarizer: RoleBinding | None = None
    backbone: RoleBinding | None = None
    family: str = "toolbench"
    source: str = ""
    # The prompt budget of the run these roles come from (a `umi.format.PromptBudget` as a dict), opaque here:
    # the agent and the evaluators render prompts with it. None: unbudgeted (the released checkpoints' bytes).
    prompt_budget: dict[str, Any] | None = None

    def get(self, role: str) -> RoleBinding:
        binding = getattr(self, role, None) if role in ROLE_NAMES else None
        if binding is None:
            raise ValueError(f"role {role!r} is not bound; bind it in the role configuration (umi models check)")
        return binding

    def set_shortlist(self, k: int) -> None:
        """Give the tool-calling roles (caller, backbone) a tool shortlist of `k` (0: every tool); see
        `RoleBinding.shortlist`."""
        if k < 0:
            raise ValueError(f"shortlist {k}: give a whole number >= 0 (0: every tool)")
        for binding in (self.caller, self.backbone):
            if binding is not None:
                binding.shortlist = k

    def bound(self) -> dict[str, RoleBinding]:
        return {r: b for r in ROLE_NAMES if (b := getattr(self, r)) is not None}

    def close(self) -> None:
        """Close each distinct engine the roles are bound to that has a `close` (llama.cpp servers)."""
        for engine in {id(b.engine): b.engine for b in self.bound().values()}.values():
            close = getattr(engine, "close", None)
            if close is not None:
                close()

    @property
    def is_multi(self) -> bool:
        return self.planner is not None and self.caller is not None and self.summarizer is not None

    @classmethod
    def single_engine(cls, engine: Engine, *, family: str = "toolbench") -> Roles:
        """All four roles on one engine with no adapters (zero-shot, or a multi-task model); each role keeps its
        own prompt cache on it."""
        label = getattr(engine, "name", "engine")
        planner, caller, summarizer, backbone = (RoleBinding(engine, label=label, cache_key=r) for r in ROLE_NAMES)
        return cls(planner=planner, caller=caller, summarizer=summarizer, backbone=backbone, family=family)
