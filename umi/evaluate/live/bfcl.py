"""BFCL v4 multi-turn: executable Python API classes, one agent episode per user turn, BFCL's own checker.

Data files, API classes and the checker come from the installed `bfcl-eval` package (never copied). The agent
acts on live instances of the task's classes; every call is dispatched by exact method name with JSON-parsed
keyword arguments — model text is never evaluated. Calls are recorded as BFCL call strings that umi builds with
`repr()` of the parsed values, and BFCL's multi-turn checker replays them on fresh instances beside the gold
calls (state check and response check after every turn; a task passes when every turn passes).
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from umi.evaluate.live.runner import run_tasks
from umi.models.base import add_costs
from umi.models.roles import Roles
from umi.schema import ToolSpec, Turn
from umi.tools.base import Executor, Observation, ToolCall
from umi.tools.specs import from_openai_function

CATEGORIES = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")


def _data_file(name: str) -> Path:
    return Path(str(resources.files("bfcl_eval").joinpath("data", name)))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_tasks(category: str = "multi_turn_base") -> list[dict[str, Any]]:
    """BFCL entries of a multi-turn category with their `ground_truth` attached."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; use one of {', '.join(CATEGORIES)}")
    entries = _jsonl(_data_file(f"BFCL_v4_{category}.json"))
    answers = {a["id"]: a["ground_truth"] for a in _jsonl(_data_file(f"possible_answer/BFCL_v4_{category}.json"))}
    for e in entries:
        e["ground_truth"] = answers[e["id"]]
    return entries


def function_docs(class_name: str) -> list[dict[str, Any]]:
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    return _jsonl(_data_file(f"multi_turn_func_doc/{MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]}"))


def _to_spec(doc: dict[str, Any]) -> ToolSpec:
    doc = dict(doc)
    params = dict(doc.get("parameters") or {})
    params["type"] = "object"
    doc["parameters"] = params
    return from_openai_function(doc)


def call_string(name: str, arguments: dict[str, Any]) -> str:
    """A BFCL call string built by umi from parsed values: `name(k=repr(v), …)`."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"


class BFCLExecutor:
    """Runs calls on live instances of a task's classes (state persists across turns) and records them."""

    def __init__(self, entry: dict[str, Any]) -> None:
        from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING, STATELESS_CLASSES

        self.task_id: str = str(entry["id"])
        self.instances: dict[str, Any] = {}
        self.methods: dict[str, Callable[..., Any]] = {}
        for class_name in entry["involved_classes"]:
            cls = getattr(importlib.import_module(CLASS_FILE_PATH_MAPPING[class_name]), class_name)
            instance = cls()
            if class_name not in STATELESS_CLASSES:
                instance._load_scenario(copy.deepcopy(entry["initial_config"].get(class_name, {})))
            self.instances[class_name] = instance
            for name, method in inspect.getmembers(instance, predicate=inspect.ismethod):
                if not name.startswith("_"):
                    self.methods[name] = method
        self.allowed: set[str] = set(self.methods)
        self.recorded: list[str] = []

    def execute(self, call: ToolCall) -> Observation:
        if call.name not in self.allowed or call.name not in self.methods:
            return Observation(error=f"No such function name: {call.name}")
        start = time.perf_counter()
        self.recorded.append(call_string(call.name, call.arguments))
        try:
            result = self.methods[call.name](**call.arguments)
        except Exception as exc:  # the API's own errors are observations
            return Observation(error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)
        text = result if isinstance(result, str) else json.dumps(result, default=str)
        return Observation(response=text, seconds=time.perf_counter() - start)


