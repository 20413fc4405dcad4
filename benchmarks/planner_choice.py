"""Which API the system calls on the 100-step subset's call steps, from the kept predictions (no model runs).

Act EM says how often the called API is the gold one; this says what the system called instead: the API of the
previous call again (the measured failure of the trained planners), the first tool in the data's order (the floor's
choice), the lexical baseline's choice (the BM25 best match of the query not called yet, `umi.evaluate.baselines`),
or another. It also counts how often the planner's thought names the gold API, and how often the caller
then calls an API the thought names. Reads `benchmarks/results/static_subset_predictions/<engine>/<config>.jsonl`
and the split's test part (`runs/split/test.json`, as `constrained_static.py` makes it).

    python benchmarks/planner_choice.py --configs first-tool glpft2-constrained-q8 single-constrained-q8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _results import results_header  # benchmarks/ is on sys.path when run as a script

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.baselines import lexical_choice
from umi.evaluate.steps import read_step_keys
from umi.format import parse_action
from umi.schema import Step

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
SUBSET = RESULTS / "static_subset_test_100_seed0.json"
COLUMNS = (
    ("call steps", "steps"),
    ("called the gold API", "gold"),
    ("called the previous call's API", "repeat"),
    ("… where gold repeats too", "repeat_gold"),
    ("called the first tool", "first"),
    ("called the lexical choice", "lexical"),
    ("thought names the gold API", "thought_gold"),
    ("called an API its thought names", "follows"),
)


def _call(text: str) -> str | None:
    action, _ = parse_action(text)
    return action or None


def _previous(step: Step) -> str | None:
    """The API of the history's last call (None before the first call)."""
    calls = [_call(t.value) for t in step.history if t.role == "caller"]
    return calls[-1] if calls else None


def count(predictions: Path, steps: list[Step]) -> dict[str, int]:
    """The counts of `COLUMNS` over the subset's call steps (`steps`) for one kept predictions file."""
    preds = {}
    for line in predictions.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        preds[(r["traj"], r["step"])] = r["prediction"]
    c = dict.fromkeys((key for _, key in COLUMNS), 0)
    for s in steps:
        if (s.traj, s.step) not in preds:
            continue
        gold, previous = _call(s.action or ""), _previous(s)
        thought, _, rest = preds[(s.traj, s.step)].partition("</s>")
        called = _call(rest.partition("caller:")[2]) if "caller:" in rest else None
        c["steps"] += 1
        c["gold"] += called == gold
        c["repeat"] += previous is not None and called == previous
        c["repeat_gold"] += previous is not None and called == previous == gold
        c["first"] += called == s.tools[0].Name
        c["lexical"] += called == lexical_choice(s)
        c["thought_gold"] += bool(gold) and gold in thought
        c["follows"] += bool(called) and called in thought
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--engine", default="llama.cpp")
    ap.add_argument("--data", type=Path, default=ROOT / "runs/split/test.json")
    ap.add_argument("--out", type=Path, default=RESULTS / "planner_choice.md")
    args = ap.parse_args()
    header = results_header()
    by_key = {(s.traj, s.step): s for s in iter_steps(load_trajectories(args.data).items)}
    steps = [by_key[k] for k in read_step_keys(SUBSET) if by_key[k].route == "caller"]
    kept = RESULTS / "static_subset_predictions" / args.engine
    rows = {name: count(kept / f"{name}.jsonl", steps) for name in args.configs}
    lines = [
        header.rstrip("\n"),
        "",
        "# What the system calls on the subset's call steps",
        "",
        f"The call steps of the seeded 100-step subset (`{SUBSET.relative_to(ROOT)}`), teacher-forced (the history is"
        f" gold), from the kept {args.engine} predictions. *Previous call's API*: the called API equals the last call "
        "of the history (steps after the first call); *where gold repeats too*: those of them whose gold call is that "
        "API again. Counts, not percentages.",
        "",
        "| config | " + " | ".join(label for label, _ in COLUMNS) + " |",
        "|---|" + "--:|" * len(COLUMNS),
    ]
    for name, c in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(c[key]) for _, key in COLUMNS) + " |")
    later = [s for s in steps if _previous(s) is not None]
    repeats = sum(_call(s.action or "") == _previous(s) for s in later)
    lines += [
        "",
        f"Gold: of the {len(later)} call steps that follow an earlier call, {repeats} call the same API again.",
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
