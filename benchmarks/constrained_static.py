"""Static evaluation with and without the role grammars (issue 12), on the seeded 100-step subset of the split.

The bare embedded base and the shipped roles, each constrained and not, plus the first-tool-with-{} floor; the five
metrics, the valid-call rate and the share of planner outputs with a route marker. Run folders are shared with
`glpft_small.py` (see `_static_subset.py`), so the command resumes and a row both tables show is computed once.

    python benchmarks/constrained_static.py                     # run (or resume) every config, then write the table
    python benchmarks/constrained_static.py --configs glpft-constrained
    python benchmarks/constrained_static.py --report-only       # only score the folders that exist
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _results import results_header
from _static_subset import (
    HEADS,
    METRICS,
    RESULTS,
    ROOT,
    Config,
    add_arguments,
    cell,
    chart,
    engine_words,
    prepare,
    results_for,
    run_configs,
    steps_cell,
)

CONFIGS = [
    Config("first-tool", "first-tool", False, "first tool with {} (no model)"),
    Config("glpft-constrained", "embedded-glpft", True, "shipped GLPFT roles, constrained"),
    Config("embedded-constrained", "embedded", True, "bare embedded base, constrained"),
    Config("glpft-free", "embedded-glpft", False, "shipped GLPFT roles, unconstrained"),
    Config("embedded-free", "embedded", False, "bare embedded base, unconstrained"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    names = [c.name for c in CONFIGS]
    ap.add_argument("--configs", nargs="*", default=names, choices=names)
    ap.add_argument("--out", type=Path, default=RESULTS / "constrained_static.md")
    args = ap.parse_args()
    keys = prepare(args)
    if not args.report_only:
        run_configs([c for c in CONFIGS if c.name in args.configs], args, keys)
    results = results_for(CONFIGS, args, len(keys))
    labels = {c.name: c.label for c in CONFIGS}
    lines = [
        "# Static evaluation, constrained and not (issue 12)\n",
        f"The seeded {len(keys)}-step subset (`{args.steps.relative_to(ROOT)}`, seed 0) of the test part of "
        f"`umi data split --by-tools --seed 0` of `out_of_domain.json`; {engine_words(args)}. ×100, paper-exact "
        "(`umi eval score`). *valid calls*: predicted calls naming one of the step's exact API names with a JSON "
        "object as input, over all predicted calls. *planner marker*: planner outputs with a `Next:` route marker. "
        f"A row marked *first N of {len(keys)}* did not finish in the time given; its numbers cover only those "
        "steps.\n",
        "| config | steps | " + " | ".join(HEADS) + " | predicted calls |",
        "|---|---|" + "--:|" * (len(HEADS) + 1),
    ]
    for c in CONFIGS:
        if (r := results.get(c.name)) is not None:
            cells = " | ".join(cell(r[m]) for m in METRICS)
            lines.append(f"| {c.label} | {steps_cell(r, len(keys))} | {cells} | {r['predicted_calls']} |")
    missing = [c.name for c in CONFIGS if c.name not in results]
    if missing:
        lines.append(f"\nNot run (no predictions yet): {', '.join(missing)}.")
    args.out.write_text(results_header() + "\n".join(lines) + "\n", encoding="utf-8")
    if results:
        title = f"Static evaluation, split test part, seeded {len(keys)}-step subset"
        chart(results, labels, args.out.with_suffix(".png"), title)
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
