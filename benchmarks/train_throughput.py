"""Training throughput: dynamic padding with length-grouped batches against padding every row to the maximum length
(the reference's layout), same rows, same model (embedded SmolLM2-135M + LoRA r 8), same step count.

Each mode runs in its own child process so peak RSS (`ru_maxrss`) is that mode's own; reported: target tokens per
second (tokens that carry loss, the work that matters), all tokens per second including padding, seconds per step,
peak RSS and its growth over the loaded model. Writes `benchmarks/results/train_throughput.md`.

    nice -n 10 .venv/bin/python benchmarks/train_throughput.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/work/shared/data/alpha_umi/dataset/toolbench/test/out_of_domain.json")


def child(mode: str, args: argparse.Namespace) -> dict[str, float]:
    import torch

    from umi.data import build_rows, load_trajectories
    from umi.train.config import TrainConfig
    from umi.train.data import IGNORE, collate, encode_rows, plan_epoch
    from umi.train.model import load_model, load_tokenizer, prepare_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = build_rows(load_trajectories(SOURCE).items[: args.trajectories]).planner
    config = TrainConfig(max_length=args.max_length, micro_batch=args.micro_batch)
    tok = load_tokenizer("embedded")
    model = prepare_model(load_model("embedded"), config)
    model.train()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    encoded = encode_rows(rows, tok, args.max_length)
    lengths = [len(e.input_ids) for e in encoded]
    plan = plan_epoch(lengths, args.micro_batch, seed=0, epoch=0, group_by_length=(mode == "dynamic"))
    plan = [plan[0], *plan]  # one untimed warm-up step, then every row exactly once: the same rows in both modes
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    targets = tokens = 0
    seconds = 0.0
    for i, micro in enumerate(plan):
        pad_to = args.max_length if mode == "padded" else None
        batch = collate([encoded[j] for j in micro], tok.pad_token_id, pad_to=pad_to)
        labels = batch.pop("labels")
        t0 = time.perf_counter()
        logits = model(**batch, use_cache=False).logits[:, :-1]
        n = int((labels[:, 1:] != IGNORE).sum())
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE, reduction="sum"
        )
        (loss / n).backward()
        opt.step()
        opt.zero_grad()
        if i == 0:
            continue  # warm-up step
        seconds += time.perf_counter() - t0
        targets += n
        tokens += batch["input_ids"].numel()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "target_tokens_per_s": targets / seconds,
        "tokens_per_s": tokens / seconds,
        "s_per_step": seconds / (len(plan) - 1),
        "steps": len(plan) - 1,
        "real_tokens_share": sum(lengths[j] for b in plan[1:] for j in b) / tokens,
        "peak_rss_mb": rss_peak,
        "rss_growth_mb": rss_peak - rss_loaded,
        "rows": len(rows),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["dynamic", "padded"])
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--micro-batch", type=int, default=2)
    p.add_argument("--trajectories", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if args.mode:
        print(json.dumps(child(args.mode, args)))
        return
    res = {}
    for mode in ("dynamic", "padded"):
        cmd = [sys.executable, __file__, "--mode", mode]
        cmd += ["--max-length", str(args.max_length), "--micro-batch", str(args.micro_batch)]
        cmd += ["--trajectories", str(args.trajectories), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
        print(mode, res[mode], flush=True)
    d, f = res["dynamic"], res["padded"]
    lines = [
        "# Training throughput: dynamic padding vs padding every row to the maximum length",
        "",
        f"Embedded SmolLM2-135M (fp32, CPU, {args.threads} threads) + LoRA r 8; planner rows of the first "
        f"{args.trajectories} out-of-domain trajectories ({d['rows']} rows); max length {args.max_length}, "
        f"{args.micro_batch} rows per step, one epoch ({d['steps']} steps, every row once, after one warm-up step), "
        "forward + backward + AdamW. "
        "Padded = the reference's layout (every row right-padded to the maximum length, no grouping). "
        "Shared 2-core machine, other jobs running: compare the ratio, not the absolute numbers. "
        "Generated by `benchmarks/train_throughput.py`.",
        "",
        "| | target tok/s | all tok/s (incl. padding) | s/step | real-token share | peak RSS MB | RSS growth MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, r in res.items():
        lines.append(
            f"| {mode} | {r['target_tokens_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['s_per_step']:.2f} | "
            f"{r['real_tokens_share']:.2f} | {r['peak_rss_mb']:.0f} | {r['rss_growth_mb']:.0f} |"
        )
    lines += [
        "",
        f"**Dynamic / padded: {d['target_tokens_per_s'] / f['target_tokens_per_s']:.2f}× target tokens per second, "
        f"{d['peak_rss_mb'] / f['peak_rss_mb']:.2f}× peak RSS.**",
    ]
    out_md = ROOT / "benchmarks" / "results" / "train_throughput.md"
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
