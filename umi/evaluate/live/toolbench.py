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


def run_query(entry: dict[str, Any], make_agent: Callable[..., Any], server_url: str) -> dict[str, Any]:
    """One query as one agent episode over its `api_list`, dispatched through the server."""
    start = time.perf_counter()
    specs = from_api_list(entry.get("api_list", []))
    executor = StableToolBenchExecutor(server_url, specs)
    try:
        episode = make_agent(specs, executor).run(entry["query"])
        status, answer = str(episode.status), episode.answer or ""
        calls = [{"name": c.name, "arguments": c.arguments} for c in episode.calls]
    except Exception as exc:  # an engine failure fails this query, not the run
        status, answer, calls = f"error: {type(exc).__name__}: {exc}", "", []
    return {
        "query_id": entry.get("query_id"),
        "query": entry["query"],
        "status": status,
        "answer": answer,
        "calls": calls,
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
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every query (one result file each; existing ones are kept, so a run resumes), then SoPR."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for i, entry in enumerate(queries):
        key = str(entry.get("query_id", i))
        path = out / f"{key}.json"
        if path.exists():
            results.append(json.loads(path.read_text(encoding="utf-8")))
        else:
            r = {"key": key, **run_query(entry, make_agent, server_url)}
            path.write_text(json.dumps(r, indent=1, ensure_ascii=False), encoding="utf-8")
            results.append(r)
        if on_progress:
            on_progress(i + 1, len(queries))
    summary = sopr(results, judge, rounds)
    for r in results:  # keep the verdicts with each result so a rerun re-judges nothing
        (out / f"{r['key']}.json").write_text(json.dumps(r, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
