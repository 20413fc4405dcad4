"""Role bindings: which engine (and which adapter or served model name) plays planner, caller, summarizer or the
single-LLM backbone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from umi.models.base import Completion, Engine, GenerationParams

ROLE_NAMES: tuple[str, ...] = ("planner", "caller", "summarizer", "backbone")


@dataclass
class RoleBinding:
    """An engine plus the adapter (LoRA name, or served model name) that makes it one role."""

    engine: Engine
    adapter: str | None = None
    label: str = ""

    def complete(self, prompts: Sequence[str], params: GenerationParams) -> list[Completion]:
        return self.engine.complete(prompts, params, adapter=self.adapter)


@dataclass
class Roles:
    """The bound roles of one agent. Multi-LLM needs planner, caller and summarizer; single-LLM needs backbone."""

    planner: RoleBinding | None = None
    caller: RoleBinding | None = None
    summarizer: RoleBinding | None = None
    backbone: RoleBinding | None = None
    family: str = "toolbench"

    def get(self, role: str) -> RoleBinding:
        binding = getattr(self, role, None) if role in ROLE_NAMES else None
        if binding is None:
            raise ValueError(f"role {role!r} is not bound; bind it in the role configuration (umi models check)")
        return binding

    @property
    def is_multi(self) -> bool:
        return self.planner is not None and self.caller is not None and self.summarizer is not None

    @classmethod
    def single_engine(cls, engine: Engine, *, family: str = "toolbench") -> Roles:
        """All four roles on one engine with no adapters (zero-shot, or a multi-task model)."""
        b = RoleBinding(engine)
        return cls(planner=b, caller=b, summarizer=b, backbone=b, family=family)
