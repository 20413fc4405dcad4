"""Reference numbers of our own for the static harness, written as one table + chart.

Gold and "first tool with {}" on all of `out_of_domain.json` and on the test part of the tool-disjoint split;
the embedded SmolLM2-135M zero-shot (multi-LLM and single-LLM) on the first N steps of the test part, from the
run folders `umi eval static` wrote (whatever steps they hold; the table says how many).

    umi data split --by-tools ../shared/data/alpha_umi/dataset/toolbench/test/out_of_domain.json --out runs/split
    umi eval static --data runs/split/test.json --out runs/eval/embedded_multi_test40 --limit 40 --max-new-tokens 64
    umi eval static --data runs/split/test.json --out runs/eval/embedded_single_test40 --single --limit 40 ...
    python benchmarks/static_reference.py
"""

from __future__ import annotations

from pathlib import Path

from umi.data import load_trajectories
from umi.evaluate.baselines import write_baseline
from umi.evaluate.metrics import read_predictions, score
from umi.evaluate.report import write_report

ROOT = Path(__file__).resolve().parents[1]
OOD = ROOT.parent / "shared/data/alpha_umi/dataset/toolbench/test/out_of_domain.json"
TEST = ROOT / "runs/split/test.json"
RUNS = ROOT / "runs/eval"


def main() -> None:
    results: dict[str, dict] = {}
    for data, tag in ((OOD, "OOD-400"), (TEST, "split test")):
        trajs = load_trajectories(data).items
        for kind in ("gold", "first-tool"):
            path = write_baseline(kind, data, RUNS / f"{kind}_{tag.replace(' ', '_')}")
            results[f"{kind} ({tag})"] = score(read_predictions(str(path)), trajs)
    test_trajs = load_trajectories(TEST).items
    for run, label in (
        ("embedded_multi_test40", "SmolLM2-135M 0-shot multi-LLM"),
        ("embedded_single_test40", "SmolLM2-135M 0-shot single-LLM"),
    ):
        pred = RUNS / run / "predictions.jsonl"
        if pred.exists() and pred.read_text().strip():
            rows = sorted(read_predictions(str(pred)), key=lambda r: (r.traj, r.step))
            r = score(rows, test_trajs)
            results[f"{label} (split test, {r['steps']} steps)"] = r
    note = (
        "Ours: paper-exact metrics (`umi eval score`). The embedded model rows cover the first steps of the test "
        "part in file order (`--limit`), greedy, ≤64 new tokens; zero-shot, the planner rarely writes a `Next:` "
        "marker and a missing marker counts as a call (the reference's rule), which inflates Plan ACC. The paper "
        "rows are LLaMA-2-7B systems on the full 1,547-step OOD set, shown for scale, not comparison."
    )
    md, _ = write_report(
        results,
        ROOT / "benchmarks/results",
        title="Static evaluation: reference numbers",
        note=note,
        stem="static_reference",
    )
    print(md.read_text())


if __name__ == "__main__":
    main()
