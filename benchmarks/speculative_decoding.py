"""`umi eval static` with llama.cpp's draft-free speculative decoding on vs off: same steps, same roles, one run.

Each way is `run_static` on the shipped GLPFT roles (llama.cpp, Q8_0 base, LoRA roles, one slot per role, steps of
each trajectory in order, greedy, role grammars), model loading included, the ways one after another in this one
process. A way is `none` or `KIND:NGRAM:DRAFT_MAX` (`umi.models.llamacpp.set_speculative`: KIND `ngram-simple`,
`ngram-map-k` or `ngram-mod`; the draft is looked up in the prompt and the output so far, so the caller's copied
API names and argument values and the planner's restated history come out a batch at a time). The table gives
wall and CPU time, generated tokens, how many of them came from accepted drafts, and whether every prediction
equals the `none` way's (greedy decoding should not change; llama.cpp may round a near-tie differently when it
checks several tokens in one batch, as it notes for its prompt cache, so differences are listed, not hidden).

    python benchmarks/speculative_decoding.py [--steps 50] [--max-new-tokens 256]
        [--ways none,ngram-simple:3:16] [--out benchmarks/results/speculative_decoding.md]

Run it alone on the machine: the ratio is only meaningful when nothing else shares the CPUs.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from _results import results_header
from static_eval_throughput import describe_difference, one_way

from umi.models.role_config import TRAINED_NAME

ROOT = Path(__file__).resolve().parents[1]


def parse_way(way: str) -> dict[str, Any]:
    """`none` or `KIND:NGRAM:DRAFT_MAX` as the llama.cpp engine options it stands for."""
    if way == "none":
        return {}
    kind, ngram, draft = (way.split(":") + ["3", "16"])[:3]
    return {"speculative": kind, "ngram": int(ngram), "draft_max": int(draft)}


def timed_way(roles_name: str, way: str, steps: int, max_new_tokens: int) -> dict[str, Any]:
    """The static evaluation once with this way's engine options (`static_eval_throughput.one_way`, prompt cache
    on, constrained): wall and CPU time, costs and predictions."""
    seconds, cpu, costs, preds = one_way(
        roles_name, steps, max_new_tokens, True, cache_prompt=True, options=parse_way(way)
    )
    return {"seconds": seconds, "cpu": cpu, "costs": costs, "preds": preds}


def total(costs: dict[str, dict[str, float]], key: str) -> int:
    return int(sum(float(c.get(key, 0)) for c in costs.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="The first N steps of out_of_domain.json.")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--roles", default=TRAINED_NAME, help="shipped GLPFT roles (default) or a packaged config")
    ap.add_argument("--ways", default="none,ngram-simple:3:16", help="comma list; the first is the baseline")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speculative_decoding.md")
    args = ap.parse_args()
    head = results_header()
    ways = args.ways.split(",")
    results = {}
    for way in ways:
        results[way] = timed_way(args.roles, way, args.steps, args.max_new_tokens)
        print(f"{way}: {results[way]['seconds']:.1f} s", flush=True)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    base = results[ways[0]]
    rows, per_role, differences = [], [], []
    for way, r in results.items():
        new, accepted, drafted = (total(r["costs"], k) for k in ("new_tokens", "accepted_tokens", "drafted_tokens"))
        same = sum(a == b for a, b in zip(base["preds"], r["preds"], strict=True))
        rows.append(
            f"| {way} | {r['seconds']:.1f} | {base['seconds'] / r['seconds']:.2f}× | {r['cpu']:.1f} | "
            f"{base['cpu'] / r['cpu']:.2f}× | {new} | {drafted} | {accepted} | "
            f"{100 * accepted / max(1, new):.1f} % | {same} / {len(base['preds'])} |"
        )
        for role, c in sorted(r["costs"].items()):
            per_role.append(
                f"| {way} | {role} | {int(c['calls'])} | {int(c['new_tokens'])} | {int(c.get('drafted_tokens', 0))} | "
                f"{int(c.get('accepted_tokens', 0))} | {float(c['seconds']):.1f} |"
            )
        for i, (a, b) in enumerate(zip(base["preds"], r["preds"], strict=True)):
            if a != b:
                differences.append(describe_difference(way, i, a, b, base=ways[0]))
    best = max(ways[1:], key=lambda w: base["seconds"] / results[w]["seconds"], default=ways[0])
    lines = [
        head.rstrip("\n"),
        "",
        "# Static evaluation with speculative decoding (llama.cpp, no draft model)",
        "",
        f"The first {args.steps} steps of `out_of_domain.json`, roles `{args.roles}` on llama.cpp (Q8_0 base, LoRA "
        f"roles, one slot per role), `run_static` one trajectory at a time with steps in order, greedy, constrained, "
        f"≤{args.max_new_tokens} new tokens per call, 2-core CPU, model loading included; the ways one after another "
        f"in this one process. A way `KIND:N:M` drafts up to M tokens after the last N-token match in the context "
        "(`umi.models.llamacpp.set_speculative`). *from drafts*: generated tokens that were accepted draft tokens.",
        "",
        f"| way | wall s | vs {ways[0]} | CPU s | vs {ways[0]} (CPU) | new tokens | drafted | accepted | from drafts |"
        f" predictions as {ways[0]} |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
        f"**{best} / {ways[0]}: {base['seconds'] / results[best]['seconds']:.2f}× the steps per second** "
        f"({base['cpu'] / results[best]['cpu']:.2f}× in CPU time).",
        "",
        "Per role (engine seconds are the model calls' own time):",
        "",
        "| way | role | calls | new tokens | drafted | accepted | engine s |",
        "|---|---|--:|--:|--:|--:|--:|",
        *per_role,
        "",
        "Where a prediction differs from the first way's (first differing character; parsed plan and action):",
        "",
        *(differences or ["- none"]),
        "",
        f"Load when it finished: `{load_after}`.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
