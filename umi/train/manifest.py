"""The run manifest: what `umi train` leaves behind and what `umi.models.roles.load_roles` reads.

```json
{"umi_manifest": 1, "recipe": "glpft", "base": "stage1/merged", "base_adapters": [],
 "roles": {"planner": {"adapter": "planner/adapter"}, "caller": {...}, "summarizer": {...}},
 "data_hash": "sha256:…", "hyperparameters": {"stage1": {...}, "planner": {...}}, "command": "umi train …"}
```

* `base`: the model every role sits on: a path relative to the manifest's folder, an absolute path, a hub id, a
  `.gguf` file or `embedded`. For GLPFT with LoRA it is the stage-1 merged model (`stage1/merged`).
* `base_adapters`: LoRA adapters (relative paths) merged into `base`, in order, before any role is applied. Empty
  for runs; the packaged roles (`umi/assets/roles/…`) use it to ship stage 1 as a small adapter on `embedded`
  instead of a 540 MB merged model.
* `roles`: `planner`/`caller`/`summarizer` (multi-LLM) or `backbone` (single-LLM); each is `{"adapter": path}`
  (LoRA on `base`) or `{"model": path}` (a full model, `base` unused for it). Two roles may name the same path
  (multi-task: one model plays all three).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from umi.train.base import resolve_base

MANIFEST_VERSION = 1
Recipe = Literal["glpft", "single", "one-stage", "multi-task"]


class RoleArtifact(BaseModel):
    """One role: a LoRA adapter on the manifest's base, or a full model."""

    model_config = ConfigDict(extra="forbid")

    adapter: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _one(self) -> RoleArtifact:
        if (self.adapter is None) == (self.model is None):
            raise ValueError("a role needs exactly one of 'adapter' or 'model'")
        return self


class Manifest(BaseModel):
    """A trained run, enough to load every role and to repeat the run."""

    model_config = ConfigDict(extra="forbid")

    umi_manifest: Literal[1] = 1  # MANIFEST_VERSION
    recipe: Recipe
    base: str
    base_adapters: list[str] = []
    roles: dict[Literal["planner", "caller", "summarizer", "backbone"], RoleArtifact]
    data_hash: str
    hyperparameters: dict[str, Any] = {}
    command: str = ""
    # The prompt budget the rows were rendered with (`umi.format.PromptBudget.as_dict()`); None: unbudgeted.
    # Role bindings hand it to the agent and the evaluators, so inference renders prompts as training did.
    prompt_budget: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _roles(self) -> Manifest:
        names = set(self.roles)
        if names != {"backbone"} and names != {"planner", "caller", "summarizer"}:
            raise ValueError(f"roles must be planner+caller+summarizer or backbone alone, got {sorted(names)}")
        return self


def load_manifest(path: str | Path) -> Manifest:
    """Read `manifest.json` (a run folder is accepted too); errors name the file and the field."""
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.json"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no run manifest here (umi train writes RUN_DIR/manifest.json)")
    try:
        return Manifest.model_validate_json(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{p}: not a umi run manifest: {exc}") from None


def resolve_path(manifest_dir: Path, ref: str) -> str:
    """A manifest reference as something `from_pretrained` accepts: relative paths are to the manifest folder."""
    local = manifest_dir / ref
    return str(local) if local.exists() else resolve_base(ref)


def load_role_model(path: str | Path, role: str) -> tuple[Any, Any]:
    """(model, tokenizer) for one role of a manifest, with transformers + PEFT (adapter applied, not merged).

    A reference loader for tests and the benchmark; the transformers engine in `umi.models` may load the base once
    and switch adapters per role instead.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    manifest = load_manifest(p)
    if role not in manifest.roles:
        raise ValueError(f"{p}: the run has no {role!r} role (it has {sorted(manifest.roles)})")
    art = manifest.roles[role]  # type: ignore[index]
    if art.model is not None:
        where = resolve_path(folder, art.model)
        return AutoModelForCausalLM.from_pretrained(where), AutoTokenizer.from_pretrained(where)
    base = resolve_path(folder, manifest.base)
    model: Any = AutoModelForCausalLM.from_pretrained(base)
    for extra in manifest.base_adapters:
        model = PeftModel.from_pretrained(model, resolve_path(folder, extra)).merge_and_unload()
    assert art.adapter is not None
    model = PeftModel.from_pretrained(model, resolve_path(folder, art.adapter))
    return model, AutoTokenizer.from_pretrained(base)


def data_hash(files: list[Path] | list[bytes]) -> str:
    """sha256 over the training data the run used (file bytes, or serialized row sets)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f if isinstance(f, bytes) else Path(f).read_bytes())
    return "sha256:" + h.hexdigest()
