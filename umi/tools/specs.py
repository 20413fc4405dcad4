"""Tool schemas (`ToolSpec`) from the four sources umi reads: ToolBench / StableToolBench `api_list` documents,
OpenAI function-calling schemas, OpenAPI documents (ToolAlpaca), and typed Python functions (`@tool`)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, get_type_hints

from umi.format.naming import api_function_name, standardize
from umi.schema import Param, ToolSpec

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def _toolbench_type(kind: str) -> str:
    kind = kind.upper()
    return {"NUMBER": "integer", "BOOLEAN": "boolean", "ARRAY": "array", "OBJECT": "object"}.get(kind, "string")


def from_api_list_item(item: dict[str, Any]) -> ToolSpec:
    """One `api_list` entry (`category_name, tool_name, api_name, api_description, required_parameters, …`).

    The name follows ToolBench (`<api>_for_<tool>`, last 64 characters) and the description its wording, so a
    ToolBench-trained model sees what it was trained on.
    """
    tool = str(item["tool_name"])
    api = str(item["api_name"])
    desc = str(item.get("api_description") or "")
    params: list[Param] = []
    for required, key in ((True, "required_parameters"), (False, "optional_parameters")):
        for p in item.get(key) or []:
            enum = p.get("enum") if isinstance(p.get("enum"), list) else None
            params.append(
                Param(
                    name=str(p["name"]),
                    type=_toolbench_type(str(p.get("type", "STRING"))),
                    description=str(p.get("description") or ""),
                    required=required,
                    enum=enum,
                    default=p.get("default"),
                )
            )
    return ToolSpec(
        name=api_function_name(api, tool),
        description=(
            f'This is the subfunction for tool "{standardize(tool)}", you can use this tool.'
            f'The description of this function is: "{desc[:256]}"'
        ),
        parameters=params,
        meta={
            "category": item.get("category_name", ""),
            "tool_name": tool,
            "api_name": api,
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


def from_openapi(document: str | dict[str, Any], *, server: str | None = None) -> list[ToolSpec]:
    """Every operation of an OpenAPI 3 document (ToolAlpaca's `Documentation`) as a ToolSpec.

    The operation id (or `<method>_<path>`) names the tool; query, path and JSON-body properties become
    parameters; `meta` keeps method, path and server so the HTTP executor can call it.
    """
    doc = json.loads(document) if isinstance(document, str) else document
    base = server or ((doc.get("servers") or [{}])[0].get("url", ""))
    out: list[ToolSpec] = []
    for path, ops in (doc.get("paths") or {}).items():
        for method, op in ops.items():
            if method.lower() not in ("get", "post", "put", "delete", "patch") or not isinstance(op, dict):
                continue
            name = op.get("operationId") or re.sub(r"\W+", "_", f"{method}_{path}").strip("_")
            params: list[Param] = []
            for p in op.get("parameters") or []:
                schema = p.get("schema") or {}
                params.append(
                    Param(
                        name=p["name"],
                        type=str(schema.get("type", "string")),
                        description=str(p.get("description", "")),
                        required=bool(p.get("required")),
                        enum=schema.get("enum"),
                        default=schema.get("default"),
                    )
                )
            body = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get(
                "schema"
            ) or {}
            for pname, pschema in (body.get("properties") or {}).items():
                params.append(
                    Param(
                        name=pname,
                        type=str(pschema.get("type", "string")),
                        description=str(pschema.get("description", "")),
                        required=pname in (body.get("required") or []),
                    )
                )
            desc = op.get("description") or op.get("summary") or ""
            out.append(
                ToolSpec(
                    name=name,
                    description=desc,
                    parameters=params,
                    meta={"method": method.upper(), "path": path, "server": base},
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


def tool(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: read a typed Python function's signature and docstring into `fn.spec` (a ToolSpec)."""
    hints = get_type_hints(fn)
    doc = inspect.getdoc(fn) or ""
    arg_docs = _doc_params(doc)
    params = []
    for name, p in inspect.signature(fn).parameters.items():
        kind = hints.get(name, str)
        origin = getattr(kind, "__origin__", kind)
        params.append(
            Param(
                name=name,
                type=_JSON_TYPES.get(origin, "string"),
                description=arg_docs.get(name, ""),
                required=p.default is inspect.Parameter.empty,
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
