"""StableToolBench solvable queries end to end against a StableToolBench-protocol server (`umi serve tools`),
scored by a solvable pass rate (SoPR) with a configurable judge model.

What is measured: the tools answer from the server's cache, an upstream or its simulator, so results are
labelled **simulated APIs**; and the judge is whatever model the caller configures (StableToolBench used
gpt-4-turbo), so a SoPR from a small local judge is not comparable with published numbers. The scoring rule
follows StableToolBench: a query whose episode did not end in an answer is Unsolved; otherwise the judge says
Solved, Unsolved or Unsure; a round scores (#Solved + 0.5·#Unsure) / N and SoPR is the mean over rounds × 100
with the standard deviation over rounds.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from umi.data.io import write_json
from umi.evaluate.live.runner import result_path, run_tasks
from umi.models.roles import Roles
from umi.serve.client import StableToolBenchExecutor
from umi.tools.specs import from_api_list

GROUPS = ("G1_instruction", "G1_category", "G1_tool", "G2_instruction", "G2_category", "G3_instruction")
LABEL = "simulated APIs"
Judge = Callable[[str], str]


def load_queries(folder: str | Path, group: str) -> list[dict[str, Any]]:
    """The solvable queries of one group (`<folder>/<group>.json`, ToolBench query schema)."""
    if group not in GROUPS:
        raise ValueError(f"unknown StableToolBench group {group!r}; use one of {', '.join(GROUPS)}")
    data: list[dict[str, Any]] = json.loads((Path(folder) / f"{group}.json").read_text(encoding="utf-8"))
    return data


def judge_prompt(query: str, answer: str) -> str:
    """umi's wording of the answer-status question: is this a positive, sufficient answer to the query?"""
    return (
        "You grade whether an assistant solved a user's request.\n"
        f"Request: {query}\n"
        f"Final answer: {answer}\n"
        "Reply Unsolved if the answer apologises, refuses, or does not actually address the request; Solved if it "
        "gives a direct, sufficient answer; Unsure if you cannot tell from the answer alone. "
        "Reply with one word: Solved, Unsolved or Unsure.\nVerdict:"
    )


def parse_verdict(text: str) -> str:
    """The first verdict word in a judge's reply (Unsolved is looked for before its substring Solved)."""
    low = text.lower()
    hits = sorted((low.find(w.lower()), w) for w in ("Unsolved", "Unsure", "Solved") if w.lower() in low)
    return hits[0][1] if hits else "Unsure"


def role_judge(roles: Roles, max_new_tokens: int = 16) -> Judge:
    """A judge backed by a configured model (its `backbone` role, or the summarizer)."""
    from umi.models.base import GenerationParams

    binding = roles.backbone or roles.get("summarizer")
    params = GenerationParams(max_new_tokens=max_new_tokens)
    return lambda prompt: binding.complete([prompt], params)[0].text


def run_query(
    entry: dict[str, Any], make_agent: Callable[..., Any], server_url: str, trace_path: Path | None = None
) -> dict[str, Any]:
    """One query as one agent episode over its `api_list`, dispatched through the server (with `trace_path`
    the factory is called as `make_agent(specs, executor, trace_path=…)`)."""
    start = time.perf_counter()
    specs = from_api_list(entry.get("api_list", []))
    executor = StableToolBenchExecutor(server_url, specs)
    extra: dict[str, Any] = {"trace_path": trace_path} if trace_path is not None else {}
    agent = make_agent(specs, executor, **extra)  # a configuration error here is raised, not scored
    try:
        episode = agent.run(entry["query"])
        status, answer = str(episode.status), episode.answer or ""
        calls = [{"name": c.name, "arguments": c.arguments} for c in episode.calls]
        costs = episode.costs
    except Exception as exc:  # an engine failure fails this query, not the run
        status, answer, calls, costs = f"error: {type(exc).__name__}: {exc}", "", [], {}
    return {
        "query_id": entry.get("query_id"),
        "query": entry["query"],
        "status": status,
        "answer": answer,
        "calls": calls,
        "costs": costs,  # per role: prompt, cached and prefilled tokens, new tokens, seconds
        "seconds": time.perf_counter() - start,
    }


