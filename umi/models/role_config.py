"""Reading role configurations: a TOML file, a packaged name, a training run's manifest, or CLI role flags, each
turned into one plain `RoleConfig` (engine tables + role tables). Nothing is built here (`umi.models.build` does).

A role configuration (`umi/configs/*.toml` are ready-made ones):

```toml
family = "toolbench"              # prompt family: toolbench | toolalpaca

[engines.base]                    # engines are shared: roles on one engine share one base in memory
kind = "llama.cpp"                # llama.cpp | transformers | openai
model = "embedded"                # a .gguf path, `embedded`, `gemma3-270m`, a folder or a hub id
n_ctx = 8192                      # llama.cpp: tokens per slot; the server holds one slot per role bound to it
loras = { planner = "planner.gguf" }   # llama.cpp: GGUF adapters; transformers: `adapters` = PEFT folders
speculative = "none"              # llama.cpp: "ngram-simple" drafts tokens from the context (`set_speculative`)

[roles.planner]
engine = "base"
adapter = "planner"               # optional: LoRA name, or the served model name for `openai`

[roles.caller]
engine = "base"
adapter = "caller"
shortlist = 3                     # optional (caller, backbone): the grammar may call only the 3 tools most
                                  # relevant to the query, not called yet (`umi.format.relevance.shortlist`)
follow_thought = true             # optional (caller): the grammar may call only the APIs the planner's thought
                                  # names (`umi.format.relevance.thought_tools`)
```

CLI flags lay roles over a configuration: `--planner/--caller/--summarizer/--backbone [KIND:]MODEL[#ADAPTER]`
(`apply_flags`); a lone `--backbone` binds every role to one engine.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from umi.models.base import EngineError
from umi.models.binding import ROLE_NAMES

ENGINE_KINDS: tuple[str, ...] = ("llama.cpp", "transformers", "openai", "scripted")
ADAPTER_KEYS = {"llama.cpp": "loras", "transformers": "adapters"}
TRAINED_NAME = "embedded-glpft"  # `--roles embedded-glpft`: the shipped GLPFT roles; `embedded`: the bare base


@dataclass
class RoleConfig:
    """A parsed configuration, the folder its relative paths start from, and where it came from (for errors)."""

    config: dict[str, Any]
    root: Path | None = None
    source: str = ""


def resolve(path: str, root: Path | None) -> str:
    """`path` relative to `root` where that file exists, else unchanged (hub ids, aliases, absolute paths)."""
    p = Path(path).expanduser()
    if root is not None and not p.is_absolute() and (root / p).exists():
        return str(root / p)
    return path


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EngineError(f"{path}: not valid TOML ({exc})") from None


def packaged_config(name: str) -> Path:
    """A ready-made configuration shipped in `umi/configs/` (e.g. `embedded`, `alpha-umi-7b`, `vllm-lora`)."""
    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml"
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise EngineError(f"no packaged role configuration {name!r}; available: {', '.join(available)}")
    return path


def trained_roles_dir() -> Path | None:
    """The GLPFT roles trained by umi for the embedded base, when the package ships them."""
    path = Path(__file__).resolve().parents[1] / "assets" / "roles" / "smollm2-glpft" / "manifest.json"
    return path if path.exists() else None


def read_manifest(path: Path) -> dict[str, Any]:
    """A run manifest, checked the same way for every binding: valid JSON, a `roles` table of known roles."""
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


def manifest_config(path: Path, *, dtype: str | None = None) -> RoleConfig:
    """Roles of a `umi train` run on transformers: its manifest names the base and each role's adapter or model.

    Accepts `{"base": …, "roles": {"planner": {"adapter": dir}, …}}` (paths relative to the manifest) with or
    without the `umi_manifest: 1` marker `umi train` writes. Every adapter role shares one engine (one base in
    memory, adapters switched per call; `base_adapters` are merged into that base first); `{"model": …}` roles get
    one engine per distinct model. A multi-task run's planner also plays the backbone; in a GLPFT run the backbone
    is the base plus `base_adapters` (stage 1 is the single-LLM model), as on llama.cpp. `dtype` (e.g.
    `"bfloat16"`) sets the engines' weight type (default: the engine's own choice).
    """
    root = path.parent
    manifest = read_manifest(path)
    engines: dict[str, Any] = {}
    roles: dict[str, Any] = {}
    adapters = {r: resolve(spec["adapter"], root) for r, spec in manifest["roles"].items() if spec.get("adapter")}
    for role, adapter in adapters.items():
        if not (Path(adapter).expanduser() / "adapter_config.json").exists():
            raise EngineError(
                f"role {role!r}, engine transformers: adapter {adapter} (from {path}) is not a PEFT adapter folder "
                "(no adapter_config.json); fix the path in the manifest or re-run `umi train`"
            )
    if adapters:
        if "base" not in manifest:
            raise EngineError(f"{path}: adapter roles need a `base` model; add it to the manifest")
        engines["lora"] = {"kind": "transformers", "model": resolve(str(manifest["base"]), root), "adapters": adapters}
        if manifest.get("base_adapters"):
            engines["lora"]["base_adapters"] = [resolve(a, root) for a in manifest["base_adapters"]]
            roles["backbone"] = {"engine": "lora"}
    for role, spec in manifest["roles"].items():
        if spec.get("adapter"):
            roles[role] = {"engine": "lora", "adapter": role, **_decoding(spec)}
        elif spec.get("model"):
            engines[f"full-{role}"] = {"kind": "transformers", "model": resolve(spec["model"], root)}
            roles[role] = {"engine": f"full-{role}", **_decoding(spec)}
        else:
            raise EngineError(f"{path}: role {role!r} needs `adapter` or `model`")
    if "backbone" not in roles and "planner" in roles and manifest.get("recipe") == "multi-task":
        roles["backbone"] = dict(roles["planner"])
    if dtype:
        for engine in engines.values():
            engine["dtype"] = dtype
    config = {
        "family": manifest.get("family", "toolbench"),
        "engines": engines,
        "roles": roles,
        "prompt_budget": manifest.get("prompt_budget"),
    }
    return RoleConfig(config, root=root, source=str(path))


def _decoding(spec: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings a manifest's role entry may carry into its role table (`constrain`, `shortlist`,
    `follow_thought`)."""
    return {k: spec[k] for k in ("constrain", "shortlist", "follow_thought") if k in spec}


