"""Tool schemas (`ToolSpec`) from the four sources umi reads: ToolBench / StableToolBench `api_list` documents,
OpenAI function-calling schemas, OpenAPI documents (ToolAlpaca), and typed Python functions (`@tool`)."""

from __future__ import annotations

import inspect
import json
import re
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from umi.format.naming import api_function_name, change_name, standardize
from umi.schema import Param, ToolSpec

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


#: ToolBench's own type map (`api_json_to_openai_json`): anything else, arrays and objects included, is a string.
_TOOLBENCH_TYPES = {"NUMBER": "integer", "STRING": "string", "BOOLEAN": "boolean"}
#: ToolBench cuts API and parameter descriptions at 256 characters; α-UMi cuts the tool's `function` again.
_DESCRIPTION_CHARS = 256


def _toolbench_type(kind: str) -> str:
    return _TOOLBENCH_TYPES.get(kind.upper(), "string")


def from_api_list_item(item: dict[str, Any]) -> ToolSpec:
    """One `api_list` entry (`category_name, tool_name, api_name, api_description, required_parameters, …`).

    Names, wording and cuts follow ToolBench and α-UMi's preprocessing exactly (`<api>_for_<tool>`, last 64
    characters; parameter names standardized with keyword renames, so `id` is `is_id` and `colisId` is
    `colisid`; descriptions cut at 256), so a ToolBench-trained model sees the tool line it was trained on and
    its arguments validate. `meta["param_names"]` maps each parameter back to its original name.
    """
    tool = str(item["tool_name"])
    api = str(item["api_name"])
    desc = str(item.get("api_description") or "")
    params: list[Param] = []
    originals: dict[str, str] = {}
    for required, key in ((True, "required_parameters"), (False, "optional_parameters")):
        for p in item.get(key) or []:
            enum = p.get("enum") if isinstance(p.get("enum"), list) else None
            name = change_name(standardize(str(p["name"])))
            originals[name] = str(p["name"])
            params.append(
                Param(
                    name=name,
                    type=_toolbench_type(str(p.get("type", "STRING"))),
                    description=str(p.get("description") or "")[:_DESCRIPTION_CHARS],
                    required=required,
                    enum=enum,
                    default=p.get("default"),
                )
            )
    return ToolSpec(
        name=api_function_name(api, tool),
        description=(
            f'This is the subfunction for tool "{standardize(tool)}", you can use this tool.'
            f'The description of this function is: "{desc[:_DESCRIPTION_CHARS]}"'
        )[:_DESCRIPTION_CHARS],
        parameters=params,
        meta={
            "category": item.get("category_name", ""),
            "tool_name": tool,
            "api_name": api,
            "param_names": originals,
            "template_response": item.get("template_response"),
        },
    )


def from_api_list(items: Iterable[dict[str, Any]]) -> list[ToolSpec]:
    return [from_api_list_item(i) for i in items]


def from_openai_function(fn: dict[str, Any]) -> ToolSpec:
    """An OpenAI function schema (`{"name", "description", "parameters": JSON schema}`), or a `{"type":
    "function", "function": {...}}` tool entry."""
    if fn.get("type") == "function" and "function" in fn:
        fn = fn["function"]
    schema = fn.get("parameters") or {}
    required = set(schema.get("required") or [])
    params = [
        Param(
            name=name,
            type=str(spec.get("type", "string")),
            description=str(spec.get("description", "")),
            required=name in required,
            enum=spec.get("enum"),
            default=spec.get("default", spec.get("example_value")),
        )
        for name, spec in (schema.get("properties") or {}).items()
    ]
    return ToolSpec(name=str(fn["name"]), description=str(fn.get("description", "")), parameters=params)


