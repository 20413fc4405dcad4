"""Role bindings: which engine (and which adapter or served model name) plays planner, caller, summarizer or the
single-LLM backbone, loaded from one TOML file, a training run's manifest, or the embedded default.

A role configuration (`umi/configs/*.toml` are ready-made ones):

```toml
family = "toolbench"              # prompt family: toolbench | toolalpaca

[engines.base]                    # engines are shared: roles on one engine share one base in memory
kind = "llama.cpp"                # llama.cpp | transformers | openai
model = "embedded"                # a .gguf path, `embedded`, `gemma3-270m`, a folder or a hub id
loras = { planner = "planner.gguf" }   # llama.cpp: GGUF adapters; transformers: `adapters` = PEFT folders

[roles.planner]
engine = "base"
adapter = "planner"               # optional: LoRA name, or the served model name for `openai`
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from umi.models.base import Completion, Engine, EngineError, GenerationParams

ROLE_NAMES: tuple[str, ...] = ("planner", "caller", "summarizer", "backbone")
ENGINE_KINDS: tuple[str, ...] = ("llama.cpp", "transformers", "openai", "scripted")


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
    source: str = ""

    def get(self, role: str) -> RoleBinding:
        binding = getattr(self, role, None) if role in ROLE_NAMES else None
        if binding is None:
            raise ValueError(f"role {role!r} is not bound; bind it in the role configuration (umi models check)")
        return binding

    def bound(self) -> dict[str, RoleBinding]:
        return {r: b for r in ROLE_NAMES if (b := getattr(self, r)) is not None}

    @property
    def is_multi(self) -> bool:
        return self.planner is not None and self.caller is not None and self.summarizer is not None

    @classmethod
    def single_engine(cls, engine: Engine, *, family: str = "toolbench") -> Roles:
        """All four roles on one engine with no adapters (zero-shot, or a multi-task model)."""
        b = RoleBinding(engine, label=getattr(engine, "name", "engine"))
        return cls(planner=b, caller=b, summarizer=b, backbone=b, family=family)


def _resolve(path: str, root: Path | None) -> str:
    p = Path(path).expanduser()
    if root is not None and not p.is_absolute() and (root / p).exists():
        return str(root / p)
    return path


def build_engine(spec: dict[str, Any], *, role: str = "", root: Path | None = None) -> Engine:
    """One engine from its configuration table. Unknown keys are an error naming the table."""
    kind = spec.get("kind", "llama.cpp")
    opts = {k: v for k, v in spec.items() if k != "kind"}
    if kind == "llama.cpp":
        from umi.models.llamacpp import LlamaCppEngine

        loras = {n: _resolve(str(p), root) for n, p in opts.pop("loras", {}).items()}
        model = _resolve(str(opts.pop("model", "embedded")), root)
        return LlamaCppEngine(model, loras=loras, role=role, **opts)
    if kind == "transformers":
        from umi.models.hf import TransformersEngine

        adapters = {n: _resolve(str(p), root) for n, p in opts.pop("adapters", {}).items()}
        model = _resolve(str(opts.pop("model", "embedded")), root)
        return TransformersEngine(model, adapters=adapters, role=role, **opts)
    if kind == "openai":
        from umi.models.openai_http import OpenAIEngine

        if "base_url" not in opts:
            raise EngineError(f"role {role!r}, engine openai: `base_url` is required (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIEngine(role=role, **opts)
    raise EngineError(f"role {role!r}: unknown engine kind {kind!r}; use one of {', '.join(ENGINE_KINDS[:3])}")


def roles_from_config(config: dict[str, Any], *, root: Path | None = None, source: str = "") -> Roles:
    """Bind roles from a parsed configuration (see the module docstring)."""
    engines_cfg: dict[str, Any] = config.get("engines", {})
    roles_cfg: dict[str, Any] = config.get("roles", {})
    unknown = set(roles_cfg) - set(ROLE_NAMES)
    if unknown:
        raise EngineError(f"{source or 'role config'}: unknown role(s) {sorted(unknown)}; use {', '.join(ROLE_NAMES)}")
    built: dict[str, Engine] = {}
    roles = Roles(family=config.get("family", "toolbench"), source=source)
    for role, spec in roles_cfg.items():
        engine_name = spec.get("engine", "default")
        if engine_name not in engines_cfg:
            raise EngineError(
                f"{source or 'role config'}: role {role!r} names engine {engine_name!r}, which is not defined"
            )
        if engine_name not in built:
            built[engine_name] = build_engine(dict(engines_cfg[engine_name]), role=role, root=root)
        setattr(roles, role, RoleBinding(built[engine_name], adapter=spec.get("adapter"), label=f"{engine_name}"))
    return roles


def roles_from_manifest(path: Path) -> Roles:
    """Roles of a `umi train` run: its manifest names the base and each role's adapter or full model.

    Every adapter role shares one transformers engine (one base in memory); `{"model": …}` roles get their own.
    """
    import json

    root = path.parent
    manifest = json.loads(path.read_text())
    if manifest.get("umi_manifest") != 1:
        raise EngineError(f"{path}: not a umi run manifest (no umi_manifest: 1)")
    base = _resolve(str(manifest["base"]), root)
    base_adapters = [_resolve(a, root) for a in manifest.get("base_adapters", [])]
    if base_adapters:
        from umi.models.hf import merged_base

        base = str(merged_base(base, base_adapters))
    adapters = {r: _resolve(spec["adapter"], root) for r, spec in manifest["roles"].items() if spec.get("adapter")}
    shared: Engine | None = None
    if adapters:
        from umi.models.hf import TransformersEngine

        shared = TransformersEngine(base, adapters={r: p for r, p in adapters.items()}, role="manifest")
    roles = Roles(source=str(path))
    full: dict[str, Engine] = {}
    for role, spec in manifest["roles"].items():
        if spec.get("adapter"):
            assert shared is not None
            setattr(roles, role, RoleBinding(shared, adapter=role, label="lora"))
        else:
            model_path = _resolve(spec["model"], root)
            if model_path not in full:
                from umi.models.hf import TransformersEngine

                full[model_path] = TransformersEngine(model_path, role=role)
            setattr(roles, role, RoleBinding(full[model_path], label="full"))
    if roles.backbone is None and roles.planner is not None and manifest.get("recipe") == "multi-task":
        roles.backbone = roles.planner
    return roles


def packaged_config(name: str) -> Path:
    """A ready-made configuration shipped in `umi/configs/` (e.g. `embedded`, `alpha-umi-7b`, `vllm-lora`)."""
    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml"
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise EngineError(f"no packaged role configuration {name!r}; available: {', '.join(available)}")
    return path


def load_roles(source: str | Path | dict[str, Any] | None = None) -> Roles:
    """Roles from a TOML file, a manifest.json, a packaged config name, a parsed dict, or None (the default)."""
    if source is None:
        return default_roles()
    if isinstance(source, dict):
        return roles_from_config(source)
    path = Path(source).expanduser()
    if path.is_dir() and (path / "manifest.json").exists():
        path = path / "manifest.json"
    if path.name.endswith(".json"):
        if not path.exists():
            raise EngineError(f"run manifest {path} not found; give the manifest.json that `umi train` wrote")
        return roles_from_manifest(path)
    if not path.exists():
        path = packaged_config(str(source))
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EngineError(f"{path}: not valid TOML ({exc})") from None
    return roles_from_config(config, root=path.parent, source=str(path))


def trained_roles_dir() -> Path | None:
    """The GLPFT roles trained by umi for the embedded base, when the package ships them."""
    path = Path(__file__).resolve().parents[1] / "assets" / "roles" / "smollm2-glpft" / "manifest.json"
    return path if path.exists() else None


def default_roles() -> Roles:
    """The embedded default: SmolLM2-135M on llama.cpp (or umi's trained GLPFT roles for it, when shipped)."""
    trained = trained_roles_dir()
    if trained is not None:
        return roles_from_manifest(trained)
    return load_roles(packaged_config("embedded"))
