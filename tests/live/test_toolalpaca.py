"""ToolAlpaca suites end to end with scripted roles: the replay cache, the golden replay (100 % process
correctness on the simulated set), a wrong call failing, the process rule's edges, and `toolalpaca-real` against a
loopback stand-in for the APIs."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from umi.agent import MultiLLMAgent
from umi.data.toolalpaca import GoldenStep, ToolAlpacaTask
from umi.evaluate.live.report import write_live_report
from umi.evaluate.live.toolalpaca import (
    NOT_RUN,
    PUBLISHED,
    load_suite,
    not_run,
    published_reference,
    recorded_returns,
    report_rows,
    run_suite,
    select,
    simulated_executor,
    summarize,
)
from umi.evaluate.live.toolalpaca_score import Call, parse_yes_no, process_correct
from umi.format import caller_text, planner_text
from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles
from umi.tools.base import ToolCall


@pytest.fixture(scope="module")
def root(shared_data: Path) -> Path:
    return shared_data / "toolalpaca"


def golden_factory(tasks: list[ToolAlpacaTask], wrong: dict[str, GoldenStep] | None = None):  # type: ignore[no-untyped-def]
    """Scripted roles that replay each task's golden sequence (or, for tasks in `wrong`, one given call), found by
    the instruction in the planner's prompt; then conclude."""
    by_instruction = {t.instruction: t for t in tasks}
    assert len(by_instruction) == len(tasks)

    def make(specs, executor, trace_path=None):  # type: ignore[no-untyped-def]
        state: dict[str, Any] = {"task": None, "done": 0}

        def steps() -> list[GoldenStep]:
            task = state["task"]
            return [wrong[task.key]] if wrong and task.key in wrong else task.golden

        def planner(prompt: str, adapter: str | None) -> str:
            if state["task"] is None:
                state["task"] = max(
                    (t for i, t in by_instruction.items() if i in prompt), key=lambda t: len(t.instruction)
                )
            if state["done"] < len(steps()):
                return planner_text("Call the next function.", "caller")
            return planner_text("I have what I need.", "conclusion")

        def caller(prompt: str, adapter: str | None) -> str:
            step = steps()[state["done"]]
            state["done"] += 1
            return caller_text(step.action, json.dumps(step.arguments))

        roles = Roles(
            planner=RoleBinding(ScriptedEngine(planner)),
            caller=RoleBinding(ScriptedEngine(caller)),
            summarizer=RoleBinding(ScriptedEngine(lambda p, a: "Here is what the API returned.")),
            family="toolalpaca",
        )
        return MultiLLMAgent(roles, specs, executor, max_steps=8, trace_path=trace_path)

    return make


def test_replay_cache_answers_a_recorded_call(root: Path) -> None:
    tools = load_suite(root, "toolalpaca-simulated")
    judged = [root / "evalution_outputs/ToolAlpaca7b.json", root / "evalution_outputs/ToolAlpaca13b.json"]
    recorded, counts = recorded_returns(tools, judged)
    assert counts["recorded"] == 293
    assert counts["recovered"] == sum(len(v) for v in recorded.values())
    assert counts["recorded"] == sum(v for k, v in counts.items() if k != "recorded")
    assert 150 < counts["recovered"] < 293
    axolotl = next(t for t in tools if t.name == "Axolotl")
    cache = simulated_executor(axolotl, recorded["Axolotl"], None)
    obs = cache.execute(ToolCall("getRandomAxolotlImage", {}))
    assert obs.ok and json.loads(obs.response)["url"].endswith("axolotl1.jpg")
    miss = cache.execute(ToolCall("getAxolotlFacts", {"category": "habits", "limit": 97}))
    assert not miss.ok and "no recorded response" in miss.error


def test_golden_replay_scores_100_and_a_wrong_call_fails(tmp_path: Path, root: Path) -> None:
    tools = load_suite(root, "toolalpaca-simulated")
    tasks = [t for tool in tools for t in tool.tasks]
    judged = [root / "evalution_outputs/ToolAlpaca7b.json", root / "evalution_outputs/ToolAlpaca13b.json"]
    recorded, _ = recorded_returns(tools, judged)
    simulated: list[str] = []

    def simulator(prompt: str) -> str:
        simulated.append(prompt)
        return json.dumps({"error": "", "response": {"ok": True}})

    summary = run_suite(
        "toolalpaca-simulated",
        tools,
        tasks,
        golden_factory(tasks),
        lambda p: "Yes",
        tmp_path / "gold",
        recorded=recorded,
        simulator=simulator,
    )
    assert (summary["tasks"], summary["run"], summary["process"], summary["overall"]) == (100, 100, 100.0, 100.0)
    assert summary["label"] == "simulated APIs"
    assert simulated and "getCastAndCrew" in "".join(simulated)  # misses went to the simulator
    # a scripted wrong call: searching instead of reporting an abusive IP, and the wrong facts category
    abuse, facts = tasks[20], tasks[2]
    assert abuse.golden[-1].action == "reportAbusiveIP" and facts.golden[0].arguments["category"] == "habitat"
    wrong = {
        abuse.key: GoldenStep("reportAbusiveIP", {"ip": "1.2.3.4", "categories": ["spam"]}),
        facts.key: GoldenStep("getAxolotlFacts", {"category": "habits", "limit": 3}),
    }
    out = run_suite(
        "toolalpaca-simulated",
        tools,
        [abuse, facts],
        golden_factory(tasks, wrong),
        lambda p: "Yes",
        tmp_path / "wrong",
        recorded=recorded,
        simulator=simulator,
    )
    assert (out["process"], out["overall"]) == (0.0, 0.0)
    result = json.loads((tmp_path / "wrong" / f"{facts.key}.json").read_text())
    assert result["process_reasons"] == ["golden step 0 (getAxolotlFacts) not called with the instruction's values"]
    md, png = write_live_report(
        report_rows(summary, "golden", "scripted"), tmp_path / "report", reference=published_reference()
    )
    text = md.read_text()
    assert "ToolAlpaca-13B (GPT-4 judge) | 68 | 73 | 68" in text and png.stat().st_size > 0


