"""Loop steering on and off (`AgentBase.steer_loops`), the same ToolAlpaca simulated instructions, the same roles:
what the agent calls and how the tasks end, written to `benchmarks/results/loop_steering.md`.

    python benchmarks/loop_steering.py --sample 8 --seed 0 --max-steps 4

Both modes keep the repeat guard (an exact call made `repeat_limit` times is refused with an observation); *on*
also leaves the looped API out of the caller's grammar. Everything else is identical: greedy roles, the replay
cache of recorded returns (built afresh per mode, so neither mode sees the other's simulated answers), the
embedded model as simulator and judge. Results resume per task under `--out/<mode>/`. An accuracy comparison, not a
timing: it may share the CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _results import results_header

from umi.evaluate.live import toolalpaca as ta
from umi.evaluate.live.bfcl import agent_factory
from umi.evaluate.live.toolbench import role_judge
from umi.models.roles import default_roles
from umi.paths import shared_data
from umi.serve.tool_server import role_simulator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "loop_steering.md"
MODES = {"on": True, "off": False}


def call_stats(results: list[dict[str, Any]], traces: Path) -> dict[str, Any]:
    """Calls that ran, exact repeats among them (a call equal to an earlier one of its task), distinct APIs per task;
    from the traces: calls the repeat guard refused (they never reach the tool), caller turns with an API left
    out, and of those the ones whose step's planner thought names the left-out API (thought and action disagree) or
    names the call made (they agree)."""
    calls = repeats = refused = distinct = 0
    for r in results:
        seen: list[tuple[str, str]] = []
        for c in r.get("calls", []):
            key = (c["name"], json.dumps(c["arguments"], sort_keys=True))
            repeats += key in seen
            seen.append(key)
        calls += len(seen)
        distinct += len({name for name, _ in seen})
    left_out = naming = agree = 0
    for path in traces.glob("**/*.jsonl"):
        thoughts: dict[tuple[str, int], str] = {}  # each (episode, step)'s planner turns (a marker continuation too)
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            role, parsed = rec.get("role"), rec.get("parsed") or {}
            if role == "planner":
                key = (rec["episode"], rec["step"])
                thoughts[key] = thoughts.get(key, "") + rec["output"].lower()
            if role == "caller" and parsed.get("left_out"):
                left_out += 1
                thought = thoughts.get((rec["episode"], rec["step"]), "")
                naming += any(name.lower() in thought for name in parsed["left_out"])
                called = (parsed.get("action") or "").lower()
                agree += bool(called) and called in thought
            refused += role == "tool" and "already made" in (rec.get("error") or "")
    n = max(1, len(results))
    return {
        "calls": calls,
        "repeats": repeats,
        "refused": refused,
        "distinct": distinct / n,
        "left_out": left_out,
        "naming": naming,
        "agree": agree,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--simulator-tokens", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "loop_steering")
    args = ap.parse_args()
    head = results_header()
    root = shared_data() / "toolalpaca"
    tools = ta.load_suite(root, "toolalpaca-simulated")
    tasks = ta.select([t for tool in tools for t in tool.tasks], sample=args.sample, seed=args.seed)
    roles = default_roles()
    judge = role_judge(roles, max_new_tokens=8)
    sim = role_simulator(roles, args.simulator_tokens)
    done: dict[str, list[dict[str, Any]]] = {}
    for mode, steer in MODES.items():
        recorded, _ = ta.recorded_returns(tools, ta.default_judged_files(root))
        make = agent_factory(
            ta.toolalpaca_roles(roles),
            max_steps=args.max_steps,
            max_new_tokens=args.max_new_tokens,
            constrain=True,
            steer_loops=steer,
        )
        ta.run_suite(
            "toolalpaca-simulated", tools, tasks, make, judge, args.out / mode, recorded=recorded, simulator=sim
        )
        done[mode] = [json.loads(p.read_text()) for t in tasks if (p := args.out / mode / f"{t.key}.json").exists()]
        print(f"{mode}: {len(done[mode])} tasks", flush=True)
    lines = [
        "# Loop steering on and off (ToolAlpaca simulated, shipped roles)",
        "",
        f"The same {len(tasks)} seeded instructions (`select(sample={args.sample}, seed={args.seed})`), the shipped "
        f"roles constrained, at most {args.max_steps} planner steps (the last concludes), {args.max_new_tokens} new "
        "tokens per turn, the embedded model as simulator and judge. *calls*: calls that ran; *repeats*: those "
        "equal (name and arguments) to an earlier call of their task; *refused*: copies the repeat guard refused "
        "(not run); *left out*: caller turns whose grammar left a looped API out; *thoughts naming it*: those "
        "steps whose planner thought names the left-out API; *thought names the call*: left-out caller "
        "turns whose call the same step's thought names. Process by umi's rule (the golden calls made), response by "
        "the judge.",
        "",
        "| steering | tasks | process % | response % | overall % | answered | calls | repeats | refused | distinct "
        "APIs per task | left out | thoughts naming it | thought names the call |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for mode, results in done.items():
        s = ta.summarize(results, "toolalpaca-simulated")
        c = call_stats(results, args.out / mode)
        answered = sum(1 for r in results if r["status"] == "answered")
        lines.append(
            f"| {mode} | {len(results)} | {s['process']} | {s['response']} | {s['overall']} | {answered} | "
            f"{c['calls']} | {c['repeats']} | {c['refused']} | {c['distinct']:.2f} | {c['left_out']} | "
            f"{c['naming']} | {c['agree']} |"
        )
    lines += ["", "| task | calls, steering on | calls, steering off |", "|---|---|---|"]
    by_key = {mode: {r["key"]: r for r in results} for mode, results in done.items()}
    for t in tasks:
        cells = []
        for mode in MODES:
            r = by_key[mode].get(t.key)
            cells.append("—" if r is None else ", ".join(c["name"] for c in r["calls"]) or "(none)")
        lines.append(f"| {t.key} | {cells[0]} | {cells[1]} |")
    RESULTS.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
