"""Agent-server fixtures: a scripted α-UMi (three roles answering from the prompt alone, so concurrent requests
can never borrow each other's state), and a real uvicorn server on a loopback port."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def weather_responder(prompt: str, adapter: str | None) -> str:
    """planner: call until an observation is in the history, then conclude; caller: get_weather for the city
    named in the task; summarizer: repeat the last observation with the city. Pure functions of the prompt."""
    city = (re.findall(r"weather in (\w+)", prompt) or ["Nowhere"])[-1]
    if adapter == "planner":
        if "give up" in prompt.split("Next:")[0] and "please give up" in prompt:
            return "This cannot be done.\n Next: give up."
        if "observation: " in prompt:
            return f"I know the weather in {city} now.\n Next: conclusion."
        return f"I should look up the weather in {city}.\n Next: caller."
    if adapter == "caller":
        names = re.findall(r'"Name": "(\w+)"', prompt)
        name = "get_weather" if "get_weather" in names else names[-1]
        return f"Action: {name}\nAction Input: {json.dumps({'city': city})}"
    observed = re.findall(r"observation: (.*?)(?:assistant: |$)", prompt, re.S)
    return f"Answer for {city}: {observed[-1].strip() if observed else 'nothing observed'}"


def scripted_roles(responder: Callable[[str, str | None], str] = weather_responder, latency: float = 0.0) -> Roles:
    engine = ScriptedEngine(responder, latency=latency)
    return Roles(
        planner=RoleBinding(engine, adapter="planner", label="scripted"),
        caller=RoleBinding(engine, adapter="caller", label="scripted"),
        summarizer=RoleBinding(engine, adapter="summarizer", label="scripted"),
        source="scripted",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a real uvicorn server on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def agent_server(tmp_path: Path) -> Callable[..., Any]:
    """`agent_server(roles=None, **create_agent_app kwargs)` → a context manager yielding the base URL."""
    from umi.serve.agent_server import create_agent_app
    from umi.serve.run_store import RunStore

    def start(roles: Roles | None = None, **kwargs: Any) -> Any:
        store = kwargs.pop("store", None) or RunStore(tmp_path / "runs.sqlite")
        return serving(create_agent_app(roles or scripted_roles(), store=store, **kwargs))

    return start


@pytest.fixture
def kit() -> Any:
    """The helpers above as one fixture (test modules import nothing from each other)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        WEATHER_TOOL=WEATHER_TOOL,
        TIME_TOOL=TIME_TOOL,
        scripted_roles=scripted_roles,
        weather_responder=weather_responder,
        serving=serving,
        free_port=free_port,
    )
