"""A StableToolBench-compatible virtual API server: `POST /virtual` with `{category, tool_name, api_name,
tool_input, strip, toolbench_key}` → `{error, response}`.

Lookup order, first hit wins: the response cache (seeded with recorded ToolBench observations); a real upstream
ToolBench-protocol server when a URL and key are configured; a simulator model prompted with the API's document
and up to five cached examples of that API. Good results are written back to the cache when enabled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from umi.format.naming import api_function_name
from umi.models.roles import Roles
from umi.serve.store import CacheStore

Simulator = Callable[[str], str]
PARSE_ERROR = "Tool input parse error...\n"
_BAD_UPSTREAM = (
    "rate limit",
    "time out",
    "timed out",
    "does not exist",
    "404",
    "500",
    "502",
    "503",
    "504",
    "unauthorized",
    "blocked",
    "unsubscribe",
    "401",
    "429",
)


class VirtualRequest(BaseModel):
    category: str = ""
    tool_name: str
    api_name: str
    tool_input: str | dict[str, Any] = "{}"
    strip: str = ""
    toolbench_key: str = ""


def load_tool_docs(folder: str | Path) -> dict[str, dict[str, Any]]:
    """API documents of every StableToolBench query file in `folder`, keyed by ToolBench function name."""
    docs: dict[str, dict[str, Any]] = {}
    for f in sorted(Path(folder).glob("*.json")):
        for query in json.loads(f.read_text(encoding="utf-8")):
            for api in query.get("api_list", []):
                docs.setdefault(api_function_name(api["api_name"], api["tool_name"]), api)
    return docs


def simulator_prompt(
    doc: dict[str, Any] | None, api: str, arguments: dict[str, Any], examples: list[tuple[str, str]]
) -> str:
    """The simulator's instructions, in umi's words: act as the API and answer in its response shape."""
    lines = [
        "You stand in for a web API. Reply to the call below the way the real API would, as one JSON object of the "
        'form {"error": "", "response": <the API response>}. Keep the response realistic and consistent with the '
        "documentation and the recorded examples. If the arguments are invalid for this API, put an explanation in "
        '"error" and leave "response" empty.',
        f"API: {api}",
    ]
    if doc:
        lines.append(
            "Documentation: "
            + json.dumps(
                {
                    k: doc.get(k)
                    for k in (
                        "tool_name",
                        "api_name",
                        "api_description",
                        "required_parameters",
                        "optional_parameters",
                        "template_response",
                    )
                },
                ensure_ascii=False,
            )[:3000]
        )
    for args, response in examples:
        lines.append(f"Example call: {args}\nExample response: {response[:600]}")
    lines.append(f"Call: {json.dumps(arguments, ensure_ascii=False)}\nReply:")
    return "\n".join(lines)


def _parse_simulated(text: str) -> dict[str, str] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or "response" not in value:
        return None
    resp = value["response"]
    return {"error": str(value.get("error") or ""), "response": resp if isinstance(resp, str) else json.dumps(resp)}


def simulate(
    simulator: Simulator,
    doc: dict[str, Any] | None,
    api: str,
    arguments: dict[str, Any],
    examples: list[tuple[str, str]],
    *,
    retries: int = 3,
) -> dict[str, str] | None:
    """Ask the simulator model to answer one call (up to `retries` times until it replies in the expected shape):
    `{"error", "response"}`, or None when it never did. The server and the ToolAlpaca suite share this."""
    prompt = simulator_prompt(doc, api, arguments, examples)
    for _ in range(retries):
        got = _parse_simulated(simulator(prompt))
        if got is not None:
            return got
    return None


class Upstream:
    """A real ToolBench-protocol server (the key comes from the environment, never from config text)."""

    def __init__(self, url: str, key: str, timeout: float = 30.0) -> None:
        import httpx

        self.url = url
        self.key = key
        self._client = httpx.Client(timeout=timeout)

    def call(self, req: VirtualRequest, tool_input: dict[str, Any]) -> dict[str, str] | None:
        import httpx

        payload = {**req.model_dump(), "tool_input": json.dumps(tool_input), "toolbench_key": self.key}
        try:
            data = self._client.post(self.url, json=payload, headers={"toolbench_key": self.key}).json()
        except (httpx.HTTPError, ValueError):
            return None
        error, response = str(data.get("error") or ""), str(data.get("response") or "")
        if error or not response or any(b in response.lower() for b in _BAD_UPSTREAM):
            return None
        return {"error": "", "response": response}


def create_app(
    store: CacheStore,
    *,
    docs: dict[str, dict[str, Any]] | None = None,
    simulator: Simulator | None = None,
    upstream: Upstream | None = None,
    write_back: bool = True,
    retries: int = 3,
) -> FastAPI:
    app = FastAPI(title="umi tool server (StableToolBench protocol)")
    app.state.stats = {"hits": 0, "upstream": 0, "simulated": 0, "errors": 0}
    docs = docs or {}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "cached": len(store), "tools": len(docs), **app.state.stats}

    @app.post("/virtual")
    def virtual(req: VirtualRequest) -> dict[str, str]:
        if isinstance(req.tool_input, dict):
            tool_input: Any = req.tool_input
        else:
            try:
                tool_input = json.loads(req.tool_input) if req.tool_input.strip() else {}
            except json.JSONDecodeError:
                return {"error": PARSE_ERROR, "response": ""}
        if not isinstance(tool_input, dict):
            return {"error": PARSE_ERROR, "response": ""}
        name = api_function_name(req.api_name, req.tool_name)
        hit = store.get(name, tool_input)
        if hit is not None:
            app.state.stats["hits"] += 1
            return hit
        if upstream is not None:
            got = upstream.call(req, tool_input)
            if got is not None:
                app.state.stats["upstream"] += 1
                if write_back:
                    store.put(name, tool_input, got)
                return got
        if simulator is not None:
            got = simulate(simulator, docs.get(name), name, tool_input, store.examples(name), retries=retries)
            if got is not None:
                app.state.stats["simulated"] += 1
                if write_back:
                    store.put(name, tool_input, got)
                return got
            app.state.stats["errors"] += 1
            return {"error": "Failed to generate a simulated response", "response": ""}
        app.state.stats["errors"] += 1
        return {"error": f"No cached response for {name} and no simulator or upstream configured", "response": ""}

    return app


def engine_simulator(roles_source: str | None, max_new_tokens: int = 300, *, constrain: bool = True) -> Simulator:
    """A simulator backed by a configured model (its `backbone`, or `planner`, role)."""
    from umi.models.roles import default_roles, load_roles

    roles = load_roles(roles_source) if roles_source else default_roles()
    return role_simulator(roles, max_new_tokens, constrain=constrain)


def role_simulator(roles: Roles, max_new_tokens: int = 300, *, constrain: bool = True) -> Simulator:
    """A simulator backed by already-bound roles (their `backbone`, or `planner`).

    Constrained (the default, unless the role is bound with `constrain = false`), it can only write the reply
    shape `simulate` parses (`umi.format.grammar.simulator_grammar`); an engine that cannot enforce grammars
    raises instead of answering unconstrained."""
    from umi.format.grammar import simulator_grammar
    from umi.models.base import GenerationParams

    binding = roles.backbone or roles.get("planner")
    grammar = simulator_grammar() if constrain and binding.constrain else None
    params = GenerationParams(max_new_tokens=max_new_tokens, grammar=grammar)
    return lambda prompt: binding.complete([prompt], params)[0].text