def test_process_rule_edges() -> None:
    golden = [
        GoldenStep("search", {"query": "Death Note", "page": 1}),
        GoldenStep("details", {"id": "${id from search}"}),
    ]
    ins = 'Find "Death Note" and tell me about it.'
    ok = [Call("search", {"query": "death note", "page": 4}, True), Call("details", {"id": 77})]
    assert process_correct(golden, ok, ins).correct  # page is not in the instruction; the id is a placeholder
    retry = [Call("search", {"query": "x"}, False), *ok, Call("details", {"id": 78})]
    assert process_correct(golden, retry, ins).correct
    unrelated = [*ok, Call("deleteAccount", {})]
    verdict = process_correct(golden, unrelated, ins)
    assert not verdict.correct and verdict.reasons == ["unrelated call to deleteAccount"]
    lookup = [*ok, Call("listGenres", {})]
    assert process_correct(golden, lookup, ins, read_only={"listGenres"}.__contains__).correct
    assert not process_correct(golden, ok[:1], ins).correct
    three = [GoldenStep("facts", {"category": "habitat", "limit": 3})]
    assert process_correct(
        three, [Call("facts", {"category": "Habitat", "limit": "3"})], "three facts on habitat"
    ).correct
    assert not process_correct(
        three, [Call("facts", {"category": "habitat", "limit": 5})], "three facts on habitat"
    ).correct
    assert parse_yes_no("No, it does not.") == "No" and parse_yes_no("...") == "Uncertain"
    assert PUBLISHED["ToolAlpaca-7B"] == {"process": 63.0, "response": 68.0, "overall": 60.0}
    nothing = summarize([not_run(ToolAlpacaTask("t", 0, "x", []), "offline")], "toolalpaca-real")
    assert (nothing["run"], nothing["not_run"], nothing["process"], nothing["overall"]) == (0, 1, None, None)


class _StandIn(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _StandIn.seen.append(self.path)
        body = json.dumps({"stand_in": True, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def test_real_suite_against_a_loopback_stand_in(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = load_suite(root, "toolalpaca-real")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there: an unreachable host
    live = f"http://127.0.0.1:{server.server_address[1]}"
    servers = {"Nager.Date": live, "WolframAlpha": live, "apilayer weatherstack": live, "airportsapi": dead}
    monkeypatch.setenv("WOLFRAMALPHA_APPID", "secret-from-env")
    monkeypatch.delenv("APILAYER_WEATHERSTACK_ACCESS_KEY", raising=False)
    tasks = [t for t in (t for tool in tools for t in tool.tasks) if t.tool in servers]
    notes: list[str] = []
    try:
        summary = run_suite(
            "toolalpaca-real",
            tools,
            tasks,
            golden_factory(tasks),
            lambda p: "Yes",
            tmp_path,
            servers=servers,
            note=notes.append,
        )
    finally:
        server.shutdown()
    ran = 17 + 13  # Nager.Date and WolframAlpha
    assert (summary["tasks"], summary["run"], summary["not_run"]) == (ran + 10 + 8, ran, 18)
    assert (summary["process"], summary["overall"], summary["label"]) == (100.0, 100.0, "real APIs")
    assert len(notes) == 2
    assert notes[0].startswith("airportsapi: 127.0.0.1:") and "unreachable" in notes[0]
    assert notes[1].startswith("apilayer weatherstack: set APILAYER_WEATHERSTACK_ACCESS_KEY")
    skipped = [json.loads(p.read_text()) for p in tmp_path.glob("airportsapi-*.json")]
    assert len(skipped) == 8 and all(r["status"] == NOT_RUN and "process" not in r for r in skipped)
    assert "/api/v3/IsTodayPublicHoliday/CN" in _StandIn.seen
    wolfram = [p for p in _StandIn.seen if p.startswith("/result")]
    assert wolfram and all("appid=secret-from-env" in p for p in wolfram)


def test_seeded_subset_is_stable(root: Path) -> None:
    tasks = [t for tool in load_suite(root, "toolalpaca-simulated") for t in tool.tasks]
    a, b = select(tasks, sample=20, seed=0), select(tasks, sample=20, seed=0)
    assert [t.key for t in a] == [t.key for t in b] and len(a) == 20
    assert [t.key for t in select(tasks, sample=20, seed=1)] != [t.key for t in a]
