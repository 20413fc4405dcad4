"""How often a planner ranks the step's API first among the task's APIs, teacher-forced, on the test part.

Name ranking (`umi.train.name_rank`) scores each of the task's API names as a whole (its tokens and the token after
it) where the gold thought first spells the step's API. This reads that score off a planner without generating:
on the planner rows of the split's test part (tools never seen in training) that name their step's API, the share
where the gold name scores highest, where the previous call's API scores highest, and chance (the mean of 1 / the
number of candidates). It separates "the planner cannot tell the right API" from "its free thought drifts before it
names one": the system's Act EM measures both at once.

    umi data build runs/split/test.json --out runs/rows_test_b --budget 0
    python benchmarks/name_rank_accuracy.py --trajectories 60 \
        --roles base=embedded shipped=umi/assets/roles/smollm2-glpft rank=benchmarks/roles/smollm2-glpft-rank
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from _results import results_header  # benchmarks/ is on sys.path when run as a script

from umi.train.data import Encoded, encode_rows, previous_call_name, step_call_names
from umi.train.model import load_model, load_tokenizer
from umi.train.name_rank import rank_scores
from umi.train.prefix_pack import collate_pack, plan_packs, trajectory_key, use_pack_attention
from umi.train.recipes import select_rows

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/results/name_rank_accuracy.md"


def planner_model(source: str) -> Any:
    """`embedded` (the bare base) or a packaged role folder: the base, its base adapters merged, the planner's."""
    from peft import PeftModel

    model = load_model("embedded")
    if source == "embedded":
        return model
    folder = Path(source)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest.get("base_adapters", []):
        model = PeftModel.from_pretrained(model, str(folder / name)).merge_and_unload()
    adapter = manifest["roles"]["planner"].get("adapter")
    return PeftModel.from_pretrained(model, str(folder / adapter)) if adapter else model


def measure(source: str, rows: list[Any], enc: list[Encoded], threads: int) -> dict[str, float]:
    model = planner_model(source).eval()
    use_pack_attention(model)
    torch.set_num_threads(threads)
    groups = hits = prev_first = prev_groups = 0
    chance = 0.0
    t0 = time.perf_counter()
    for pack in plan_packs(rows, enc, 3072):
        members = [pack.base, *(i for i, _ in pack.branches)]
        ranked = [i for i in members if enc[i].choice is not None]
        if not ranked:
            continue
        batch = collate_pack(pack, enc)
        with torch.no_grad():
            logits_batch = {k: v for k, v in batch.items() if k not in ("loss_positions", "targets")}
            at, tokens = logits_batch.pop("rank_at"), logits_batch.pop("rank_tokens")
            group, cand = logits_batch.pop("rank_group"), logits_batch.pop("rank_candidate")
            logits = model(**logits_batch, use_cache=False, logits_to_keep=at).logits[0].float()
        lp = torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1)
        best_of = rank_scores(lp, group, cand).argmax(-1).tolist()
        for i, best in zip(ranked, best_of, strict=True):  # collate_pack ranks the base first, then branches
            choice = enc[i].choice
            assert choice is not None
            groups += 1
            hits += best == 0
            chance += 1 / len(choice.candidates)
            prev = previous_call_name(rows[i].history)
            if prev and prev != choice.names[0] and prev in choice.names:
                prev_groups += 1
                prev_first += choice.names[best] == prev
    return {
        "groups": groups,
        "gold_first": 100 * hits / max(groups, 1),
        "chance": 100 * chance / max(groups, 1),
        "prev_groups": prev_groups,
        "prev_first": 100 * prev_first / max(prev_groups, 1),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="runs/rows_test_b", help="rows of the split's test part (`umi data build`)")
    ap.add_argument("--trajectories", type=int, default=60, help="the first N trajectories of the test part")
    ap.add_argument("--roles", nargs="+", required=True, help="LABEL=SOURCE: `embedded` or a packaged role folder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    rows_dir = Path(args.rows)
    planner = select_rows(rows_dir, "planner", None)
    callers = select_rows(rows_dir, "caller", None)
    keys: list[str] = []
    for r in planner:
        k = trajectory_key(r)
        if k not in keys:
            keys.append(k)
    kept = set(keys[: args.trajectories])
    rows = [r for r in planner if trajectory_key(r) in kept]
    enc = encode_rows(rows, load_tokenizer("embedded"), 8192, emphasis=step_call_names(rows, callers), name_rank=True)
    results = []
    for spec in args.roles:
        label, _, source = spec.partition("=")
        r = measure(source, rows, enc, args.threads)
        print(label, r, flush=True)
        results.append((label, source, r))
    lines = [
        "# Name ranking on unseen tools (teacher-forced)",
        "",
        f"Planner rows of the first {len(kept)} trajectories of the split's test part (`{args.rows}`) whose gold "
        "thought names the step's API; each of the task's API names scored as a whole (its tokens and the token "
        "after it) at that point (`umi.train.name_rank`). *Gold first*: the gold name scores highest. *Previous call "
        "first*: among rows whose gold API is not the previous call's, the previous call's API scores highest. "
        "Chance: the mean of 1 / candidates. Generated by `benchmarks/name_rank_accuracy.py`.",
        "",
        "| planner | source | ranked rows | gold first % | chance % | previous call first % (of rows) |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for label, source, r in results:
        lines.append(
            f"| {label} | `{source}` | {r['groups']} | {r['gold_first']:.1f} | {r['chance']:.1f} | "
            f"{r['prev_first']:.1f} ({r['prev_groups']}) |"
        )
    args.out.write_text(results_header() + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
