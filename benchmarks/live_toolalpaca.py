"""ToolAlpaca simulated set on CPU with the embedded roles: process / response / overall on a seeded subset,
written to `benchmarks/results/live_toolalpaca.{md,png,json}`.

    python benchmarks/live_toolalpaca.py --roles embedded-glpft --sample 20 --seed 0 --max-steps 2 --budget-s 1800

Tasks run one at a time (results under `--out`, one file each, so a rerun resumes); once `--budget-s` is spent no
new task starts, and the report counts only finished tasks and says how many were planned. The judge and the
simulator are the same roles as the agent unless `--judge` / `--simulator` name others; the report names them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from _results import results_header

from umi.evaluate.live.bfcl import agent_factory
from umi.evaluate.live.report import chart, markdown
from umi.evaluate.live.toolalpaca import (
    default_judged_files,
    load_suite,
    published_reference,
    recorded_returns,
    report_rows,
    run_suite,
    select,
    summarize,
    toolalpaca_roles,
)
from umi.evaluate.live.toolbench import role_judge
from umi.models.roles import default_roles, load_roles
from umi.paths import shared_data
from umi.serve.tool_server import role_simulator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "live_toolalpaca"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roles", default="embedded-glpft")
    ap.add_argument("--judge", default=None)
    ap.add_argument("--simulator", default=None)
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--no-constrain", action="store_true", help="Run the roles without their output grammars.")
    ap.add_argument("--simulator-tokens", type=int, default=128)
    ap.add_argument("--budget-s", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "live_toolalpaca")
    args = ap.parse_args()
    command = shlex.join(["python", *sys.argv])
    head = results_header()
    root = shared_data() / "toolalpaca"
    tools = load_suite(root, "toolalpaca-simulated")
    tasks = select([t for tool in tools for t in tool.tasks], sample=args.sample, seed=args.seed)
    recorded, counts = recorded_returns(tools, default_judged_files(root))
    roles = load_roles(args.roles) if args.roles else default_roles()
    judge = role_judge(load_roles(args.judge) if args.judge else roles, max_new_tokens=8)
    sim = role_simulator(load_roles(args.simulator) if args.simulator else roles, args.simulator_tokens)
    make = agent_factory(
        toolalpaca_roles(roles),
        max_steps=args.max_steps,
        max_new_tokens=args.max_new_tokens,
        constrain=not args.no_constrain,
    )
    start = time.perf_counter()
    for task in tasks:  # one at a time, so the budget is checked between tasks
        if time.perf_counter() - start > args.budget_s:
            break
        run_suite("toolalpaca-simulated", tools, [task], make, judge, args.out, recorded=recorded, simulator=sim)
        print(f"{task.key} done after {time.perf_counter() - start:.0f} s", flush=True)
    done = [json.loads(p.read_text()) for t in tasks if (p := args.out / f"{t.key}.json").exists()]
    summary = summarize(done, "toolalpaca-simulated")
    system = f"α-UMi multi-LLM ({args.roles}, {'unconstrained' if args.no_constrain else 'constrained'})"
    judge_name = args.judge or f"{args.roles} (the agent's own embedded model)"
    note = f"simulated APIs; seeded sample {args.sample} (seed {args.seed}); judge {judge_name}"
    rows = report_rows(summary, system, note)
    header = [
        head.rstrip("\n"),
        "",
        f"wall: {time.perf_counter() - start:.0f} s",
        "",
    ]
    body = [
        f"Planned {len(tasks)} instructions (`select(sample={args.sample}, seed={args.seed})`), finished "
        f"{len(done)}: {', '.join(r['key'] for r in done)}. Max {args.max_steps} planner steps, "
        f"{args.max_new_tokens} new tokens per turn, simulator {args.simulator_tokens} tokens, shared 2-core CPU. "
        f"Replay cache: {counts['recovered']} responses recovered from {counts['recorded']} recorded calls. "
        f"Process by umi's rule; final response by {judge_name}; simulator {args.simulator or args.roles}.",
        "",
        "| task | status | calls | process | response | overall |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['key']} | {r['status']} | {', '.join(c['name'] for c in r['calls']) or '—'} | {r['process']} | "
            f"{r['response']} | {r['overall']} |"
            for r in done
        ),
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, "ToolAlpaca simulated set on CPU (simulated APIs)", published_reference())
    first, rest = text.split("\n", 1)
    RESULTS.with_suffix(".md").write_text("\n".join([*header, first, "", *body]) + rest, encoding="utf-8")
    chart(rows, RESULTS.with_suffix(".png"), "ToolAlpaca simulated (simulated APIs)", published_reference())
    RESULTS.with_suffix(".json").write_text(json.dumps({"command": command, **summary}, indent=2), encoding="utf-8")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