def sopr(results: list[dict[str, Any]], judge: Judge, rounds: int = 3) -> dict[str, Any]:
    """Solvable pass rate over `rounds` judge rounds: mean × 100 and the standard deviation over rounds."""
    scores: list[float] = []
    for r in results:
        r.setdefault("verdicts", [])
    for k in range(rounds):
        total = 0.0
        for r in results:
            if r["status"] != "answered" or not r["answer"].strip():
                verdict = "Unsolved"
            elif k < len(r["verdicts"]):
                verdict = r["verdicts"][k]
            else:
                verdict = parse_verdict(judge(judge_prompt(r["query"], r["answer"])))
            if k >= len(r["verdicts"]):
                r["verdicts"].append(verdict)
            total += {"Solved": 1.0, "Unsure": 0.5}.get(verdict, 0.0)
        scores.append(total / max(1, len(results)))
    mean = 100 * statistics.fmean(scores) if scores else 0.0
    std = 100 * statistics.pstdev(scores) if len(scores) > 1 else 0.0
    return {"queries": len(results), "rounds": rounds, "sopr": round(mean, 2), "std": round(std, 2), "label": LABEL}


def run_toolbench(
    make_agent: Callable[..., Any],
    judge: Judge,
    queries: list[dict[str, Any]],
    server_url: str,
    out_dir: str | Path,
    *,
    rounds: int = 3,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every query (at most `workers` at a time; one result file and one trace each; finished ones are kept, so
    a run resumes), then SoPR. The verdicts are saved with each result, so a rerun re-judges nothing."""
    out = Path(out_dir)
    keyed = [{"key": str(q.get("query_id", i)), **q} for i, q in enumerate(queries)]
    results = run_tasks(
        keyed,
        lambda q: str(q["key"]),
        lambda q, trace: {"key": q["key"], **run_query(q, make_agent, server_url, trace)},
        out,
        workers=workers,
        on_progress=on_progress,
    )
    summary = sopr(results, judge, rounds)
    for r in results:
        write_json(result_path(out, r["key"]), r, indent=1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def win_prompt(query: str, answer_a: str, answer_b: str) -> str:
    """umi's wording of ToolEval's preference question: which final answer serves the request better?"""
    return (
        "You compare two assistants' final answers to the same user request.\n"
        f"Request: {query}\n"
        f"Answer A: {answer_a}\n"
        f"Answer B: {answer_b}\n"
        "Prefer the answer that actually gives what was asked, with concrete information, over one that apologises, "
        "refuses or stays vague. Reply with one letter: A or B.\nBetter answer:"
    )


def parse_preference(text: str) -> str:
    """`A`, `B`, or `tie` when the reply names neither (or both) as its first letter-word."""
    for word in text.replace(".", " ").replace(":", " ").split():
        w = word.strip("*\"'()[]").upper()
        if w in ("A", "B"):
            return w
    return "tie"


def win_rate(candidate: str | Path, reference: str | Path, judge: Judge, *, rounds: int = 2) -> dict[str, Any]:
    """Win rate of run `candidate` against run `reference` (two `run_toolbench` folders) on the queries both have.

    ToolEval's order of rules: a run that did not answer loses to one that did (both unanswered: a tie); when
    both answered, the judge picks, asked in both orders every round so the position of an answer cannot decide
    it. A tie counts half. Returns `{queries, wins, ties, losses, win_rate, label}` (win_rate in %)."""
    a, b = _load_run(candidate), _load_run(reference)
    common = [k for k in a if k in b]
    if not common:
        raise ValueError(f"{candidate} and {reference} share no query results; run both on the same queries first")
    wins = ties = losses = 0
    for k in common:
        ra, rb = a[k], b[k]
        ok_a, ok_b = _answered(ra), _answered(rb)
        if ok_a != ok_b:
            score = 1.0 if ok_a else 0.0
        elif not ok_a:
            score = 0.5
        else:
            points = 0.0
            for _ in range(rounds):
                points += {"A": 1.0, "B": 0.0}.get(
                    parse_preference(judge(win_prompt(ra["query"], ra["answer"], rb["answer"]))), 0.5
                )
                points += {"B": 1.0, "A": 0.0}.get(
                    parse_preference(judge(win_prompt(ra["query"], rb["answer"], ra["answer"]))), 0.5
                )
            score = points / (2 * rounds)
        if score > 0.5:
            wins += 1
        elif score < 0.5:
            losses += 1
        else:
            ties += 1
    n = len(common)
    return {
        "queries": n,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "win_rate": round(100 * (wins + 0.5 * ties) / n, 2),
        "label": LABEL,
    }


def _answered(r: dict[str, Any]) -> bool:
    return r.get("status") == "answered" and bool(str(r.get("answer", "")).strip())


def _load_run(folder: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(
            f"{path} is not a run folder; give the --out folder of `umi eval live --suite stabletoolbench`"
        )
    runs: dict[str, dict[str, Any]] = {}
    for f in sorted(path.glob("*.json")):
        if f.name == "summary.json":
            continue
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{f}: not a result file ({exc}); delete it and rerun that query") from None
        if not isinstance(r, dict) or "query" not in r or "key" not in r:
            raise ValueError(f"{f}: not a stabletoolbench result (no key/query field)")
        runs[str(r["key"])] = r
    return runs
