"""umi.models — engines (transformers, llama.cpp, OpenAI-compatible HTTP) and role bindings."""

from umi.models.base import Completion, CostLedger, Engine, EngineError, GenerationParams
from umi.models.binding import RoleBinding, Roles
from umi.models.roles import default_roles, load_roles
from umi.models.scripted import ScriptedEngine

__all__ = [
    "Completion",
    "CostLedger",
    "Engine",
    "EngineError",
    "GenerationParams",
    "RoleBinding",
    "Roles",
    "ScriptedEngine",
    "default_roles",
    "load_roles",
]
