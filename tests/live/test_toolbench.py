"""StableToolBench queries end to end through the α-UMi agent and the tool server on loopback, with SoPR from a
scripted judge (simulated APIs)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import uvicorn

from umi.agent import MultiLLMAgent
from umi.evaluate.live.toolbench import LABEL, load_queries, parse_verdict, run_toolbench
from umi.format import CALLER_CUE, caller_text, planner_text
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles
from umi.serve.store import CacheStore
from umi.serve.tool_server import create_app
from umi.tools.specs import from_api_list


def test_parse_verdict() -> None:
    assert parse_verdict("Unsolved.") == "Unsolved"
    assert parse_verdict(" Solved, clearly") == "Solved"
    assert parse_verdict("hmm") == "Unsure"


def test_queries_against_the_server_and_sopr(tmp_path: Path, shared_data: Path) -> None:
    queries = load_queries(shared_data / "stabletoolbench/solvable_queries/test_instruction", "G1_instruction")[:2]
    first = from_api_list(queries[0]["api_list"])[0]
    store = CacheStore(None)
    args = {p: "x" for p in first.required}
    store.put(first.name, args, {"error": "", "response": "cached facts"})
    sims: list[str] = []

    def simulator(prompt: str) -> str:
        sims.append(prompt)
        return json.dumps({"error": "", "response": "simulated facts"})

    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    addr = port.getsockname()[1]
    port.close()
    server = uvicorn.Server(uvicorn.Config(create_app(store, simulator=simulator), port=addr, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    observed: list[str] = []

    def make(specs, executor, trace_path=None):  # type: ignore[no-untyped-def]
        answered = {"n": 0}

        def planner(prompt: str, adapter: str | None) -> str:
            if queries[1]["query"] in prompt:
                return planner_text("Nothing fits.", "give up")
            if answered["n"]:
                return planner_text("I have it.", "conclusion")
            answered["n"] = 1
            return planner_text("Look it up.", "caller")

        def caller(prompt: str, adapter: str | None) -> str:
            assert prompt.endswith(CALLER_CUE)
            return caller_text(specs[0].name, json.dumps(args))

        def summarizer(prompt: str, adapter: str | None) -> str:
            observed.append(prompt)
            return "Here are the facts you asked for."

        roles = Roles(
            planner=RoleBinding(ScriptedEngine(planner)),
            caller=RoleBinding(ScriptedEngine(caller)),
            summarizer=RoleBinding(ScriptedEngine(summarizer)),
        )
        return MultiLLMAgent(roles, specs, executor, max_steps=4)

    try:
        url = f"http://127.0.0.1:{addr}"
        summary = run_toolbench(make, lambda p: "Solved", queries, url, tmp_path, rounds=3)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert summary == {"queries": 2, "rounds": 3, "sopr": 50.0, "std": 0.0, "label": LABEL}
    assert "cached facts" in observed[0]  # the observation came from the server's cache
    results = {r["query_id"]: r for r in (json.loads(p.read_text()) for p in tmp_path.glob("*.json")) if "key" in r}
    assert results[queries[0]["query_id"]]["verdicts"] == ["Solved"] * 3
    assert results[queries[1]["query_id"]]["status"] == "gave_up"
    # resumable: nothing runs and nothing is re-judged
    again = run_toolbench(None, lambda p: "Unsolved", queries, url, tmp_path, rounds=3)  # type: ignore[arg-type]
    assert again == summary
