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

CLI flags lay roles over a configuration: `--planner/--caller/--summarizer/--backbone [KIND:]MODEL[#ADAPTER]`
(`apply_flags`); a lone `--backbone` binds every role to one engine. Roles whose engines point at the same base
share one engine, so three LoRA roles cost one base model of memory.
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
    #: False when the role configuration says `constrain = false`: this role always generates unconstrained.
    constrain: bool = True

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
    """One engine from its configuration table. Unknown keys are an error naming the role and the engine."""
    try:
        return _build_engine(spec, role=role, root=root)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise EngineError(
            f"role {role!r}, engine {spec.get('kind', 'llama.cpp')}: unknown option ({exc}); remove it from the table"
        ) from None


def _build_engine(spec: dict[str, Any], *, role: str, root: Path | None) -> Engine:
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


_ADAPTER_KEYS = {"llama.cpp": "loras", "transformers": "adapters"}


def _engine_key(spec: dict[str, Any], root: Path | None) -> str:
    """What makes two engine tables the same base: everything but their adapter maps (paths resolved)."""
    kind = spec.get("kind", "llama.cpp")
    rest = {k: v for k, v in spec.items() if k != _ADAPTER_KEYS.get(kind)} | {"kind": kind}
    if "model" in rest:
        rest["model"] = _resolve(str(rest["model"]), root)
    return repr(sorted((k, repr(v)) for k, v in rest.items()))


def roles_from_config(config: dict[str, Any], *, root: Path | None = None, source: str = "") -> Roles:
    """Bind roles from a parsed configuration (see the module docstring).

    Engine tables that differ only in their adapters (same kind, model and options) become ONE engine holding all
    their adapters, so roles configured on separate tables still share one base model in memory.
    """
    where = source or "role config"
    engines_cfg: dict[str, Any] = config.get("engines", {})
    roles_cfg: dict[str, Any] = config.get("roles", {})
    unknown = set(roles_cfg) - set(ROLE_NAMES)
    if unknown:
        raise EngineError(f"{where}: unknown role(s) {sorted(unknown)}; use {', '.join(ROLE_NAMES)}")
    groups: dict[str, dict[str, Any]] = {}  # engine key -> merged spec
    users: dict[str, list[str]] = {}  # engine key -> roles bound to it
    key_of: dict[str, str] = {}
    for role, spec in roles_cfg.items():
        engine_name = spec.get("engine", "default")
        if engine_name not in engines_cfg:
            raise EngineError(f"{where}: role {role!r} names engine {engine_name!r}, which is not defined")
        table = dict(engines_cfg[engine_name])
        key = key_of.setdefault(engine_name, _engine_key(table, root))
        users.setdefault(key, []).append(role)
        adapter_key = _ADAPTER_KEYS.get(str(table.get("kind", "llama.cpp")), "")
        merged = groups.setdefault(key, {k: v for k, v in table.items() if k != adapter_key})
        for name, path in (table.get(adapter_key, {}) if adapter_key else {}).items():
            known = merged.setdefault(adapter_key, {})
            if name in known and _resolve(str(known[name]), root) != _resolve(str(path), root):
                raise EngineError(
                    f"{where}: adapter {name!r} names two paths ({known[name]}, {path}) on one base; rename one"
                )
            known[name] = path
    built: dict[str, Engine] = {}
    roles = Roles(family=config.get("family", "toolbench"), source=source)
    for role, spec in roles_cfg.items():
        engine_name = spec.get("engine", "default")
        key = key_of[engine_name]
        if key not in built:
            built[key] = build_engine(dict(groups[key]), role="/".join(users[key]), root=root)
        binding = RoleBinding(
            built[key], adapter=spec.get("adapter"), label=f"{engine_name}", constrain=bool(spec.get("constrain", True))
        )
        setattr(roles, role, binding)
    return roles


def _read_manifest(path: Path) -> dict[str, Any]:
    """A run manifest, checked the same way for every binding: valid JSON, a `roles` table of known roles."""
    import json

    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EngineError(f"{path}: not valid JSON ({exc}); give the manifest.json that `umi train` wrote") from None
    if manifest.get("umi_manifest", 1) != 1 or not isinstance(manifest.get("roles"), dict):
        raise EngineError(f"{path}: not a umi run manifest (needs `roles`, and `umi_manifest: 1` if versioned)")
    unknown = set(manifest["roles"]) - set(ROLE_NAMES)
    if unknown:
        raise EngineError(f"{path}: unknown role(s) {sorted(unknown)}; use {', '.join(ROLE_NAMES)}")
    return manifest