def parse_call_string(text: str, methods: dict[str, Callable[..., Any]]) -> ToolCall:
    """A gold BFCL call string → ToolCall, with `ast` (literals only) and positional arguments named from the
    method's signature. Used to script the gold replay; never applied to model output."""
    node = ast.parse(text, mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain call: {text}")
    name = node.func.id
    args = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    if node.args:
        params = list(inspect.signature(methods[name]).parameters)
        for p, value in zip(params, node.args, strict=False):
            args[p] = ast.literal_eval(value)
    return ToolCall(name, args)


@dataclass
class TaskResult:
    id: str
    passed: bool
    turns: list[list[str]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    costs: dict[str, dict[str, float]] = field(default_factory=dict)  # per role, summed over the task's turns


AgentFactory = Callable[..., Any]  # (specs, executor[, trace_path=]) -> an agent with .run(query, history=)


def _revealed_prompt() -> str:
    """BFCL's own user message for a miss_func turn whose question is empty: the held-out functions are now
    available, so the model should go on with the earlier request (imported, as BFCL's inference sends it)."""
    from bfcl_eval.constants.default_prompts import DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC

    return str(DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC)


def run_task(entry: dict[str, Any], make_agent: AgentFactory, trace_path: Path | None = None) -> TaskResult:
    """Play every user turn of one task as an agent episode, then score with BFCL's checker.

    With `trace_path`, the factory is called as `make_agent(specs, executor, trace_path=…)` and every turn's
    episode appends to that one JSONL trace."""
    start = time.perf_counter()
    extra: dict[str, Any] = {"trace_path": trace_path} if trace_path is not None else {}
    executor = BFCLExecutor(entry)
    excluded = set(entry.get("excluded_function") or [])
    missed: dict[int, list[str]] = {int(k): v for k, v in (entry.get("missed_function") or {}).items()}
    hidden = {f for fs in missed.values() for f in fs}
    docs = [d for c in entry["involved_classes"] for d in function_docs(c) if d["name"] not in excluded]
    history: list[Turn] = []
    turns: list[list[str]] = []
    statuses: list[str] = []
    costs: dict[str, dict[str, float]] = {}
    for turn_index, messages in enumerate(entry["question"]):
        hidden -= set(missed.get(turn_index, []))
        specs = [_to_spec(d) for d in docs if d["name"] not in hidden]
        executor.allowed = {s.name for s in specs}
        before = len(executor.recorded)
        user = " ".join(m["content"] for m in messages if m.get("role") == "user")
        if not user and turn_index in missed:  # miss_func: the turn that reveals the held-out functions
            user = _revealed_prompt()
        if user:
            agent = make_agent(specs, executor, **extra)  # a configuration error here is raised, not scored
            try:
                episode = agent.run(user, history=history)
            except Exception as exc:  # an engine failure ends this task, not the suite
                statuses.append(f"error: {type(exc).__name__}: {exc}")
                turns.append(executor.recorded[before:])
                break
            history = list(episode.history)
            statuses.append(episode.status)
            add_costs(costs, episode.costs)
        else:
            statuses.append("no user message")
        turns.append(executor.recorded[before:])
    passed, error = check(entry, turns)
    return TaskResult(entry["id"], passed, turns, statuses, error, time.perf_counter() - start, costs)


def check(entry: dict[str, Any], turns: Sequence[Sequence[str]]) -> tuple[bool, str]:
    """BFCL's own multi-turn checker on the recorded calls (one call per step)."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    decoded = [[[c] for c in turn] for turn in turns]
    category = entry["id"].rsplit("_", 1)[0]
    try:
        result = multi_turn_checker(decoded, entry["ground_truth"], entry, category, f"umi_{uuid.uuid4().hex[:8]}")
    except Exception as exc:  # the checker asserts on malformed states; that is a failed task, not a crash
        return False, f"checker error: {type(exc).__name__}: {exc}"
    return bool(result.get("valid")), str(result.get("error_message", ""))


def run_suite(
    entries: Sequence[dict[str, Any]],
    make_agent: AgentFactory,
    out_dir: str | Path,
    *,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every task (at most `workers` at a time), one result file and one trace each under `out_dir`; finished
    tasks are kept, so a rerun resumes. Returns `{tasks, passed, accuracy}` and writes it to summary.json."""
    results = run_tasks(
        entries,
        lambda e: str(e["id"]),
        lambda e, trace: run_task(e, make_agent, trace_path=trace).__dict__,
        out_dir,
        workers=workers,
        on_progress=on_progress,
    )
    passed = sum(1 for r in results if r["passed"])
    summary = {"tasks": len(results), "passed": passed, "accuracy": round(100 * passed / max(1, len(results)), 2)}
    (Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def agent_factory(
    roles: Roles,
    *,
    single: bool = False,
    dfsdt: bool = False,
    max_steps: int = 8,
    max_new_tokens: int = 512,
    **agent_kwargs: Any,
) -> AgentFactory:
    """A fresh α-UMi (or single-LLM) agent per episode over the visible tools, optionally inside DFSDT search;
    the roles (and their loaded engines) are shared, so an episode costs no model load."""
    from umi.agent import DFSDT, MultiLLMAgent, SingleLLMAgent

    cls = SingleLLMAgent if single else MultiLLMAgent

    def make(specs: list[ToolSpec], executor: Executor, trace_path: Path | None = None) -> Any:
        agent = cls(
            roles,
            specs,
            executor,
            max_steps=max_steps,
            max_new_tokens=max_new_tokens,
            trace_path=trace_path,
            **agent_kwargs,
        )
        return DFSDT(agent) if dfsdt else agent

    return make


def run_bfcl(
    roles: Roles,
    category: str,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    single: bool = False,
    dfsdt: bool = False,
    max_steps: int = 8,
    max_new_tokens: int = 512,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The first `limit` tasks of a BFCL multi-turn category (all when None), resumable under `out_dir`;
    returns `{tasks, passed, accuracy}` (accuracy in %)."""
    entries = load_tasks(category)
    entries = entries[:limit] if limit else entries
    make = agent_factory(roles, single=single, dfsdt=dfsdt, max_steps=max_steps, max_new_tokens=max_new_tokens)
    return run_suite(entries, make, out_dir, workers=workers, on_progress=on_progress)
