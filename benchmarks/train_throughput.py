"""Training throughput of umi's CPU training levers, each against today's path (dynamic padding), same real rows.

Rows: the planner rows of the first `--trajectories` trajectories of the tool-disjoint train part (split seed 0),
rendered under the default prompt budget (what `umi train --preset cpu-epoch` trains on). Every mode trains the
same rows once (one optimizer step per trajectory's rows, after one untimed warm-up step), embedded SmolLM2-135M
+ LoRA r 8, forward + backward + AdamW, each in its own child process so its peak RSS is its own:

* `dynamic`      — today's path (`cpu-small`'s, one row per micro-batch so nothing is padded and memory stays
                   bounded): fp32, logits at every position;
* `lm-head`      — + the vocabulary projection only at positions that carry a loss;
* `lm-head+bf16` — + bf16 autocast (AMX / AVX512-BF16 matmuls on CPUs that have them; emulated, and slower, on
                   CPUs without them);
* `prefix-pack-mask` — `lm-head` + exact prefix-shared packing (one sequence per trajectory, the shared prefix
                   computed once) under one 4D mask over the whole pack, with bf16 autocast where
                   `umi.models.hf.bf16_is_fast` says this CPU runs it fast (as `cpu-epoch` chooses);
* `prefix-pack`  — the same with segment attention (`umi.train.prefix_pack.pack_attention`: each segment of the
                   pack on its own, not one masked T x T attention): the `cpu-epoch` path;
* `top-half`     — `prefix-pack` with LoRA on the upper half of the layers only (the backward pass stops there).
* `top-quarter`  — the same with LoRA on the upper quarter.
* `top-half-mask`, `top-quarter-mask` — those two under one 4D mask instead of segment attention: whether
                   `cpu-epoch`'s stages would train faster on the mask (they use segments).

Target tokens per second (tokens that carry loss: the same work in every mode) is the figure to compare.

    python benchmarks/train_throughput.py --threads 1   # alone on the machine: nothing else running
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _results import results_header, shared_data  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
SOURCE = shared_data() / "alpha_umi" / "dataset" / "toolbench" / "test" / "out_of_domain.json"
MODES = (
    "dynamic",
    "lm-head",
    "lm-head+bf16",
    "prefix-pack-mask",
    "prefix-pack",
    "top-half",
    "top-quarter",
    "top-half-mask",
    "top-quarter-mask",
)


def _rows(n: int):  # type: ignore[no-untyped-def]
    from umi.data import build_rows, load_trajectories
    from umi.data.split import split_by_tools
    from umi.format import DEFAULT_BUDGET

    trajectories = load_trajectories(SOURCE).items
    train = [trajectories[i] for i in split_by_tools(trajectories, seed=0).train]
    return [build_rows([t], budget=DEFAULT_BUDGET).planner for t in train[:n]]


def child(mode: str, args: argparse.Namespace) -> dict[str, float]:
    import torch

    from umi.train.config import TrainConfig
    from umi.train.data import encode_rows
    from umi.train.loop import _batch, _target_count, token_loss_sum
    from umi.train.model import load_model, load_tokenizer, prepare_model
    from umi.train.prefix_pack import plan_packs, use_pack_attention

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    groups = [g for g in _rows(args.trajectories) if g]
    tok = load_tokenizer("embedded")
    config = TrainConfig()
    if mode.startswith(("top-half", "top-quarter")):
        config = TrainConfig(lora_top_fraction=0.5 if mode.startswith("top-half") else 0.25)
    model = prepare_model(load_model("embedded"), config)
    model.train()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    packed = mode.startswith(("prefix-pack", "top-"))
    if packed and not mode.endswith("-mask"):
        use_pack_attention(model)
    bf16 = mode == "lm-head+bf16" or (packed and _fast_bf16())
    steps = []
    for rows in groups:
        enc = encode_rows(rows, tok, 8192)
        if packed:
            steps.append([_batch(enc, p, 0, False) for p in plan_packs(rows, enc, args.pack_tokens)])
        else:
            steps.append([_batch(enc, [j], int(tok.pad_token_id), False) for j in range(len(enc))])
    steps = [steps[0], *steps]  # one untimed warm-up step
    targets = tokens = 0
    seconds = 0.0
    for i, micro in enumerate(steps):
        t0 = time.perf_counter()
        for batch in micro:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = token_loss_sum(model, batch, lm_head_at_loss=mode != "dynamic")
            loss.backward()
        opt.step()
        opt.zero_grad()
        if i == 0:
            continue
        seconds += time.perf_counter() - t0
        targets += sum(_target_count(b) for b in micro)
        tokens += sum(int(b["input_ids"].numel()) for b in micro)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "target_tokens_per_s": targets / seconds,
        "tokens_per_s": tokens / seconds,
        "tokens": tokens,
        "targets": targets,
        "seconds": seconds,
        "peak_rss_mb": rss_peak,
        "rss_growth_mb": rss_peak - rss_loaded,
        "rows": sum(len(g) for g in groups[:]),
    }


def _fast_bf16() -> bool:
    from umi.models.hf import bf16_is_fast

    return bf16_is_fast("cpu")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=MODES)
    p.add_argument("--trajectories", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pack-tokens", type=int, default=3072)
    p.add_argument("--modes", default=",".join(MODES))
    args = p.parse_args()
    if args.mode:
        print(json.dumps(child(args.mode, args)))
        return
    header = results_header()
    res = {}
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--mode", mode, "--trajectories", str(args.trajectories)]
        cmd += ["--threads", str(args.threads), "--pack-tokens", str(args.pack_tokens)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
        print(mode, res[mode], flush=True)
    base = res[next(iter(res))]
    lines = [
        header.rstrip("\n"),
        "",
        "# Training throughput: umi's CPU levers against dynamic padding, same rows",
        "",
        f"Embedded SmolLM2-135M + LoRA r 8, CPU, {args.threads} threads; the planner rows of the first "
        f"{args.trajectories} trajectories of the tool-disjoint train part ({base['rows']} rows) under the default "
        "prompt budget; each mode trains every row once (one optimizer step per trajectory, after one untimed "
        "warm-up step), forward + backward + AdamW, in its own process; packs of at most "
        f"{args.pack_tokens} tokens. This CPU "
        + (
            "has AMX / AVX512-BF16 units: the packed modes run bf16 autocast"
            if _fast_bf16()
            else "has no AMX or AVX512-BF16 units: the packed modes run fp32 (as `cpu-epoch` does here)"
        )
        + ". Target tokens (those carrying loss) are the "
        "same work in every mode; 'tokens processed' shows what prefix sharing removes. Ratios are against the "
        "first row.",
        "",
        "| mode | target tok/s | × | tokens processed | s | peak RSS MB | RSS growth MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, r in res.items():
        lines.append(
            f"| {mode} | {r['target_tokens_per_s']:.1f} | {r['target_tokens_per_s'] / base['target_tokens_per_s']:.2f}"
            f" | {r['tokens']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_growth_mb']:.0f} |"
        )
    lines += ["", f"Load average after the run: {_load()}."]
    out_md = ROOT / "benchmarks" / "results" / "train_throughput.md"
    out_md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
