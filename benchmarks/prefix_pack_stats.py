"""How many tokens one epoch of each row set is, as separate rows and in exact prefix-shared packs.

Rows: the tool-disjoint train part (split seed 0) under the default prompt budget (`umi data build --budget 0`),
tokenized with the embedded SmolLM2 tokenizer; packs as `umi train --preset cpu-epoch` plans them (3,072 tokens).
Writes `benchmarks/results/prefix_pack_stats.md`.

    python benchmarks/prefix_pack_stats.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _results import results_header, shared_data

from umi.data import build_rows, load_trajectories
from umi.data.split import split_by_tools
from umi.format import DEFAULT_BUDGET
from umi.train.data import encode_rows
from umi.train.model import load_tokenizer
from umi.train.prefix_pack import pack_stats, plan_packs

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack-tokens", type=int, default=3072)
    args = p.parse_args()
    header = results_header()
    trajectories = load_trajectories(shared_data() / "alpha_umi/dataset/toolbench/test/out_of_domain.json").items
    train = [trajectories[i] for i in split_by_tools(trajectories, seed=0).train]
    tok = load_tokenizer("embedded")
    lines = [
        "# One epoch of the train part: tokens as separate rows vs in prefix-shared packs",
        "",
        f"218 train-part trajectories, default prompt budget ({DEFAULT_BUDGET.max_chars} characters), SmolLM2 "
        f"tokenizer, packs of at most {args.pack_tokens} tokens (a longer row is a pack of its own).",
        "",
        "| row set | rows | unbudgeted tokens | budgeted tokens | packed tokens | packs | × fewer (budgeted/packed) |"
        " longest row |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    raw = build_rows(train)
    budgeted = build_rows(train, budget=DEFAULT_BUDGET)
    for name in ("backbone", "planner", "caller", "summarizer"):
        rows = budgeted.get(name)
        enc = encode_rows(rows, tok, 1 << 20)
        unb = sum(len(e.input_ids) for e in encode_rows(raw.get(name), tok, 1 << 20))
        st = pack_stats(plan_packs(rows, enc, args.pack_tokens), enc)
        lines.append(
            f"| {name} | {len(rows)} | {unb:,} | {st['row_tokens']:,} | {st['packed_tokens']:,} | {st['packs']} | "
            f"{st['row_tokens'] / st['packed_tokens']:.2f} | {max(len(e.input_ids) for e in enc):,} |"
        )
    (ROOT / "benchmarks" / "results" / "prefix_pack_stats.md").write_text(header + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