def llamacpp_manifest_config(
    path: Path,
    *,
    n_ctx: int = 8192,
    n_threads: int | None = None,
    n_parallel: int = 1,
    base_quant: str | None = "Q8_0",
    speculative: str = "none",
) -> RoleConfig:
    """A LoRA run on a GGUF base (`embedded`, `gemma3-270m`, a .gguf) configured for llama.cpp.

    Each PEFT adapter is converted to a GGUF LoRA once (`umi.models.gguf_lora.cached_gguf_lora`); the manifest's
    `base_adapters` (GLPFT's stage 1) stay on for every request, each role adds its own, and the backbone role is
    the base plus those base adapters (GLPFT stage 1 is the single-LLM model).

    `base_quant` ("Q8_0", the default): the base runs requantized to Q8_0 (`umi.models.gguf_merge`, cached), on which
    llama.cpp's AVX2 kernels ran the shipped planner 1.35x faster at prefill and 1.59x at decode than on the embedded
    Q4_1 (`benchmarks/results/engines.md`); the adapters still apply at run time, exactly as converted. None: the
    base file as it is. `speculative`: llama.cpp's draft-free speculative decoding (see
    `umi.models.llamacpp.set_speculative`)."""
    from umi.models.embedded import EMBEDDED, GEMMA
    from umi.models.gguf_lora import cached_gguf_lora

    root = path.parent
    manifest = read_manifest(path)
    base = str(manifest.get("base", ""))
    if not (base in (EMBEDDED, GEMMA) or base.endswith(".gguf")):
        raise EngineError(f"{path}: base {base!r} is not a GGUF model; bind these roles on transformers instead")
    gguf_base = resolve(base, root)
    loras: dict[str, str] = {}
    for name in manifest.get("base_adapters", []):
        loras[Path(name).name] = str(cached_gguf_lora(resolve(name, root), base=gguf_base))
    roles_cfg: dict[str, Any] = {}
    for role, spec in manifest["roles"].items():
        if not spec.get("adapter"):
            raise EngineError(f"{path}: role {role!r} is a full model; llama.cpp binding needs LoRA roles")
        loras[role] = str(cached_gguf_lora(resolve(spec["adapter"], root), base=gguf_base))
        roles_cfg[role] = {"engine": "base", "adapter": role, **_decoding(spec)}
    if "planner" in roles_cfg and manifest.get("recipe") == "multi-task":  # one model plays every role
        roles_cfg.setdefault("backbone", dict(roles_cfg["planner"]))
    roles_cfg.setdefault("backbone", {"engine": "base"})
    base_loras = [Path(n).name for n in manifest.get("base_adapters", [])]
    options: dict[str, Any] = {"n_ctx": n_ctx}
    if n_threads:
        options["n_threads"] = n_threads
    if n_parallel > 1:
        options["n_parallel"] = n_parallel
    if speculative != "none":
        options["speculative"] = speculative
    model = base
    if base_quant is not None:
        from umi.models.gguf_merge import cached_merged_gguf

        model = str(cached_merged_gguf(gguf_base, [], quant=base_quant))
    engines = {"base": {"kind": "llama.cpp", "model": model, "loras": loras, "base_loras": base_loras, **options}}
    config = {
        "family": manifest.get("family", "toolbench"),
        "engines": engines,
        "roles": roles_cfg,
        "prompt_budget": manifest.get("prompt_budget"),
    }
    return RoleConfig(config, root=root, source=str(path))


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
            table[ADAPTER_KEYS[table["kind"]]] = {role: adapter}
            binding["adapter"] = role
        out["engines"][f"flag-{role}"] = table
        out["roles"][role] = binding
    return out
