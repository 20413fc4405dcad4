"""Package a finished LoRA run on a GGUF base (GLPFT, or single-LLM) as small package data (`umi/assets/roles/…`).

A run's roles sit on `stage1/merged`, a 540 MB model; packaged, they sit on `embedded` with the stage-1 adapter in
`base_adapters` (merged at load time), and every adapter is stored in fp16 (half the size, far below LoRA's own
noise: the packaged roles differ from the run's fp32 ones by rounding only). The tokenizer is not copied: it is the
embedded model's.

    python -m umi.train.package runs/glpft_small/glpft umi/assets/roles/smollm2-glpft --max-mb 30
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from umi.data.io import write_json
from umi.train.manifest import Manifest, RoleArtifact, load_manifest

_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _copy_adapter(src: Path, dst: Path) -> int:
    import torch
    from safetensors.torch import load_file, save_file

    dst.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(src / _ADAPTER_FILES[1])).items()}
    save_file(tensors, str(dst / _ADAPTER_FILES[1]))
    config = json.loads((src / _ADAPTER_FILES[0]).read_text())
    config["base_model_name_or_path"] = ""  # the manifest says what the base is
    (dst / _ADAPTER_FILES[0]).write_text(json.dumps(config, indent=2))
    return sum((dst / f).stat().st_size for f in _ADAPTER_FILES)


def package_run(run: Path, dest: Path, *, max_mb: float = 30.0, base: str = "embedded") -> Manifest:
    """Copy a finished LoRA run on `base` into `dest`; refuses (ValueError) above `max_mb` or for another base.

    A GLPFT run's roles sit on its merged stage 1, so the stage-1 adapter goes along as `base_adapters`; a run of
    another recipe (`single`: the backbone alone) has its adapters on `base` itself and is copied as it is."""
    manifest = load_manifest(run)
    if manifest.recipe == "glpft":
        trained_on = json.loads((run / "stage1" / "config.json").read_text()).get("base")
    else:
        trained_on = manifest.base
    if trained_on != base:
        raise ValueError(f"{run}: packaging needs a run on {base!r}, got {trained_on!r}")
    if any(r.adapter is None for r in manifest.roles.values()):
        raise ValueError(f"{run}: packaging needs LoRA roles, not full models")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    size, base_adapters = 0, []
    if manifest.recipe == "glpft":
        size += _copy_adapter(run / "stage1" / "adapter", tmp / "stage1")
        base_adapters = ["stage1"]
    roles: dict[str, RoleArtifact] = {}
    copied: dict[str, str] = {}  # run adapter -> packaged folder: a multi-task run's one adapter is copied once,
    for role, art in manifest.roles.items():  # so the roles keep naming one file and share one prompt cache
        assert art.adapter is not None
        if art.adapter not in copied:
            size += _copy_adapter(run / art.adapter, tmp / role)
            copied[art.adapter] = role
        roles[role] = RoleArtifact(adapter=copied[art.adapter])
    if size > max_mb * 1e6:
        shutil.rmtree(tmp)
        raise ValueError(f"{run}: adapters take {size / 1e6:.1f} MB, above {max_mb} MB; not packaged")
    packaged = manifest.model_copy(update={"base": base, "base_adapters": base_adapters, "roles": roles})
    write_json(tmp / "manifest.json", packaged.model_dump(exclude_none=True))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return packaged


def main() -> None:
    p = argparse.ArgumentParser(description="Package a GLPFT run's adapters as umi package data.")
    p.add_argument("run", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--max-mb", type=float, default=30.0)
    p.add_argument("--base", default="embedded", help="The base the run trained on: embedded, gemma3-270m, a .gguf.")
    args = p.parse_args()
    m = package_run(args.run, args.dest, max_mb=args.max_mb, base=args.base)
    size = sum(f.stat().st_size for f in args.dest.rglob("*") if f.is_file())
    extra = " + stage1" if m.base_adapters else ""
    print(f"packaged {', '.join(m.roles)}{extra} into {args.dest} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
