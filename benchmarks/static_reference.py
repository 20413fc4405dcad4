"""Reference numbers of our own for the static harness, written as one table + chart.

Gold and "first tool with {}" predictions on all of `out_of_domain.json` and on the test part of the tool-disjoint
split (`umi data split --by-tools --seed 0`, made here in memory): the scorer's check (gold must give 100/100/0/100/
100) and the floor a model must beat (the call-heavy class balance alone gives first-tool ~74 Plan ACC). Both are
cheap (seconds), so every row of the file is rerun by one command:

    python benchmarks/static_reference.py

Model rows live in the files of the runs that made them (the constrained static tables of issue 12, the GLPFT
reproduction of `benchmarks/glpft_small.py`), each written whole by its own command.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from _results import results_header, shared_data

from umi.data import load_trajectories, split_by_tools
from umi.data.io import read_json
from umi.evaluate.baselines import write_baseline
from umi.evaluate.metrics import PredictionRow, read_predictions, score
from umi.evaluate.report import write_report

ROOT = Path(__file__).resolve().parents[1]
OOD = shared_data() / "alpha_umi/dataset/toolbench/test/out_of_domain.json"
RESULTS = ROOT / "benchmarks/results"

NOTE = (
    "Ours: paper-exact metrics (`umi eval score`), ×100. *all* = every step of the file (OOD: the 1,547 steps of "
    "`out_of_domain.json`; split test: the test part of `umi data split --by-tools --seed {seed}` of it). *gold* "
    "writes each reference step as the prediction (the scorer's end-to-end check); *first-tool* calls the first "
    "listed tool with `{{}}` on every step (the floor: Plan ACC comes from the call-heavy class balance alone). "
    "The paper rows are LLaMA-2-7B fine-tunes (and the API models zero-shot) on the full 1,547-step OOD set, shown "
    "for scale, not as a comparison.\n\n"
    "**Removed in issue 17:** this file used to carry SmolLM2-135M zero-shot rows from runs that had not finished "
    "(5 of a 12-step subset) or were read from another run's folder (32 steps in file order). They are gone rather "
    "than rerun (hours on this CPU); the embedded model's static numbers are in the constrained static tables of "
    "issue 12 and in `benchmarks/results/glpft_small.md`, each produced whole by its own command."
)


def _detail(results: dict[str, dict[str, Any]]) -> str:
    """Arg. F1 parts, dropped references and the clean variant: the numbers the five-metric table leaves out."""
    head = (
        "| system | Arg. F1 easy | Arg. F1 hard | arg dropped | call / finish / give up | clean Arg. F1 | clean R-L |\n"
    )
    head += "|---|---:|---:|---:|---|---:|---:|\n"
    lines = [
        f"| {n} | {r['arg_f1_easy']:.2f} | {r['arg_f1_hard']:.2f} | {r['arg_dropped']} | "
        f"{r['call_steps']} / {r['finish_steps']} / {r['giveup_steps']} | {r['clean']['arg_f1']:.2f} | "
        f"{r['clean']['rouge_l']:.2f} |"
        for n, r in results.items()
    ]
    return head + "\n".join(lines) + "\n"


def _score(rows: list[PredictionRow], trajs: list[Any]) -> dict[str, Any]:
    return {**score(rows, trajs), "clean": score(rows, trajs, clean=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=OOD, help="out_of_domain.json (default: ../shared/data or $UMI_SHARED_DATA)."
    )
    ap.add_argument("--seed", type=int, default=0, help="Seed of the tool-disjoint split.")
    args = ap.parse_args()
    trajs = load_trajectories(args.data).items
    part = split_by_tools(trajs, seed=args.seed)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        test = Path(tmp) / "test.json"
        raw = read_json(args.data)
        test.write_text(json.dumps([raw[i] for i in part.test]), encoding="utf-8")
        for data, label in ((args.data, "OOD, all"), (test, "split test, all")):
            data_trajs = load_trajectories(data).items
            for kind in ("gold", "first-tool"):
                rows = read_predictions(str(write_baseline(kind, data, Path(tmp) / f"{kind}_{label[:3]}")))
                results[f"{kind} ({label})"] = _score(rows, data_trajs)
    note = NOTE.format(seed=args.seed) + "\n\n## Details\n\n" + _detail(results)
    title = "Static evaluation: reference numbers"
    md, _ = write_report(results, RESULTS, title, note=note, stem="static_reference")
    md.write_text(results_header() + md.read_text(encoding="utf-8"), encoding="utf-8")
    print(md.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