def roles_from_manifest(path: Path) -> Roles:
    """Roles of a `umi train` run: its manifest names the base and each role's adapter or full model.

    Accepts `{"base": …, "roles": {"planner": {"adapter": dir}, …}}` (paths relative to the manifest) with or
    without the `umi_manifest: 1` marker `umi train` writes. Every adapter role shares one transformers engine
    (one base in memory, adapters switched per call); `{"model": …}` roles get one engine per distinct model.
    """
    root = path.parent
    manifest = _read_manifest(path)
    adapters = {r: _resolve(spec["adapter"], root) for r, spec in manifest["roles"].items() if spec.get("adapter")}
    for role, adapter in adapters.items():
        if not (Path(adapter).expanduser() / "adapter_config.json").exists():
            raise EngineError(
                f"role {role!r}, engine transformers: adapter {adapter} (from {path}) is not a PEFT adapter folder "
                "(no adapter_config.json); fix the path in the manifest or re-run `umi train`"
            )
    shared: Engine | None = None
    if adapters:
        if "base" not in manifest:
            raise EngineError(f"{path}: adapter roles need a `base` model; add it to the manifest")
        from umi.models.hf import TransformersEngine

        base = _resolve(str(manifest["base"]), root)
        base_adapters = [_resolve(a, root) for a in manifest.get("base_adapters", [])]
        if base_adapters:
            from umi.models.hf import merged_base

            base = str(merged_base(base, base_adapters))
        shared = TransformersEngine(base, adapters=adapters, role="/".join(adapters))
    roles = Roles(source=str(path))
    full: dict[str, Engine] = {}
    for role, spec in manifest["roles"].items():
        if spec.get("adapter"):
            assert shared is not None
            setattr(roles, role, RoleBinding(shared, adapter=role, label="lora"))
        elif spec.get("model"):
            model_path = _resolve(spec["model"], root)
            if model_path not in full:
                from umi.models.hf import TransformersEngine

                full[model_path] = TransformersEngine(model_path, role=role)
            setattr(roles, role, RoleBinding(full[model_path], label="full"))
        else:
            raise EngineError(f"{path}: role {role!r} needs `adapter` or `model`")
    if roles.backbone is None and roles.planner is not None and manifest.get("recipe") == "multi-task":
        roles.backbone = roles.planner
    return roles


def parse_flag(value: str) -> tuple[dict[str, Any], str | None]:
    """One CLI role flag, `[KIND:]MODEL[#ADAPTER]`, as (engine table, adapter).

    KIND is `llama.cpp`, `transformers` or `openai`; without it, `.gguf` files and the `embedded` / `gemma3-270m`
    aliases go to llama.cpp, `http(s)://` URLs to openai, anything else (folder, hub id) to transformers. ADAPTER is
    a GGUF LoRA file (llama.cpp), a PEFT adapter folder (transformers), or the served model name (openai).
    Examples: `embedded`, `transformers:embedded#runs/glpft/planner/adapter`, `http://127.0.0.1:8000/v1#planner`.
    """
    kind = ""
    for k in ENGINE_KINDS[:3]:
        if value.startswith(k + ":"):
            kind, value = k, value[len(k) + 1 :]
            break
    model, _, adapter = value.partition("#")
    if not kind:
        if model.startswith(("http://", "https://")):
            kind = "openai"
        elif model.endswith(".gguf") or model in ("embedded", "gemma3-270m"):
            kind = "llama.cpp"
        else:
            kind = "transformers"
    if kind == "openai":
        return {"kind": kind, "base_url": model}, adapter or None
    return {"kind": kind, "model": model}, adapter or None


