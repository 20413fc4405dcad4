"""A replay cache of recorded tool responses, keyed by API name and normalised arguments.

Seeded from recorded ToolBench observations (`derived_ood_observation_cache.json`: 795 recorded calls), so
agents run offline against real responses. A miss is either an error observation or handed to a simulator — a
plain callable (API spec, arguments, examples) → response text — so this package never imports a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from umi.schema import ToolSpec
from umi.tools.base import Observation, ToolCall, validate_call

Simulator = Callable[[ToolSpec, dict[str, Any], list[tuple[dict[str, Any], str]]], str]


def normalise_arguments(arguments: dict[str, Any] | str) -> str:
    """A stable key for arguments: sorted-key JSON, or the stripped raw text when it is not a JSON object."""
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError:
            return arguments.strip()
        if not isinstance(parsed, dict):
            return arguments.strip()
        arguments = parsed
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False)


class ReplayCache:
    """`(api name, normalised arguments) → response text`, with a miss policy."""

    def __init__(
        self,
        specs: Sequence[ToolSpec] | None = None,
        *,
        miss: Literal["error", "simulate"] = "error",
        simulator: Simulator | None = None,
    ) -> None:
        self.entries: dict[str, dict[str, str]] = {}
        self.specs = {s.name: s for s in specs or []}
        self.miss = miss
        self.simulator = simulator
        self.hits = 0
        self.misses = 0

    def add(self, api: str, arguments: dict[str, Any] | str, response: str) -> None:
        self.entries.setdefault(api, {})[normalise_arguments(arguments)] = response

    def lookup(self, api: str, arguments: dict[str, Any] | str) -> str | None:
        return self.entries.get(api, {}).get(normalise_arguments(arguments))

    def examples(self, api: str, limit: int = 5) -> list[tuple[dict[str, Any], str]]:
        out = []
        for key, value in list(self.entries.get(api, {}).items())[:limit]:
            try:
                out.append((json.loads(key), value))
            except json.JSONDecodeError:
                continue
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())

    @classmethod
    def from_recorded(cls, path: str | Path, **kwargs: Any) -> ReplayCache:
        """Load a recorded cache: `{"cache": {api: {raw args: observation}}}` (or that mapping itself)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        cache = cls(**kwargs)
        for api, calls in (data.get("cache", data)).items():
            if isinstance(calls, dict):
                for args, response in calls.items():
                    cache.add(api, args, response if isinstance(response, str) else json.dumps(response))
        return cache

    def execute(self, call: ToolCall) -> Observation:
        if self.specs:
            problem = validate_call(call, self.specs)
            if problem:
                return Observation(error=problem)
        hit = self.lookup(call.name, call.arguments)
        if hit is not None:
            self.hits += 1
            return Observation(response=hit)
        self.misses += 1
        if self.miss == "simulate" and self.simulator is not None and call.name in self.specs:
            try:
                text = self.simulator(self.specs[call.name], call.arguments, self.examples(call.name))
            except Exception as exc:  # a simulator failure is an observation too
                return Observation(error=f"simulator failed for {call.name}: {exc}")
            self.add(call.name, call.arguments, text)
            return Observation(response=text)
        return Observation(error=f"no recorded response for {call.name} with these arguments")
