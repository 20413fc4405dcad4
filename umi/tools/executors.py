"""Executors: Python functions, HTTP APIs, the ToolBench / StableToolBench API-server protocol, and fault
injection for testing how the planner copes with broken tools. None of them raises for a bad call."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from umi.format.naming import standardize
from umi.schema import ToolSpec
from umi.tools.base import Observation, ToolCall, validate_call


def _stringify(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


class PythonExecutor:
    """Calls plain Python functions by exact name with the JSON arguments as keyword arguments."""

    def __init__(
        self,
        functions: Mapping[str, Callable[..., Any]] | Sequence[Callable[..., Any]],
        specs: Sequence[ToolSpec] | None = None,
    ) -> None:
        if not isinstance(functions, Mapping):
            functions = {f.__name__: f for f in functions}
        self.functions = dict(functions)
        known = list(specs) if specs is not None else [f.spec for f in self.functions.values() if hasattr(f, "spec")]
        self.specs = {s.name: s for s in known} or {n: ToolSpec(name=n) for n in self.functions}

    def execute(self, call: ToolCall) -> Observation:
        problem = validate_call(call, self.specs)
        if problem:
            return Observation(error=problem)
        start = time.perf_counter()
        try:
            result = self.functions[call.name](**call.arguments)
        except TypeError as exc:
            return Observation(error=f"bad arguments for {call.name}: {exc}", seconds=time.perf_counter() - start)
        except Exception as exc:  # a tool's own failure is an observation, not a crash
            return Observation(
                error=f"{call.name} failed: {type(exc).__name__}: {exc}", seconds=time.perf_counter() - start
            )
        return Observation(response=_stringify(result), seconds=time.perf_counter() - start)


class HTTPExecutor:
    """Calls HTTP APIs described by ToolSpecs whose `meta` has `method`, `path` and `server` (OpenAPI import).

    Auth headers come from environment variables (`auth_env={"X-Api-Key": "MY_KEY_VAR"}`), never from config text;
    so do auth parameters (`auth_params_env={"appid": "WOLFRAMALPHA_APPID"}`, ToolAlpaca's `Authentication`
    fields): set on every call to an API that has that parameter, over whatever the model wrote there.
    """

    def __init__(
        self,
        specs: Sequence[ToolSpec],
        *,
        timeout: float = 30.0,
        retries: int = 2,
        auth_env: Mapping[str, str] | None = None,
        auth_params_env: Mapping[str, str] | None = None,
        transport: Any = None,
    ) -> None:
        import httpx

        self.specs = {s.name: s for s in specs}
        self.retries = retries
        self.auth_params = {p: os.environ[var] for p, var in (auth_params_env or {}).items() if var in os.environ}
        headers = {h: os.environ.get(var, "") for h, var in (auth_env or {}).items()}
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def execute(self, call: ToolCall) -> Observation:
        import httpx

        spec = self.specs.get(call.name)
        if spec is not None and self.auth_params:
            auth = {p: v for p, v in self.auth_params.items() if spec.param(p) is not None}
            call = ToolCall(call.name, {**call.arguments, **auth})
        problem = validate_call(call, self.specs)
        if problem:
            return Observation(error=problem)
        meta = self.specs[call.name].meta
        path = str(meta.get("path", ""))
        method = str(meta.get("method", "GET"))
        # Where each argument goes: OpenAPI's `in` when known; otherwise path slots, then query for GET, body else.
        where: dict[str, str] = dict(meta.get("in") or {})
        query: dict[str, Any] = {}
        body: dict[str, Any] = {}
        headers: dict[str, str] = {}
        for key, value in call.arguments.items():
            slot = where.get(key) or ("path" if "{" + key + "}" in path else "query" if method == "GET" else "body")
            if slot == "path":
                path = path.replace("{" + key + "}", quote(str(value), safe=""))
            elif slot == "header":
                headers[key] = str(value)
            elif slot == "body":
                body[key] = value
            else:
                query[key] = value
        url = str(meta.get("server", "")).rstrip("/") + path
        start = time.perf_counter()
        last = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self._client.request(
                    method, url, params=query or None, json=body or None, headers=headers or None
                )
                if resp.status_code in (429, 500, 502, 503, 504) and attempt < self.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                if resp.status_code >= 400:
                    return Observation(
                        error=f"HTTP {resp.status_code}: {resp.text[:200]}", seconds=time.perf_counter() - start
                    )
                return Observation(response=resp.text, seconds=time.perf_counter() - start)
            except httpx.TimeoutException:
                last = f"timeout calling {url}"
            except httpx.HTTPError as exc:
                last = f"request to {url} failed: {exc}"
        return Observation(error=last, seconds=time.perf_counter() - start)


class ToolBenchServerExecutor:
    """The ToolBench / StableToolBench API-server protocol: POST `{category, tool_name, api_name, tool_input,
    strip, toolbench_key}` → `{error, response}`. ToolSpec.meta carries the category, tool and API names
    (`from_api_list` fills them). The key is read from an environment variable."""

    def __init__(
        self,
        url: str,
        specs: Sequence[ToolSpec],
        *,
        key_env: str = "TOOLBENCH_KEY",
        timeout: float = 30.0,
        transport: Any = None,
    ) -> None:
        import httpx

        self.url = url
        self.specs = {s.name: s for s in specs}
        self.key = os.environ.get(key_env, "")
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def execute(self, call: ToolCall) -> Observation:
        import httpx

        problem = validate_call(call, self.specs)
        if problem:
            return Observation(error=problem)
        meta = self.specs[call.name].meta
        payload = {
            "category": meta.get("category", ""),
            # ToolBench's client sends the standardized tool name and the API's original name.
            "tool_name": standardize(str(meta.get("tool_name", ""))),
            "api_name": meta.get("api_name", ""),
            "tool_input": json.dumps(call.arguments),
            "strip": "truncate",
            "toolbench_key": self.key,
        }
        start = time.perf_counter()
        try:
            resp = self._client.post(self.url, json=payload, headers={"toolbench_key": self.key})
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Observation(error=f"tool server {self.url} failed: {exc}", seconds=time.perf_counter() - start)
        return Observation(
            response=_stringify(data.get("response", "")),
            error=str(data.get("error") or ""),
            seconds=time.perf_counter() - start,
        )


class FaultyExecutor:
    """Wraps an executor and breaks some APIs: they return an error (a removed or broken tool), for demos and
    tests of the planner's recovery."""

    def __init__(self, inner: Any, broken: Mapping[str, str]) -> None:
        self.inner = inner
        self.broken = dict(broken)

    def execute(self, call: ToolCall) -> Observation:
        if call.name in self.broken:
            return Observation(error=self.broken[call.name])
        result: Observation = self.inner.execute(call)
        return result