def apply_flags(config: dict[str, Any], flags: dict[str, str | None]) -> dict[str, Any]:
    """A configuration with CLI role flags (`{"planner": "[KIND:]MODEL[#ADAPTER]", …}`) laid over it.

    A lone `backbone` flag binds every role to that one engine (single backbone); otherwise each flag replaces
    only its own role. Flags naming the same base share one engine (their adapters load side by side).
    """
    given = {r: v for r, v in flags.items() if v}
    unknown = set(given) - set(ROLE_NAMES)
    if unknown:
        raise EngineError(f"unknown role flag(s) {sorted(unknown)}; use {', '.join(ROLE_NAMES)}")
    if not given:
        return config
    out = {**config, "engines": dict(config.get("engines", {})), "roles": dict(config.get("roles", {}))}
    if set(given) == {"backbone"}:
        out["roles"] = {}
        targets = {r: given["backbone"] for r in ROLE_NAMES}
    else:
        targets = given
    for role, value in targets.items():
        table, adapter = parse_flag(str(value))
        binding: dict[str, Any] = {"engine": f"flag-{role}"}
        if adapter and table["kind"] == "openai":
            binding["adapter"] = adapter
        elif adapter:
            table[_ADAPTER_KEYS[table["kind"]]] = {role: adapter}
            binding["adapter"] = role
        out["engines"][f"flag-{role}"] = table
        out["roles"][role] = binding
    return out


def packaged_config(name: str) -> Path:
    """A ready-made configuration shipped in `umi/configs/` (e.g. `embedded`, `alpha-umi-7b`, `vllm-lora`)."""
    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml"
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise EngineError(f"no packaged role configuration {name!r}; available: {', '.join(available)}")
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EngineError(f"{path}: not valid TOML ({exc})") from None


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
        return roles_from_config(apply_flags(_read_toml(path), flags), root=path.parent, source="flags")
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
    return roles_from_config(apply_flags(_read_toml(path), flags), root=path.parent, source=str(path))


TRAINED_NAME = "embedded-glpft"  # `--roles embedded-glpft`: the shipped GLPFT roles; `embedded`: the bare base


def trained_roles_dir() -> Path | None:
    """The GLPFT roles trained by umi for the embedded base, when the package ships them."""
    path = Path(__file__).resolve().parents[1] / "assets" / "roles" / "smollm2-glpft" / "manifest.json"
    return path if path.exists() else None


def llamacpp_roles_from_manifest(
    path: Path, *, n_ctx: int = 8192, n_threads: int | None = None, n_parallel: int = 1
) -> Roles:
    """A LoRA run on a GGUF base (`embedded`, `gemma3-270m`, a .gguf) bound on llama.cpp instead of transformers.

    Each PEFT adapter is converted to a GGUF LoRA once (`umi.models.gguf_lora.cached_gguf_lora`); the manifest's
    `base_adapters` (GLPFT's stage 1) stay on for every request, each role adds its own, and the backbone role is
    the base plus those base adapters (GLPFT stage 1 is the single-LLM model). One base in memory, the fast path."""
    from umi.models.embedded import EMBEDDED, GEMMA
    from umi.models.gguf_lora import cached_gguf_lora

    root = path.parent
    manifest = _read_manifest(path)
    base = str(manifest.get("base", ""))
    if not (base in (EMBEDDED, GEMMA) or base.endswith(".gguf")):
        raise EngineError(f"{path}: base {base!r} is not a GGUF model; bind these roles on transformers instead")
    gguf_base = _resolve(base, root)
    loras: dict[str, str] = {}
    for name in manifest.get("base_adapters", []):
        loras[Path(name).name] = str(cached_gguf_lora(_resolve(name, root), base=gguf_base))
    roles_cfg: dict[str, Any] = {}
    for role, spec in manifest["roles"].items():
        if not spec.get("adapter"):
            raise EngineError(f"{path}: role {role!r} is a full model; llama.cpp binding needs LoRA roles")
        loras[role] = str(cached_gguf_lora(_resolve(spec["adapter"], root), base=gguf_base))
        roles_cfg[role] = {"engine": "base", "adapter": role}
    roles_cfg.setdefault("backbone", {"engine": "base"})
    engine: dict[str, Any] = {"kind": "llama.cpp", "model": base, "n_ctx": n_ctx, "loras": loras}
    engine["base_loras"] = [Path(n).name for n in manifest.get("base_adapters", [])]
    if n_threads:
        engine["n_threads"] = n_threads
    if n_parallel > 1:
        engine["n_parallel"] = n_parallel
    config = {"family": manifest.get("family", "toolbench"), "engines": {"base": engine}, "roles": roles_cfg}
    return roles_from_config(config, root=root, source=str(path))


def default_roles() -> Roles:
    """The embedded default: umi's GLPFT roles for SmolLM2-135M on llama.cpp when the package ships them, else
    the bare embedded model (zero-shot) on llama.cpp."""
    trained = trained_roles_dir()
    if trained is not None:
        return llamacpp_roles_from_manifest(trained)
    return load_roles(packaged_config("embedded"))
