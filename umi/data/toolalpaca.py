"""ToolAlpaca evaluation files (`eval_simulated.json`, `eval_real.json`) → tool specs and tasks.

Each tool of a file carries an OpenAPI document, ToolAlpaca's function → `[path, method]` map, its instructions
and their golden action sequences. Tools go through umi's OpenAPI importer (`umi.tools.specs.from_openapi`) and
are then named as the map names them, so every spec keeps its path and method and the golden answers name real
specs. The released files have a few defects; the reader repairs the ones it can and records every repair on the
tool or task it touched (`repairs`), so nothing is changed or dropped silently. Anything else is a `DataError`
naming the file, the tool and the instruction index.

`umi.data` may not import `umi.tools`, so the OpenAPI importer is handed in (`importer=umi.tools.specs.from_openapi`),
the way the replay cache is handed its simulator.

Golden arguments keep ToolAlpaca's placeholders for values that come from an earlier return or the user
(`${animeId from searchAnime}`, `"{start date}"`): they become the string `"${…}"` (see `is_placeholder`), which
the process rule accepts any value for.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umi.data.io import DataError, read_json
from umi.schema import ToolSpec

#: ToolAlpaca's pseudo-function for asking the user for details the instruction lacks; golden answers use it,
#: and its judge prompt names it as an allowed extra call.
ASK_USER = "getDetails"
OPTIONAL_PREFIX = "[Optional]"
_REQUIRED_FIELDS = ("Name", "Documentation", "Function_Projection", "Instructions", "Golden_Answers")
# `${name from fn}` with or without its closing brace (one golden answer lacks it), and a stray quote after it.
_PLACEHOLDER = re.compile(r'"?\$\{([^}",]*)\}?"?')
_QUOTED_BRACES = re.compile(r"^\{([^{}]*)\}$")
_DUPLICATED_KEY = re.compile(r'"(\w+)":\s*"\1":')


@dataclass(frozen=True)
class GoldenStep:
    """One step of a golden action sequence: the function, its parsed arguments, and whether ToolAlpaca marked
    it `[Optional]`."""

    action: str
    arguments: dict[str, Any]
    optional: bool = False


@dataclass
class ToolAlpacaTask:
    """One instruction of a tool with its golden sequence; `repairs` says what the reader fixed in its answer."""

    tool: str
    index: int
    instruction: str
    golden: list[GoldenStep]
    repairs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A file-name-safe id: the tool's name and the instruction index."""
        return f"{re.sub(r'[^A-Za-z0-9]+', '_', self.tool).strip('_')}-{self.index}"


@dataclass
class ToolAlpacaTool:
    """One ToolAlpaca tool: its specs (OpenAPI import, named by the function map), the text docs ToolAlpaca shows
    its judge and simulator, authentication fields (real set), and its tasks."""

    name: str
    description: str
    specs: list[ToolSpec]
    function_docs: dict[str, str]
    nl_documentation: str
    authentication: dict[str, str]
    tasks: list[ToolAlpacaTask]
    repairs: list[str] = field(default_factory=list)

    def spec(self, function: str) -> ToolSpec | None:
        return next((s for s in self.specs if s.name == function), None)


def is_placeholder(value: Any) -> bool:
    """True for a golden value that stands for something the instruction does not fix (`"${…}"`)."""
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def _mark_placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mark_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_placeholders(v) for v in value]
    if isinstance(value, str) and (m := _QUOTED_BRACES.match(value.strip())):
        return "${" + m.group(1).strip() + "}"
    return value


def parse_golden_arguments(text: str) -> tuple[dict[str, Any], list[str]]:
    """A golden `Action_Input` → (arguments, repairs). Raises `ValueError` when no known repair makes it JSON."""
    repairs: list[str] = []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        fixed = text
        if _DUPLICATED_KEY.search(fixed):
            fixed = _DUPLICATED_KEY.sub(r'"\1":', fixed)
            repairs.append("duplicated key written twice in a row")
        if _PLACEHOLDER.search(fixed):
            fixed = _PLACEHOLDER.sub(lambda m: json.dumps("${" + m.group(1).strip() + "}"), fixed)
            repairs.append("unquoted ${…} placeholder quoted")
        try:
            value = json.loads(fixed)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Action_Input is not JSON even after repairs ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"Action_Input is not a JSON object: {text!r}")
    return _mark_placeholders(value), repairs


def _hoist_nested_paths(doc: dict[str, Any]) -> list[str]:
    """Path items written inside another path item (`"/a": {"get": …, "/b": {…}}`) moved up to `paths`."""
    moved: list[str] = []
    paths = doc.get("paths") or {}
    for path in list(paths):
        item = paths[path]
        if not isinstance(item, dict):
            continue
        for key in [k for k in item if k.startswith("/")]:
            paths.setdefault(key, item.pop(key))
            moved.append(key)
    return moved


def _projection_name(path: str, method: str) -> str:
    """ToolAlpaca's own name for an operation without an `operationId`: `charts/changes` GET → `charts_changes_get`."""
    return re.sub(r"[{}]", "", path).strip("/").replace("/", "_") + "_" + method.lower()


Importer = Callable[[dict[str, Any]], list[ToolSpec]]


