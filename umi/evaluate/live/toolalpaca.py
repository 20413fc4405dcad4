"""ToolAlpaca's two evaluation sets as live suites: `toolalpaca-simulated` (10 tools, 100 instructions) and
`toolalpaca-real` (11 tools, 114 instructions), one α-UMi episode per instruction with the ToolAlpaca prompt
variants (no give-up route), scored by process / final-response / overall correctness (`toolalpaca_score`).

Simulated: ToolAlpaca's APIs never existed; its own evaluation had GPT-3.5 play them. umi answers a call first
from a replay cache seeded with the returns recorded in ToolAlpaca-7B/13B's judged solutions, then from the tool
server's simulator (any configured model, prompted with the function's documentation and the cached examples of
that function). Results are labelled "simulated APIs". ToolAlpaca's `getDetails` (ask the user) is offered beside
the tool's functions, since eight golden answers start with it; the simulator plays the user.

Real: calls go over HTTP to the APIs' own servers (path, method and parameters from the OpenAPI document; the
`Authentication` fields from environment variables named `<TOOL>_<FIELD>`, e.g. `WOLFRAMALPHA_APPID`). A host
that cannot be reached, or a tool whose key is not set, is reported in one line and its tasks are scored
"not run": never passed, never failed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from umi.data.io import write_json
from umi.data.toolalpaca import ASK_USER, ToolAlpacaTask, ToolAlpacaTool, load_toolalpaca
from umi.data.toolalpaca_solutions import load_judged
from umi.evaluate.live.report import LiveRow, Reference
from umi.evaluate.live.runner import run_tasks
from umi.evaluate.live.toolalpaca_score import (
    Call,
    Judge,
    parse_yes_no,
    process_correct,
    response_prompt,
    solution_text,
    standard_text,
)
from umi.models.roles import Roles
from umi.schema import Param, ToolSpec
from umi.tools.base import Executor, Observation, ToolCall
from umi.tools.executors import HTTPExecutor
from umi.tools.replay import ReplayCache, normalise_arguments
from umi.tools.specs import from_openapi

SUITES = ("toolalpaca-simulated", "toolalpaca-real")
LABEL = "simulated APIs"
FAMILY = "toolalpaca"
NOT_RUN = "not run"
#: GPT-4-judged numbers of ToolAlpaca's own models on the simulated set, from the `statistics` of the released
#: `evalution_outputs/ToolAlpaca{7b,13b}.json` (of 100 instructions).
PUBLISHED = {
    "ToolAlpaca-7B": {"process": 63.0, "response": 68.0, "overall": 60.0},
    "ToolAlpaca-13B": {"process": 68.0, "response": 73.0, "overall": 68.0},
}
ModelSimulator = Callable[[str], str]
Note = Callable[[str], None]
AgentFactory = Callable[..., Any]

ASK_USER_SPEC = ToolSpec(
    name=ASK_USER,
    description="Ask the user for details the instruction does not give; returns the user's answer.",
    parameters=[Param(name="Question", type="string", description="The question for the user.", required=True)],
)


def suite_file(root: Path, suite: str) -> Path:
    if suite not in SUITES:
        raise ValueError(f"unknown ToolAlpaca suite {suite!r}; use one of {', '.join(SUITES)}")
    return root / "data" / ("eval_simulated.json" if suite == "toolalpaca-simulated" else "eval_real.json")


def load_suite(root: Path, suite: str) -> list[ToolAlpacaTool]:
    return load_toolalpaca(suite_file(root, suite), from_openapi)


def select(
    tasks: Sequence[ToolAlpacaTask], *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> list[ToolAlpacaTask]:
    """The first `limit` tasks, or `sample` of them drawn with `random.Random(seed)` (kept in file order)."""
    if sample is not None:
        picked = sorted(random.Random(seed).sample(range(len(tasks)), min(sample, len(tasks))))
        return [tasks[i] for i in picked]
    return list(tasks[:limit] if limit else tasks)


def toolalpaca_roles(roles: Roles) -> Roles:
    """The same bindings, with the ToolAlpaca prompt variants (no give-up route)."""
    return dataclasses.replace(roles, family=FAMILY)


# -- the replay cache ------------------------------------------------------------------------------------------------


def recorded_returns(
    tools: Sequence[ToolAlpacaTool], judged_files: Sequence[Path]
) -> tuple[dict[str, dict[tuple[str, str], str]], dict[str, int]]:
    """Per tool, `(function, normalised arguments) → response` from the judged solutions, and the counts of what was
    recorded, recovered, and why the rest was not (unparsable arguments, unknown function, duplicate key)."""
    names = {t.name: {s.name for s in t.specs} | {ASK_USER} for t in tools}
    cache: dict[str, dict[tuple[str, str], str]] = {t.name: {} for t in tools}
    counts = {"recorded": 0, "recovered": 0, "unparsable_arguments": 0, "unknown_function": 0, "no_return": 0}
    counts |= {"duplicate_same": 0, "duplicate_conflicting": 0}
    for path in judged_files:
        for sol in load_judged(path):
            for call in sol.calls:
                counts["recorded"] += 1
                if call.arguments is None:
                    counts["unparsable_arguments"] += 1
                elif call.function not in names.get(sol.tool, set()):
                    counts["unknown_function"] += 1
                elif not call.response:
                    counts["no_return"] += 1
                else:
                    text = (
                        call.response if call.status in (None, 200) else f"Status Code: {call.status}. {call.response}"
                    )
                    key = (call.function, normalise_arguments(call.arguments))
                    seen = cache[sol.tool].get(key)
                    if seen is None:
                        cache[sol.tool][key] = text
                        counts["recovered"] += 1
                    else:
                        counts["duplicate_same" if seen == text else "duplicate_conflicting"] += 1
    return cache, counts


def tool_simulator(model: ModelSimulator, tool: ToolAlpacaTool) -> Callable[..., str]:
    """The tool server's simulator for one ToolAlpaca tool: the function's documentation (ToolAlpaca's
    `Function_Description`) and the cached examples in the prompt; a reply that never parses is an error."""
    from umi.serve.tool_server import simulate

    def answer(spec: ToolSpec, arguments: dict[str, Any], examples: list[tuple[dict[str, Any], str]]) -> str:
        doc = {
            "tool_name": tool.name,
            "api_name": spec.name,
            "api_description": tool.function_docs.get(spec.name, spec.description),
        }
        shots = [(json.dumps(a, ensure_ascii=False), r) for a, r in examples]
        got = simulate(model, doc, spec.name, arguments, shots)
        if got is None:
            raise ValueError("the simulator model gave no response in the expected form")
        if got["error"]:
            raise ValueError(got["error"])
        return got["response"]

    return answer


def simulated_executor(
    tool: ToolAlpacaTool, recorded: dict[tuple[str, str], str], model: ModelSimulator | None
) -> ReplayCache:
    """A fresh cache per episode (so tasks do not depend on each other's order): recorded returns, then the model."""
    specs = [*tool.specs, ASK_USER_SPEC]
    cache = ReplayCache(specs, miss="simulate", simulator=tool_simulator(model, tool) if model else None)
    for (function, arguments), response in recorded.items():
        cache.add(function, arguments, response)
    return cache


# -- the real APIs ---------------------------------------------------------------------------------------------------


def auth_env_name(tool: str, field: str) -> str:
    """`apilayer weatherstack` + `access_key` → `APILAYER_WEATHERSTACK_ACCESS_KEY`."""
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{tool}_{field}").strip("_").upper()


def with_server(tool: ToolAlpacaTool, server: str | None) -> list[ToolSpec]:
    if not server:
        return tool.specs
    return [s.model_copy(update={"meta": {**s.meta, "server": server}}) for s in tool.specs]


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why a TCP connection to the URL's host cannot be opened (None when it can)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host}:{port} unreachable ({type(exc).__name__}: {exc})"
    return None


def real_blockers(tools: Sequence[ToolAlpacaTool], servers: dict[str, str], note: Note | None = None) -> dict[str, str]:
    """Tool name → why its tasks cannot run (host unreachable, key unset); one note line per host and per tool."""
    blocked: dict[str, str] = {}
    hosts: dict[str, str | None] = {}
    for tool in tools:
        url = str(with_server(tool, servers.get(tool.name))[0].meta.get("server", "")) if tool.specs else ""
        if url not in hosts:
            hosts[url] = unreachable(url)
            if hosts[url] and note:
                note(f"{tool.name}: {hosts[url]}; its tasks are not run")
        if hosts[url]:
            blocked[tool.name] = str(hosts[url])
            continue
        unset = [
            auth_env_name(tool.name, f) for f in tool.authentication if auth_env_name(tool.name, f) not in os.environ
        ]
        if unset:
            blocked[tool.name] = f"set {', '.join(unset)} (the API's key) to run it"
            if note:
                note(f"{tool.name}: {blocked[tool.name]}; its tasks are not run")
    return blocked


def real_executor(tool: ToolAlpacaTool, server: str | None = None, timeout: float = 30.0) -> HTTPExecutor:
    auth = {f: auth_env_name(tool.name, f) for f in tool.authentication}
    return HTTPExecutor(with_server(tool, server), timeout=timeout, retries=1, auth_params_env=auth)


# -- one task --------------------------------------------------------------------------------------------------------


class RecordingExecutor:
    """Keeps every call and what came back, for the process rule and the judge's view of the solution."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.log: list[tuple[ToolCall, Observation]] = []

    def execute(self, call: ToolCall) -> Observation:
        obs = self.inner.execute(call)
        self.log.append((call, obs))
        return obs


def run_task(
    task: ToolAlpacaTask,
    tool: ToolAlpacaTool,
    specs: list[ToolSpec],
    make_agent: AgentFactory,
    executor: Executor,
    judge: Judge,
    trace_path: Path | None = None,
) -> dict[str, Any]:
    """One instruction as one episode over `specs`, then the rule's process verdict and the judge's response
    verdict."""
    start = time.perf_counter()
    recorder = RecordingExecutor(executor)
    extra: dict[str, Any] = {"trace_path": trace_path} if trace_path is not None else {}
    agent = make_agent(specs, recorder, **extra)  # a configuration error is raised, not scored
    try:
        episode = agent.run(task.instruction)
        status, answer = str(episode.status), episode.answer or ""
    except Exception as exc:  # an engine failure fails this task, not the run
        status, answer = f"error: {type(exc).__name__}: {exc}", ""
    calls = [Call(c.name, c.arguments, o.ok) for c, o in recorder.log]
    read_only = {s.name for s in tool.specs if s.meta.get("method") == "GET"}
    process = process_correct(task.golden, calls, task.instruction, read_only=read_only.__contains__)
    if status != "answered" or not answer.strip():
        response = "No"
    else:
        returns = [(c.name, c.arguments, o.response if o.ok else f"error: {o.error}") for c, o in recorder.log]
        prompt = response_prompt(
            tool.nl_documentation, task.instruction, standard_text(task.golden), solution_text(returns, answer)
        )
        response = parse_yes_no(judge(prompt))
    return {
        "key": task.key,
        "tool": task.tool,
        "index": task.index,
        "instruction": task.instruction,
        "status": status,
        "answer": answer,
        "calls": [{"name": c.name, "arguments": c.arguments, "ok": o.ok, "error": o.error} for c, o in recorder.log],
        "process": process.correct,
        "process_reasons": process.reasons,
        "response": response,
        "overall": process.correct and response == "Yes",
        "seconds": round(time.perf_counter() - start, 3),
    }


def not_run(task: ToolAlpacaTask, reason: str) -> dict[str, Any]:
    return {"key": task.key, "tool": task.tool, "index": task.index, "instruction": task.instruction} | {
        "status": NOT_RUN,
        "reason": reason,
    }


def summarize(results: Sequence[dict[str, Any]], suite: str) -> dict[str, Any]:
    """Process / response / overall in % of the tasks that ran (None when none ran); tasks not run are counted
    apart."""
    ran = [r for r in results if r["status"] != NOT_RUN]
    n = max(1, len(ran))

    def pct(k: str) -> float:
        return round(100 * sum(1 for r in ran if (r[k] == "Yes" if k == "response" else r[k])) / n, 2)

    return {
        "suite": suite,
        "tasks": len(results),
        "run": len(ran),
        "not_run": len(results) - len(ran),
        # No task ran (every host unreachable): nothing is scored, rather than 0 % that would read as failures.
        "process": pct("process") if ran else None,
        "response": pct("response") if ran else None,
        "overall": pct("overall") if ran else None,
        "response_uncertain": sum(1 for r in ran if r.get("response") == "Uncertain"),
        "label": LABEL if suite == "toolalpaca-simulated" else "real APIs",
    }


def run_suite(
    suite: str,
    tools: Sequence[ToolAlpacaTool],
    tasks: Sequence[ToolAlpacaTask],
    make_agent: AgentFactory,
    judge: Judge,
    out_dir: str | Path,
    *,
    recorded: dict[str, dict[tuple[str, str], str]] | None = None,
    simulator: ModelSimulator | None = None,
    servers: dict[str, str] | None = None,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    note: Note | None = None,
) -> dict[str, Any]:
    """Every task (resumable under `out_dir`, one result file and trace each), then the summary (summary.json)."""
    by_name = {t.name: t for t in tools}
    blocked: dict[str, str] = {}
    if suite == "toolalpaca-real":
        blocked = real_blockers([by_name[n] for n in dict.fromkeys(t.tool for t in tasks)], servers or {}, note)

    def work(task: ToolAlpacaTask, trace: Path) -> dict[str, Any]:
        tool = by_name[task.tool]
        if task.tool in blocked:
            return not_run(task, blocked[task.tool])
        if suite == "toolalpaca-simulated":
            specs = [*tool.specs, ASK_USER_SPEC]
            executor: Executor = simulated_executor(tool, (recorded or {}).get(tool.name, {}), simulator)
        else:
            specs = with_server(tool, (servers or {}).get(tool.name))
            executor = real_executor(tool, (servers or {}).get(tool.name))
        return run_task(task, tool, specs, make_agent, executor, judge, trace)

    results = run_tasks(list(tasks), lambda t: t.key, work, out_dir, workers=workers, on_progress=on_progress)
    summary = summarize(results, suite)
    write_json(Path(out_dir) / "summary.json", summary, indent=2)
    return summary


def published_reference() -> Reference:
    """ToolAlpaca-7B/13B's GPT-4-judged numbers on the simulated set, for the report."""
    section = [
        "## ToolAlpaca-7B / 13B, published (GPT-4 as judge)",
        "",
        "From the `statistics` of ToolAlpaca's released `evalution_outputs/ToolAlpaca{7b,13b}.json`: GPT-4 judged "
        "process and final response of each solution on the 100 simulated instructions (GPT-3.5 playing the APIs). "
        "umi's process column is a rule, its response column a configured judge model, its APIs its own replay "
        "cache and simulator: **not the same measurement**.",
        "",
        "| published model | process | response | overall | instructions |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {m} (GPT-4 judge) | {v['process']:.0f} | {v['response']:.0f} | {v['overall']:.0f} | 100 |"
            for m, v in PUBLISHED.items()
        ),
        "",
    ]
    bars = {f"{m} — {k} (published, GPT-4 judge, simulated set)": v[k] for m, v in PUBLISHED.items() for k in v}
    return Reference(section, bars)


def report_rows(summary: dict[str, Any], system: str, note: str) -> list[LiveRow]:
    """The three rows of one run for the live report (none when no task ran)."""
    if not summary["run"]:
        return []
    suite = f"ToolAlpaca {'simulated' if summary['suite'] == 'toolalpaca-simulated' else 'real'}"
    return [
        LiveRow(system, suite, k, float(summary[k]), int(summary["run"]), note)
        for k in ("process", "response", "overall")
    ]


def default_judged_files(root: Path) -> list[Path]:
    return [root / "evalution_outputs" / f"ToolAlpaca{m}.json" for m in ("7b", "13b")]
