"""Static evaluation with and without the role grammars (issue 12), on the seeded 100-step subset of the split.

Each configuration is one `run_static` folder under `--runs` (default `runs/constrained_static/<config>`), so the
command resumes: a folder that already holds predictions is continued, a finished one is only scored. The table
says how many of the subset's steps each row covers; a row that is not complete is labelled "first N of 100",
never shown as the 100-step figure. Scores are `umi eval score`'s (`umi.evaluate.metrics.score`, paper-exact).

    python benchmarks/constrained_static.py                     # run (or resume) every config, then write the table
    python benchmarks/constrained_static.py --configs glpft-constrained
    python benchmarks/constrained_static.py --report-only       # only score the folders that exist

llama.cpp runs with one thread (`--threads`): the machine is shared with a training run, and these are quality
numbers, not timings. The split is `umi data split --by-tools --seed 0` of `out_of_domain.json`
(`runs/split/test.json`); the subset file is `benchmarks/results/static_subset_test_100_seed0.json`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _results import results_header

from umi.data.io import load_trajectories
from umi.evaluate.metrics import read_predictions, score
from umi.evaluate.static import read_step_keys, run_static
from umi.format import parse_arguments, parse_step_text
from umi.models.binding import Roles
from umi.models.roles import llamacpp_roles_from_manifest, load_roles, trained_roles_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
SUBSET = RESULTS / "static_subset_test_100_seed0.json"
#: config name → (roles, constrained, label)
CONFIGS: dict[str, tuple[str, bool, str]] = {
    "glpft-constrained": ("embedded-glpft", True, "shipped GLPFT roles, constrained"),
    "embedded-constrained": ("embedded", True, "bare embedded base, constrained"),
    "glpft-free": ("embedded-glpft", False, "shipped GLPFT roles, unconstrained"),
    "embedded-free": ("embedded", False, "bare embedded base, unconstrained"),
}
METRICS = ("plan_acc", "act_em", "hallu", "arg_f1", "rouge_l", "valid_calls", "marker_share")
HEADS = ("Plan ACC", "Act EM", "Hallu", "Arg F1", "ROUGE-L", "valid calls", "planner marker")


def bind(source: str, threads: int) -> Roles:
    """The roles of `source` on llama.cpp with `threads` threads (the CLI's `--roles` uses the default count)."""
    if source == "embedded-glpft":
        trained = trained_roles_dir()
        if trained is None:
            raise SystemExit("this umi build ships no trained roles (umi/assets/roles/smollm2-glpft)")
        return llamacpp_roles_from_manifest(trained, n_threads=threads)
    engine = {"kind": "llama.cpp", "model": "embedded", "n_ctx": 8192, "n_threads": threads}
    roles = {r: {"engine": "base"} for r in ("planner", "caller", "summarizer", "backbone")}
    return load_roles({"family": "toolbench", "engines": {"base": engine}, "roles": roles})


def extra_rates(folder: Path, trajectories: list[Any]) -> tuple[float, float, int]:
    """(valid-call rate among predicted calls, share of planner outputs with a route marker, predicted calls).

    A valid call names one of the step's exact API names and its input is a JSON object."""
    calls = valid = 0
    markers: list[bool] = []
    for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "planner_marker" in d:
            markers.append(bool(d["planner_marker"]))
        pred = parse_step_text(d["prediction"])
        if pred.plan != "call":
            continue
        calls += 1
        args, _ = parse_arguments(pred.action_input)
        valid += pred.action in set(trajectories[int(d["traj"])].tool_names) and isinstance(args, dict)
    rate = round(100.0 * valid / calls, 2) if calls else 0.0
    share = round(100.0 * sum(markers) / len(markers), 2) if markers else 0.0
    return rate, share, calls


def report(folder: Path, data: Path, total: int) -> dict[str, Any] | None:
    if not (folder / "predictions.jsonl").exists():
        return None
    trajectories = load_trajectories(data).items
    rows = read_predictions(str(folder / "predictions.jsonl"))
    if not rows:
        return None
    result = score(rows, trajectories)
    result["valid_calls"], result["marker_share"], result["predicted_calls"] = extra_rates(folder, trajectories)
    result["complete"] = result["steps"] == total
    return result


def chart(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(results))
    for k, (name, r) in enumerate(results.items()):
        xs = [i + k * width for i in range(len(METRICS))]
        label = name if r["complete"] else f"{name} (first {r['steps']})"
        ax.bar(xs, [r[m] for m in METRICS], width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(METRICS))], HEADS)
    ax.set_ylabel("×100")
    ax.set_title("Static evaluation, split test part, seeded 100-step subset")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def progress_printer(name: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        print(f"{name}: {done}/{total}", flush=True)

    return show


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "runs/split/test.json")
    ap.add_argument("--steps", type=Path, default=SUBSET)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs/constrained_static")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--report-only", action="store_true", help="Score the run folders that exist; run nothing.")
    ap.add_argument("--out", type=Path, default=RESULTS / "constrained_static.md")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(
            f"{args.data} not found; make it with `umi data split --by-tools "
            "../shared/data/alpha_umi/dataset/toolbench/test/out_of_domain.json --out runs/split --seed 0`"
        )
    keys = read_step_keys(args.steps)
    if not args.report_only:
        for name in args.configs:
            source, constrain, _ = CONFIGS[name]
            roles = bind(source, args.threads)
            run = run_static(
                args.data,
                roles,
                args.runs / name,
                keys=keys,
                batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens,
                roles_source=source,
                constrain=constrain,
                on_progress=progress_printer(name),
            )
            del roles
            print(f"{name}: {run.total} steps ({run.skipped} from an earlier run)", flush=True)
    results = {n: r for n in CONFIGS if (r := report(args.runs / n, args.data, len(keys))) is not None}
    lines = [
        "# Static evaluation, constrained and not (issue 12)\n",
        f"The seeded {len(keys)}-step subset (`{args.steps.relative_to(ROOT)}`, seed 0) of the test part of "
        "`umi data split --by-tools --seed 0` of `out_of_domain.json`; embedded SmolLM2-135M (Q4_1) on llama.cpp, "
        f"greedy, ≤{args.max_new_tokens} new tokens per call, {args.threads} thread(s). ×100, paper-exact "
        "(`umi eval score`). *valid calls*: predicted calls naming one of the step's exact API names with a JSON "
        "object as input, over all predicted calls. *planner marker*: planner outputs with a `Next:` route marker. "
        "A row marked *first N of 100* did not finish in the time given; its numbers cover only those steps.\n",
        "| config | steps | " + " | ".join(HEADS) + " | predicted calls |",
        "|---|---|" + "--:|" * (len(HEADS) + 1),
    ]
    for name, r in results.items():
        steps = str(r["steps"]) if r["complete"] else f"first {r['steps']} of {len(keys)}"
        cells = " | ".join(f"{r[m]:.2f}" for m in METRICS)
        lines.append(f"| {CONFIGS[name][2]} | {steps} | {cells} | {r['predicted_calls']} |")
    missing = [n for n in CONFIGS if n not in results]
    if missing:
        lines.append(f"\nNot run (no predictions yet): {', '.join(missing)}.")
    args.out.write_text(results_header() + "\n".join(lines) + "\n", encoding="utf-8")
    if results:
        chart(results, args.out.with_suffix(".png"))
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
