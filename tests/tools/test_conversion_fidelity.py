"""Converted tools must render the tool line a ToolBench-trained model saw, and every source's details must survive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import httpx

from umi.format import to_tool_doc
from umi.format.naming import api_function_name
from umi.schema import ToolSpec
from umi.tools import HTTPExecutor, ToolBenchServerExecutor, ToolCall, from_api_list_item, from_openapi, tool


def _alpha_umi_docs(path: Path) -> dict[str, dict]:
    docs: dict[str, dict] = {}
    for row in json.loads(path.read_text()):
        for t in row.get("tools", []):
            t = json.loads(t) if isinstance(t, str) else t
            if isinstance(t, dict) and "Name" in t:
                docs[t["Name"]] = t
    return docs


def test_api_list_parameters_match_alpha_umi_tool_lines(shared_data: Path, ood_path: Path) -> None:
    """Parameter names are standardized with keyword renames (`id` → `is_id`, `colisId` → `colisid`)."""
    docs = _alpha_umi_docs(ood_path)
    compared = 0
    for f in sorted((shared_data / "stabletoolbench/solvable_queries/test_instruction").glob("*.json")):
        for q in json.loads(f.read_text()):
            for item in q["api_list"]:
                ref = docs.get(api_function_name(item["api_name"], item["tool_name"]))
                if ref is None or not ref["input"]:  # the released test docs dropped many inputs
                    continue
                mine = to_tool_doc(from_api_list_item(item))
                assert mine.input == ref["input"], (mine.Name, mine.input, ref["input"])
                assert len(mine.function) <= 256 and mine.function.startswith(ref["function"][:60])
                compared += 1
    assert compared > 500


def test_api_list_keyword_parameter_is_renamed() -> None:
    spec = from_api_list_item(
        {
            "category_name": "Commerce",
            "tool_name": "Orderful",
            "api_name": "Transactions",
            "api_description": "x" * 400,
            "required_parameters": [{"name": "id", "type": "STRING", "description": "Transaction ID"}],
            "optional_parameters": [{"name": "pageSize", "type": "ARRAY", "description": ""}],
        }
    )
    assert spec.name == "transactions_for_orderful"
    assert [(p.name, p.type, p.required) for p in spec.parameters] == [
        ("is_id", "string", True),
        ("pagesize", "string", False),  # ToolBench maps anything but NUMBER / BOOLEAN to string
    ]
    assert spec.meta["param_names"] == {"is_id": "id", "pagesize": "pageSize"}
    assert len(spec.description) == 256


def test_openapi_follows_local_refs() -> None:
    doc = {
        "openapi": "3.0.0",
        "servers": [{"url": "https://api.example.com/v1"}],
        "components": {
            "parameters": {"Lang": {"name": "lang", "in": "query", "schema": {"$ref": "#/components/schemas/L"}}},
            "schemas": {
                "L": {"type": "string", "enum": ["en", "fr"]},
                "Body": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
            },
        },
        "paths": {
            "/items/{item_id}": {
                "post": {
                    "operationId": "updateItem",
                    "summary": "Update an item.",
                    "parameters": [
                        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                        {"$ref": "#/components/parameters/Lang"},
                    ],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Body"}}}},
                }
            }
        },
    }
    (spec,) = from_openapi(json.dumps(doc))
    assert spec.name == "updateItem" and spec.description == "Update an item."
    assert [(p.name, p.type, p.required, p.enum) for p in spec.parameters] == [
        ("item_id", "integer", True, None),
        ("lang", "string", False, ["en", "fr"]),
        ("text", "string", True, None),
    ]
    assert spec.meta["in"] == {"item_id": "path", "lang": "query", "text": "body"}

    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(url=str(request.url), body=json.loads(request.content), method=request.method)
        return httpx.Response(200, text="ok")

    ex = HTTPExecutor([spec], transport=httpx.MockTransport(handler))
    assert ex.execute(ToolCall("updateItem", {"item_id": 7, "lang": "fr", "text": "hi"})).response == "ok"
    assert seen == {"url": "https://api.example.com/v1/items/7?lang=fr", "body": {"text": "hi"}, "method": "POST"}


def test_http_auth_header_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("UMI_TEST_API_KEY", "s3cret")
    headers: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        headers.update(request.headers)
        return httpx.Response(200, text="ok")

    spec = ToolSpec(name="f", meta={"method": "GET", "path": "/f", "server": "http://api.test"})
    ex = HTTPExecutor([spec], auth_env={"X-Api-Key": "UMI_TEST_API_KEY"}, transport=httpx.MockTransport(handler))
    assert ex.execute(ToolCall("f", {})).ok and headers["x-api-key"] == "s3cret"


def test_toolbench_payload_uses_standardized_tool_name() -> None:
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        return httpx.Response(200, json={"error": "API not working error...", "response": ""})

    spec = ToolSpec(
        name="video_for_simple_youtube_search", meta={"tool_name": "Simple YouTube Search", "api_name": "Video"}
    )
    obs = ToolBenchServerExecutor("http://s.test/virtual", [spec], transport=httpx.MockTransport(handler)).execute(
        ToolCall(spec.name, {})
    )
    assert seen["tool_name"] == "simple_youtube_search" and seen["api_name"] == "Video"
    assert obs.error == "API not working error..."


def test_tool_decorator_literal_and_optional() -> None:
    @tool
    def convert(amount: float, unit: Literal["c", "f"] = "c", note: str | None = None, *rest: str) -> str:
        """Convert a temperature."""
        return ""

    spec: ToolSpec = convert.spec  # type: ignore[attr-defined]
    assert [(p.name, p.type, p.required, p.enum) for p in spec.parameters] == [
        ("amount", "number", True, None),
        ("unit", "string", False, ["c", "f"]),
        ("note", "string", False, None),
    ]