def _tool_specs(raw: dict[str, Any], importer: Importer) -> tuple[list[ToolSpec], list[str]]:
    try:
        doc = json.loads(raw["Documentation"]) if isinstance(raw["Documentation"], str) else raw["Documentation"]
    except json.JSONDecodeError as exc:
        raise ValueError(f"Documentation is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(doc, dict) or "paths" not in doc:
        raise ValueError("Documentation is not an OpenAPI document (no `paths`)")
    doc = copy.deepcopy(doc)
    repairs = [f"path {p} was nested inside another path item; moved up" for p in _hoist_nested_paths(doc)]
    projection = raw["Function_Projection"]
    if not isinstance(projection, dict):
        raise ValueError("Function_Projection is not a mapping of function → [path, method]")
    by_route: dict[tuple[str, str], str] = {}
    for fn, route in projection.items():
        if not (isinstance(route, list) and len(route) == 2):
            raise ValueError(f"Function_Projection[{fn!r}] is not [path, method]: {route!r}")
        by_route[(str(route[0]), str(route[1]).upper())] = str(fn)
    specs: list[ToolSpec] = []
    for spec in importer(doc):
        route = (str(spec.meta["path"]), str(spec.meta["method"]))
        name = by_route.pop(route, None)
        if name is None:
            name = _projection_name(*route)
            repairs.append(f"{route[1]} {route[0]} is not in Function_Projection; named {name}")
        specs.append(spec.model_copy(update={"name": name}))
    if by_route:
        missing = ", ".join(f"{n} ({m} {p})" for (p, m), n in by_route.items())
        raise ValueError(f"Function_Projection names operations the document lacks: {missing}")
    return specs, repairs


def _tasks(raw: dict[str, Any], names: set[str], path: Path, where: str) -> list[ToolAlpacaTask]:
    instructions, answers = raw["Instructions"], raw["Golden_Answers"]
    if not isinstance(instructions, list) or not isinstance(answers, list) or len(instructions) != len(answers):
        raise DataError(path, f"{where}: Instructions and Golden_Answers must be lists of the same length")
    tasks: list[ToolAlpacaTask] = []
    for i, (instruction, answer) in enumerate(zip(instructions, answers, strict=True)):
        at = f"{where}, instruction {i}"
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(path, f"{at}: empty or non-text instruction")
        if not isinstance(answer, list) or not answer:
            raise DataError(path, f"{at}: golden answer is not a non-empty list of steps")
        steps: list[GoldenStep] = []
        repairs: list[str] = []
        for j, step in enumerate(answer):
            if not isinstance(step, dict) or "Action" not in step or "Action_Input" not in step:
                raise DataError(path, f"{at}, step {j}: a step needs Action and Action_Input")
            action, optional = str(step["Action"]), False
            if action.startswith(OPTIONAL_PREFIX):
                action, optional = action[len(OPTIONAL_PREFIX) :].strip(), True
            if action not in names and action != ASK_USER:
                known = ", ".join(sorted(names))
                raise DataError(path, f"{at}, step {j}: unknown function {action!r} (the tool has: {known})")
            try:
                arguments, fixed = parse_golden_arguments(str(step["Action_Input"]))
            except ValueError as exc:
                raise DataError(path, f"{at}, step {j}: {exc}") from None
            repairs += [f"step {j}: {r}" for r in fixed]
            steps.append(GoldenStep(action, arguments, optional))
        tasks.append(ToolAlpacaTask(str(raw["Name"]), i, instruction.strip(), steps, repairs))
    return tasks


def load_toolalpaca(path: str | Path, importer: Importer) -> list[ToolAlpacaTool]:
    """Every tool of a ToolAlpaca evaluation file with its specs (`importer`: an OpenAPI document → ToolSpecs,
    normally `umi.tools.specs.from_openapi`) and tasks (see the module docstring)."""
    p = Path(path)
    data = read_json(p)
    if not isinstance(data, list) or not data:
        raise DataError(p, "expected a non-empty JSON list of ToolAlpaca tools")
    tools: list[ToolAlpacaTool] = []
    for t, raw in enumerate(data):
        name = raw.get("Name") if isinstance(raw, dict) else None
        where = f"tool {t} ({name})" if name else f"tool {t}"
        if not isinstance(raw, dict):
            raise DataError(p, f"{where}: not a JSON object")
        missing = [k for k in _REQUIRED_FIELDS if k not in raw]
        if missing:
            raise DataError(p, f"{where}: missing field(s) {', '.join(missing)}")
        try:
            specs, repairs = _tool_specs(raw, importer)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(p, f"{where}: {exc}") from None
        docs = raw.get("Function_Description") or {}
        tools.append(
            ToolAlpacaTool(
                name=str(name),
                description=str(raw.get("Description", "")),
                specs=specs,
                function_docs={s.name: str(docs.get(s.name) or s.description) for s in specs},
                nl_documentation=str(raw.get("NLDocumentation", "")),
                authentication={str(k): str(v) for k, v in (raw.get("Authentication") or {}).items()},
                tasks=_tasks(raw, {s.name for s in specs}, p, where),
                repairs=repairs,
            )
        )
    return tools


def all_tasks(tools: list[ToolAlpacaTool]) -> list[ToolAlpacaTask]:
    return [task for tool in tools for task in tool.tasks]