def _deref(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow a local `$ref` (`#/components/...`); a missing or cyclic reference becomes an empty schema."""
    while isinstance(node, dict) and "$ref" in node and depth < 16:
        target: Any = doc
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, depth = target, depth + 1
    return node if isinstance(node, dict) else {}


def _openapi_operation(doc: dict[str, Any], op: dict[str, Any]) -> tuple[list[Param], dict[str, str]]:
    """An operation's parameters (query, path, header, then JSON-body properties) and where each one goes."""
    params: list[Param] = []
    where: dict[str, str] = {}
    for raw in op.get("parameters") or []:
        p = _deref(doc, raw)
        if "name" not in p:
            continue
        schema = _deref(doc, p.get("schema") or {})
        params.append(
            Param(
                name=str(p["name"]),
                type=str(schema.get("type", "string")),
                description=str(p.get("description", "")),
                required=bool(p.get("required")),
                enum=schema.get("enum"),
                default=schema.get("default"),
            )
        )
        where[str(p["name"])] = str(p.get("in", "query"))
    content = (_deref(doc, op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    body = _deref(doc, content.get("schema") or {})
    for pname, raw_schema in (body.get("properties") or {}).items():
        pschema = _deref(doc, raw_schema)
        params.append(
            Param(
                name=pname,
                type=str(pschema.get("type", "string")),
                description=str(pschema.get("description", "")),
                required=pname in (body.get("required") or []),
                enum=pschema.get("enum"),
            )
        )
        where[pname] = "body"
    return params, where


def from_openapi(document: str | dict[str, Any], *, server: str | None = None) -> list[ToolSpec]:
    """Every operation of an OpenAPI 3 document (ToolAlpaca's `Documentation`) as a ToolSpec.

    The operation id (or `<method>_<path>`) names the tool; query, path, header and JSON-body properties become
    parameters (local `$ref`s followed); `meta` keeps method, path, server and where each parameter goes, so
    the HTTP executor can call it.
    """
    doc = json.loads(document) if isinstance(document, str) else document
    base = server or ((doc.get("servers") or [{}])[0].get("url", ""))
    out: list[ToolSpec] = []
    for path, ops in (doc.get("paths") or {}).items():
        for method, op in (ops or {}).items():
            if method.lower() not in ("get", "post", "put", "delete", "patch") or not isinstance(op, dict):
                continue
            name = op.get("operationId") or re.sub(r"\W+", "_", f"{method}_{path}").strip("_")
            params, where = _openapi_operation(doc, op)
            out.append(
                ToolSpec(
                    name=str(name),
                    description=str(op.get("description") or op.get("summary") or ""),
                    parameters=params,
                    meta={"method": method.upper(), "path": path, "server": base, "in": where},
                )
            )
    return out


def _doc_params(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style `Args:` section."""
    out: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in ("args:", "arguments:", "parameters:"):
            in_args = True
            continue
        if in_args:
            m = re.match(r"(\w+)\s*(\([^)]*\))?:\s*(.*)", stripped)
            if m:
                out[m.group(1)] = m.group(3)
            elif not stripped or stripped.endswith(":"):
                in_args = False
    return out


def _json_type(hint: Any) -> tuple[str, list[Any] | None]:
    """The JSON type of an annotation, and its allowed values for a `Literal` (`Optional[X]` is X)."""
    origin = get_origin(hint)
    if origin is Literal:
        values = list(get_args(hint))
        return _JSON_TYPES.get(type(values[0]), "string") if values else "string", values
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _json_type(inner[0]) if len(inner) == 1 else ("string", None)
    return _JSON_TYPES.get(origin or hint, "string"), None


def tool(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: read a typed Python function's signature and docstring into `fn.spec` (a ToolSpec).

    The first docstring paragraph is the description; a Google-style `Args:` section describes the
    parameters; a parameter without a default is required; `Literal[...]` becomes an enum. Writing a tool costs
    one function, and `PythonExecutor([fn, ...])` runs it.
    """
    hints = get_type_hints(fn)
    doc = inspect.getdoc(fn) or ""
    arg_docs = _doc_params(doc)
    params = []
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        kind, enum = _json_type(hints.get(name, str))
        params.append(
            Param(
                name=name,
                type=kind,
                description=arg_docs.get(name, ""),
                required=p.default is inspect.Parameter.empty,
                enum=enum,
                default=None if p.default is inspect.Parameter.empty else p.default,
            )
        )
    summary = doc.split("\n\n", 1)[0].strip()
    fn.spec = ToolSpec(name=fn.__name__, description=summary, parameters=params)  # type: ignore[attr-defined]
    return fn


def load_tools(path: str | Path) -> list[ToolSpec]:
    """A JSON file of tools in any supported form: ToolSpecs, an `api_list` (or a query entry holding one), OpenAI
    functions, or an OpenAPI document. The form is detected from the first entry's keys."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and "openapi" in data:
        return from_openapi(data)
    if isinstance(data, dict) and "api_list" in data:
        data = data["api_list"]
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty JSON list of tools (ToolSpec, api_list or OpenAI functions)")
    first = data[0]
    if "api_name" in first:
        return from_api_list(data)
    if "parameters" in first and isinstance(first.get("parameters"), dict) or first.get("type") == "function":
        return [from_openai_function(f) for f in data]
    return [ToolSpec.model_validate(t) for t in data]
