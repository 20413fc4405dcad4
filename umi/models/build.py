"""Building engines from a `RoleConfig` and binding roles to them.

Engine tables that differ only in their adapters (same kind, model and options) become ONE engine holding all
their adapters, so roles configured on separate tables still share one base model in memory. Each role with
weights of its own binds with its own name as cache key: a llama.cpp engine gets one slot per role bound to it
(`slots`), a transformers engine one prefix cache per role, so LoRA roles sharing an engine never evict each
other's prompt cache. Roles running the same weights share one cache key instead (`share_caches`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umi.models.base import Engine, EngineError
from umi.models.binding import ROLE_NAMES, RoleBinding, Roles
from umi.models.role_config import ADAPTER_KEYS, ENGINE_KINDS, RoleConfig, resolve


def build_engine(
    spec: dict[str, Any], *, role: str = "", root: Path | None = None, slots: tuple[str, ...] = ()
) -> Engine:
    """One engine from its configuration table. Unknown keys are an error naming the role and the engine.

    `slots` are the cache keys (roles) the engine serves; llama.cpp gives each its own server slot(s)."""
    try:
        return _build_engine(spec, role=role, root=root, slots=slots)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise EngineError(
            f"role {role!r}, engine {spec.get('kind', 'llama.cpp')}: unknown option ({exc}); remove it from the table"
        ) from None


def _build_engine(spec: dict[str, Any], *, role: str, root: Path | None, slots: tuple[str, ...]) -> Engine:
    kind = spec.get("kind", "llama.cpp")
    opts = {k: v for k, v in spec.items() if k != "kind"}
    if kind == "llama.cpp":
        from umi.models.llamacpp import LlamaCppEngine

        loras = {n: resolve(str(p), root) for n, p in opts.pop("loras", {}).items()}
        model = resolve(str(opts.pop("model", "embedded")), root)
        opts.setdefault("slots", slots)
        return LlamaCppEngine(model, loras=loras, role=role, **opts)
    if kind == "transformers":
        from umi.models.hf import TransformersEngine, merged_base

        adapters = {n: resolve(str(p), root) for n, p in opts.pop("adapters", {}).items()}
        model = resolve(str(opts.pop("model", "embedded")), root)
        base_adapters = [resolve(str(a), root) for a in opts.pop("base_adapters", [])]
        if base_adapters:
            model = str(merged_base(model, base_adapters))
        return TransformersEngine(model, adapters=adapters, role=role, **opts)
    if kind == "openai":
        from umi.models.openai_http import OpenAIEngine

        if "base_url" not in opts:
            raise EngineError(f"role {role!r}, engine openai: `base_url` is required (e.g. http://127.0.0.1:8000/v1)")
        opts.setdefault("slots", slots)
        return OpenAIEngine(role=role, **opts)
    raise EngineError(f"role {role!r}: unknown engine kind {kind!r}; use one of {', '.join(ENGINE_KINDS[:3])}")


def engine_key(spec: dict[str, Any], root: Path | None) -> str:
    """What makes two engine tables the same base: everything but their adapter maps (paths resolved)."""
    kind = spec.get("kind", "llama.cpp")
    rest = {k: v for k, v in spec.items() if k != ADAPTER_KEYS.get(kind)} | {"kind": kind}
    if "model" in rest:
        rest["model"] = resolve(str(rest["model"]), root)
    return repr(sorted((k, repr(v)) for k, v in rest.items()))


def bind_roles(rc: RoleConfig) -> Roles:
    """Build the engines of a configuration (shared where their bases match) and bind its roles to them."""
    config, root = rc.config, rc.root
    where = rc.source or "role config"
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
        k = spec.get("shortlist", 0)
        if not isinstance(k, int) or isinstance(k, bool) or k < 0 or (k and role not in ("caller", "backbone")):
            raise EngineError(
                f"{where}: role {role!r} has shortlist = {k!r}; a shortlist is a whole number >= 0 (0: every tool) "
                "and only the caller and the backbone call tools"
            )
        follow = spec.get("follow_thought", False)
        if not isinstance(follow, bool) or (follow and role != "caller"):
            raise EngineError(
                f"{where}: role {role!r} has follow_thought = {follow!r}; it is true or false, and only the caller "
                "follows a planner's thought"
            )
        if engine_name not in engines_cfg:
            raise EngineError(f"{where}: role {role!r} names engine {engine_name!r}, which is not defined")
        table = dict(engines_cfg[engine_name])
        key = key_of.setdefault(engine_name, engine_key(table, root))
        users.setdefault(key, []).append(role)
        adapter_key = ADAPTER_KEYS.get(str(table.get("kind", "llama.cpp")), "")
        merged = groups.setdefault(key, {k: v for k, v in table.items() if k != adapter_key})
        for name, path in (table.get(adapter_key, {}) if adapter_key else {}).items():
            known = merged.setdefault(adapter_key, {})
            if name in known and resolve(str(known[name]), root) != resolve(str(path), root):
                raise EngineError(
                    f"{where}: adapter {name!r} names two paths ({known[name]}, {path}) on one base; rename one"
                )
            known[name] = path
    adapters, cache_keys = share_caches(groups, users, {r: spec.get("adapter") for r, spec in roles_cfg.items()}, root)
    built: dict[str, Engine] = {}
    roles = Roles(family=config.get("family", "toolbench"), source=rc.source, prompt_budget=config.get("prompt_budget"))
    for role, spec in roles_cfg.items():
        engine_name = spec.get("engine", "default")
        key = key_of[engine_name]
        if key not in built:
            slots = tuple(cache_keys[r] for r in ROLE_NAMES if r in users[key])
            built[key] = build_engine(dict(groups[key]), role="/".join(users[key]), root=root, slots=slots)
        binding = RoleBinding(
            built[key],
            adapter=adapters[role],
            label=f"{engine_name}",
            cache_key=cache_keys[role],
            constrain=bool(spec.get("constrain", True)),
            shortlist=int(spec.get("shortlist", 0)),
            follow_thought=bool(spec.get("follow_thought", False)),
        )
        setattr(roles, role, binding)
    return roles


def share_caches(
    groups: dict[str, dict[str, Any]],
    users: dict[str, list[str]],
    adapter_of: dict[str, str | None],
    root: Path | None,
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each role's adapter and prompt-cache key, so that roles running the same weights share one cache.

    Two roles on one engine with no adapter, or with adapters loaded from the same file (a multi-task run's one
    adapter, named once per role in its manifest), compute the same keys and values for the same tokens: they get
    one adapter name (the duplicates are dropped from the engine table, so llama.cpp loads the file once and never
    sees two LoRA sets for one model) and one cache key, `planner/caller/…`, whose slot group pools a slot per role
    (`umi.models.slots`). A role with weights of its own keeps its own key, its name. Why: with the α-UMi
    templates one cache shared by the roles prefills 1.37× fewer tokens than one per role on the static
    evaluation's first 50 steps (`benchmarks/results/prefill_floor.md`); measured on the zero-shot roles, the
    pooled binding ran 1.45× faster (`benchmarks/results/static_eval_throughput_shared.md`).
    """
    adapters: dict[str, str | None] = {}
    cache_keys: dict[str, str] = {}
    for key, merged in groups.items():
        adapter_key = ADAPTER_KEYS.get(str(merged.get("kind", "llama.cpp")), "")
        table: dict[str, Any] = dict(merged.get(adapter_key, {})) if adapter_key else {}
        keep = set(merged.get("base_loras", []))
        first: dict[str, str] = {}  # resolved adapter file -> the first name it was loaded under
        for name, path in table.items():
            first.setdefault(resolve(str(path), root), name)
        canonical = {name: first[resolve(str(path), root)] for name, path in table.items()}
        if adapter_key and table:
            merged[adapter_key] = {n: p for n, p in table.items() if canonical[n] == n or n in keep}
        same: dict[str | None, list[str]] = {}
        for role in (r for r in ROLE_NAMES if r in users[key]):
            given = adapter_of.get(role)
            adapters[role] = canonical.get(given, given) if given is not None else None
            same.setdefault(adapters[role], []).append(role)
        for sharing in same.values():
            for role in sharing:
                cache_keys[role] = "/".join(sharing)
    return adapters, cache_keys
