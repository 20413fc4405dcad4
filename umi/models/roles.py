"""Role bindings, loaded: which engine (and which adapter or served model name) plays planner, caller,
summarizer or the single-LLM backbone, from one TOML file, a training run's manifest, or the embedded default.

Two concerns, two modules: `umi.models.role_config` reads configurations (TOML, manifests, CLI flags; see its
docstring for the format) and `umi.models.build` builds engines and binds roles. This module joins them and keeps
the names callers import (`load_roles`, `default_roles`, `Roles`, `RoleBinding`, …).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umi.models.base import EngineError
from umi.models.binding import ROLE_NAMES, RoleBinding, Roles
from umi.models.build import bind_roles, build_engine
from umi.models.role_config import (
    ENGINE_KINDS,
    TRAINED_NAME,
    RoleConfig,
    apply_flags,
    llamacpp_manifest_config,
    manifest_config,
    packaged_config,
    parse_flag,
    read_toml,
    trained_roles_dir,
)

__all__ = [
    "ENGINE_KINDS",
    "ROLE_NAMES",
    "TRAINED_NAME",
    "RoleBinding",
    "Roles",
    "apply_flags",
    "build_engine",
    "default_roles",
    "llamacpp_roles_from_manifest",
    "load_roles",
    "packaged_config",
    "parse_flag",
    "roles_from_config",
    "roles_from_manifest",
    "trained_roles_dir",
]


def roles_from_config(config: dict[str, Any], *, root: Path | None = None, source: str = "") -> Roles:
    """Bind roles from a parsed configuration (see `umi.models.role_config`)."""
    return bind_roles(RoleConfig(config, root=root, source=source))


def roles_from_manifest(path: Path, *, dtype: str | None = None) -> Roles:
    """Roles of a `umi train` run on transformers (see `umi.models.role_config.manifest_config`)."""
    return bind_roles(manifest_config(path, dtype=dtype))


def llamacpp_roles_from_manifest(
    path: Path,
    *,
    n_ctx: int = 8192,
    n_threads: int | None = None,
    n_parallel: int = 1,
    base_quant: str | None = "Q8_0",
    speculative: str = "none",
) -> Roles:
    """A LoRA run on a GGUF base bound on llama.cpp (see `umi.models.role_config.llamacpp_manifest_config`):
    one base, requantized to `base_quant` (None: as shipped), with the adapters applied per request."""
    config = llamacpp_manifest_config(
        path, n_ctx=n_ctx, n_threads=n_threads, n_parallel=n_parallel, base_quant=base_quant, speculative=speculative
    )
    return bind_roles(config)


def load_roles(source: str | Path | dict[str, Any] | None = None, **flags: str | None) -> Roles:
    """Roles from a TOML file, a manifest.json (or its run folder), a packaged config name, a parsed dict, or None
    (the default), with optional CLI role flags laid over it (`planner=`, `caller=`, `summarizer=`, `backbone=`;
    see `apply_flags`)."""
    flags = {k: v for k, v in flags.items() if v}
    if source is None and not flags:
        return default_roles()
    if isinstance(source, dict):
        return roles_from_config(apply_flags(source, flags))
    if source is None:
        path = packaged_config("embedded")
        return roles_from_config(apply_flags(read_toml(path), flags), root=path.parent, source="flags")
    path = Path(source).expanduser()
    if path.is_dir() and (path / "manifest.json").exists():
        path = path / "manifest.json"
    if path.name.endswith(".json"):
        if not path.exists():
            raise EngineError(f"run manifest {path} not found; give the manifest.json that `umi train` wrote")
        if flags:
            raise EngineError(f"{path}: role flags apply to TOML configurations, not to run manifests")
        return roles_from_manifest(path)
    if str(source) == TRAINED_NAME and not path.exists():
        trained = trained_roles_dir()
        if trained is None:
            raise EngineError(f"{TRAINED_NAME!r}: this umi build ships no trained roles; use `embedded` (zero-shot)")
        if flags:
            raise EngineError(f"{TRAINED_NAME!r}: role flags apply to TOML configurations, not to shipped roles")
        return llamacpp_roles_from_manifest(trained)
    if not path.exists():
        if path.suffix in (".toml", ".yaml", ".yml") or "/" in str(source):
            raise EngineError(f"role configuration {path} not found; give a TOML file or a packaged name")
        path = packaged_config(str(source))
    return roles_from_config(apply_flags(read_toml(path), flags), root=path.parent, source=str(path))


def default_roles(lanes: int = 1) -> Roles:
    """The embedded default: umi's GLPFT roles for SmolLM2-135M on llama.cpp when the package ships them, else
    the bare embedded model (zero-shot) on llama.cpp.

    `lanes` > 1 gives each role that many llama.cpp slots (`n_parallel`), decoded as one batch, for callers that
    run several conversations at once (static evaluation's trajectories side by side). Each slot then holds 4,096
    tokens instead of 8,192 (the shipped prompt budget keeps prompts far below that), so 4 lanes cost 4 roles × 4
    slots × 4,096 tokens × 22.5 KiB ≈ 1.4 GiB of KV, twice one lane's."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    n_ctx = 8192 if lanes == 1 else 4096
    trained = trained_roles_dir()
    if trained is not None:
        return llamacpp_roles_from_manifest(trained, n_ctx=n_ctx, n_parallel=lanes)
    if lanes == 1:
        return load_roles(packaged_config("embedded"))
    config = read_toml(packaged_config("embedded"))
    for engine in config.get("engines", {}).values():
        engine.update(n_ctx=n_ctx, n_parallel=lanes)
    return roles_from_config(config, root=packaged_config("embedded").parent, source="embedded")
