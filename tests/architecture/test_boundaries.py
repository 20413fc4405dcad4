"""Guards on the package layout: one owner of the wire format, and arrows that must not appear."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UMI = Path(__file__).resolve().parents[2] / "umi"

WIRE_LITERALS = (
    "Next: caller.",
    "Next: conclusion.",
    "Next: give up.",
    "</s>",
    "assistant: ",
    " caller: ",
    " conclusion: ",
)


def _python_files(sub: str = "") -> list[Path]:
    return sorted((UMI / sub).rglob("*.py"))


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_wire_format_literals_live_only_in_umi_format() -> None:
    offenders = []
    for path in _python_files():
        if path.is_relative_to(UMI / "format"):
            continue
        for line, value in _string_constants(path):
            if any(lit in value for lit in WIRE_LITERALS):
                offenders.append(f"{path.relative_to(UMI.parent)}:{line}: {value[:60]!r}")
    assert not offenders, "wire-format text outside umi/format:\n" + "\n".join(offenders)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "format",
            ("umi.models", "umi.tools", "umi.agent", "umi.data", "umi.train", "umi.evaluate", "umi.serve", "umi.cli"),
        ),
        ("models", ("umi.agent", "umi.tools", "umi.evaluate", "umi.serve", "umi.cli", "umi.data")),
        ("tools", ("umi.agent", "umi.models", "umi.cli", "umi.evaluate", "umi.train")),
        ("data", ("umi.models", "umi.agent", "umi.tools", "umi.cli", "umi.train", "umi.evaluate")),
        ("agent", ("umi.cli", "umi.train", "umi.evaluate", "umi.serve")),
        ("train", ("umi.cli", "umi.agent", "umi.serve")),
        ("evaluate", ("umi.cli",)),
        ("serve", ("umi.cli",)),
    ],
)
def test_forbidden_imports(package: str, forbidden: tuple[str, ...]) -> None:
    bad = []
    for path in _python_files(package):
        for mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(UMI.parent)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_library_code_does_not_import_typer() -> None:
    bad = [
        str(p.relative_to(UMI.parent))
        for p in _python_files()
        if not p.is_relative_to(UMI / "cli") and not p.name == "cli.py" and "typer" in _imports(p)
    ]
    assert not bad, bad


def test_no_eval_or_exec_calls() -> None:
    bad = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                bad.append(f"{path.relative_to(UMI.parent)}:{node.lineno}")
    assert not bad, bad
