"""Reading and writing umi's JSON files with errors that name the file, the record and what is wrong."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from umi.schema import ROLES, Row, Trajectory


class DataError(ValueError):
    """A bad input file or record. The message names the file, the record index and the fix."""

    def __init__(self, path: str | Path, message: str, index: int | None = None) -> None:
        where = f"{path}" if index is None else f"{path}: record {index}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.index = index
        self.reason = message


@dataclass
class Loaded:
    """Records that validated, and the ones skipped with `--skip-invalid` (never dropped silently)."""

    items: list[Any] = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing file or bad JSON is a `DataError` naming the line and column."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "file not found; check the path")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(p, f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise DataError(p, f"not UTF-8 text ({exc.reason})") from None


def _explain(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    if first["type"] == "missing":
        return f"missing field '{loc}'"
    if first["type"] == "literal_error" and loc.endswith("from"):
        return f"unknown role {first.get('input')!r} at '{loc}' (expected one of {', '.join(ROLES)})"
    return f"bad field '{loc}': {first['msg']}"


def validate_trajectory(raw: Any, path: str | Path, index: int) -> Trajectory:
    """One trajectory record, or a `DataError` that says what is wrong with it."""
    if not isinstance(raw, dict):
        raise DataError(
            path, f"expected an object with tools/instruction/conversations, got {type(raw).__name__}", index
        )
    try:
        traj = Trajectory.model_validate(raw)
    except ValidationError as exc:
        raise DataError(path, _explain(exc), index) from None
    if not traj.conversations:
        raise DataError(path, "empty conversation (a trajectory needs at least the user turn)", index)
    return traj


def load_trajectories(path: str | Path, *, skip_invalid: bool = False) -> Loaded:
    """A file holding a JSON list of trajectories in the released stage-2 layout."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of trajectories, got {type(data).__name__}")
    out = Loaded()
    for i, raw in enumerate(data):
        try:
            out.items.append(validate_trajectory(raw, path, i))
        except DataError as err:
            if not skip_invalid:
                raise
            out.skipped.append(err)
    return out


def load_rows(path: str | Path) -> list[Row]:
    """A row-set file (a JSON list of `{tools, history, input, target}`)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of rows, got {type(data).__name__}")
    rows: list[Row] = []
    for i, raw in enumerate(data):
        try:
            rows.append(Row.model_validate(raw))
        except ValidationError as exc:
            raise DataError(path, _explain(exc), i) from None
    return rows


def write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> None:
    """Write JSON atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=indent), encoding="utf-8")
    tmp.replace(p)


def write_rows(path: str | Path, rows: Sequence[Row]) -> None:
    write_json(path, [r.as_json_dict() for r in rows])
