"""Small-scale reproduction of α-UMi's Table 1 ordering on one CPU: GLPFT against its baselines.

What it does (all resumable; rerun the same command after a kill):
1. Tool-disjoint split of α-UMi's 400 out-of-domain trajectories (`umi.data.split_by_tools`, seed 0, half test),
   row sets built from the train part (`umi.data.build_rows`).
2. Trains every recipe (`glpft`, `single`, `one-stage`, `multi-task`) on the embedded SmolLM2-135M with the
   `cpu-small` preset (LoRA r 8, 768 tokens, 4 rows per step) on a seeded subset of `--max-rows` rows per row set,
   `--max-steps` optimizer steps per stage. `single` is GLPFT's stage 1 (same data, same config): it reuses it.
3. Static (teacher-forced) evaluation of each, and of the base zero-shot, on the same `--eval-steps` steps of the
   test part (seeded sample): Plan ACC, Act. EM, Hallu., Arg. F1, R-L, as in the reference (×100). Prompts are cut
   from the left to `--max-prompt` tokens, as in training; greedy decoding, stop at `</s>` or EOS.
   Scored with `umi.evaluate.metrics.score` (the reference's formulas).
4. Writes `benchmarks/results/glpft_small.md` (table), `glpft_small.png` (bar chart), `glpft_small.json`.

    nice -n 10 nohup .venv/bin/python benchmarks/glpft_small.py > runs/glpft_small/log.txt 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from umi.data import build_rows, iter_steps, load_trajectories, split_by_tools, write_rows
from umi.evaluate.metrics import PredictionRow
from umi.evaluate.metrics import score as metrics_score
from umi.evaluate.static import reference_text
from umi.format import (
    END_OF_TURN,
    backbone_prompt,
    caller_prompt,
    caller_text,
    parse_backbone,
    parse_planner,
    planner_prompt,
    planner_text,
    step_text,
    summarizer_prompt,
)
from umi.schema import Step, Trajectory, Turn
from umi.train.manifest import load_manifest, load_role_model
from umi.train.recipes import run_recipe

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared/data/alpha_umi/dataset/toolbench/test/out_of_domain.json"
RESULTS = ROOT / "benchmarks" / "results"
SYSTEMS = ("base", "single", "multi-task", "one-stage", "glpft")
LABELS = {
    "base": "SmolLM2-135M zero-shot",
    "single": "Single-LLM (stage 1)",
    "multi-task": "Single-LLM multi-task",
    "one-stage": "Multi-LLM one-stage",
    "glpft": "α-UMi GLPFT (multi-LLM)",
}


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def prepare(work: Path) -> tuple[Path, list[Step]]:
    """Split, row sets for training, and the test part's steps."""
    trajs = load_trajectories(SOURCE).items
    parts = split_by_tools(trajs, seed=0, test_fraction=0.5)
    rows_dir = work / "rows"
    if not (rows_dir / "multitask.json").exists():
        sets = build_rows([trajs[i] for i in parts.train])
        for name in ("backbone", "planner", "caller", "summarizer", "multitask"):
            write_rows(rows_dir / f"{name}.json", sets.get(name))
    return rows_dir, iter_steps([trajs[i] for i in parts.test])


# ---- generation ---------------------------------------------------------------------------------------------


class Generator:
    """Greedy HF generation for one role model, prompts cut from the left to `max_prompt` tokens."""

    def __init__(self, model: Any, tokenizer: Any, max_prompt: int) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.max_prompt = max_prompt

    @torch.no_grad()
    def __call__(self, prompt: str, max_new_tokens: int) -> str:
        ids = self.tok(prompt, return_tensors="pt")["input_ids"][:, -self.max_prompt :]
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            stop_strings=[END_OF_TURN],
            tokenizer=self.tok,
            pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id,
        )
        text: str = self.tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        return text.split(END_OF_TURN, 1)[0]


def _load(manifest: Path | None, role: str, max_prompt: int) -> Generator:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from umi.train.base import resolve_base

    if manifest is None:
        path = resolve_base("embedded")
        return Generator(AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path), max_prompt)
    model, tok = load_role_model(manifest, role)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return Generator(model, tok, max_prompt)


def predict_multi(steps: list[Step], manifest: Path | None, max_prompt: int) -> list[str]:
    """Planner on every step, then caller, then summarizer (one model in memory at a time, like the reference)."""
    gen = _load(manifest, "planner", max_prompt)
    plans = [parse_planner(gen(planner_prompt(s.tools, s.history), 96)) for s in steps]
    outputs: list[str | None] = [None] * len(steps)
    for role, routes in (("caller", ("caller", "none")), ("summarizer", ("conclusion",))):
        todo = [i for i, p in enumerate(plans) if p.route in routes]
        if not todo:
            continue
        gen = _load(manifest, role, max_prompt)
        for i in todo:
            hist = [*steps[i].history, Turn(role="assistant", value=plans[i].thought)]
            if role == "caller":
                outputs[i] = gen(caller_prompt(steps[i].tools, hist, plans[i].thought), 96)
            else:
                outputs[i] = gen(summarizer_prompt(hist), 128)
    return [step_text(p.thought, o, p.route) for p, o in zip(plans, outputs, strict=True)]


def predict_single(steps: list[Step], manifest: Path, max_prompt: int) -> list[str]:
    """The backbone's one output per step, mapped to the static-eval step text."""
    gen = _load(manifest, "backbone", max_prompt)
    texts = []
    for s in steps:
        out = parse_backbone(gen(backbone_prompt(s.tools, s.history), 160))
        if out.kind == "give up":
            texts.append(planner_text(out.thought or None, "give up"))
        elif out.kind == "conclusion":
            texts.append(step_text(planner_text(out.thought or None, "conclusion"), out.answer or "", "conclusion"))
        else:
            call = caller_text(out.action or "", out.action_input or "")
            texts.append(step_text(planner_text(out.thought or None, "caller"), call, "caller"))
    return texts


# ---- metrics: umi's paper-exact scorer ---------------------------------------------------------------------


def score(steps: list[Step], preds: list[str]) -> dict[str, Any]:
    """`umi.evaluate.metrics.score` over these steps (each step carries its trajectory's tool list)."""
    trajs = [
        Trajectory(tools=s.tools, instruction="", conversations=s.history[:1] or [Turn(role="user", value="")])
        for s in steps
    ]
    rows = [PredictionRow(i, s.step, reference_text(s), p) for i, (s, p) in enumerate(zip(steps, preds, strict=True))]
    return metrics_score(rows, trajs)


# ---- report ---------------------------------------------------------------------------------------------------


def write_report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    RESULTS = args.results
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "glpft_small.json").write_text(
        json.dumps({"args": vars(args), "results": results}, indent=2, default=str)
    )
    cols = [("plan_acc", "Plan ACC ↑"), ("act_em", "Act. EM ↑"), ("hallu", "Hallu. ↓"), ("arg_f1", "Arg. F1 ↑")]
    cols.append(("rouge_l", "R-L ↑"))
    lines = [
        "# GLPFT small-scale reproduction (Table 1 style, static evaluation)",
        "",
        f"Base: embedded SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to fp32). Preset `cpu-small` (LoRA r 8, "
        f"α 16, {args.max_length} tokens, 4 rows per optimizer step), ≤{args.max_rows} rows per row set, "
        f"≤{args.max_steps} optimizer steps per stage. Test: {args.eval_steps} seeded steps of the tool-disjoint "
        f"test part of α-UMi's out-of-domain trajectories; prompts cut from the left to {args.max_prompt} tokens; "
        "greedy. Numbers ×100. Generated by `benchmarks/glpft_small.py`.",
        "",
        "| System | " + " | ".join(c[1] for c in cols) + " | train steps | train min |",
        "|---|" + "---:|" * (len(cols) + 2),
    ]
    for name in SYSTEMS:
        if name not in results:
            continue
        r = results[name]
        lines.append(
            f"| {LABELS[name]} | "
            + " | ".join(f"{r[k]:.1f}" for k, _ in cols)
            + f" | {r.get('train_steps', 0)} | {r.get('train_minutes', 0):.1f} |"
        )
    first = next(iter(results.values()))
    lines += [
        "",
        f"{first['steps']} steps: {first['call_steps']} call, {first['finish_steps']} finish, the rest give up. "
        "With this few steps one step moves Plan ACC by "
        f"{100 / first['steps']:.1f} points: read differences below that as noise.",
    ]
    (RESULTS / "glpft_small.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in SYSTEMS if n in results]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        ax.bar(
            [i + j * width for i in range(len(cols))], [results[name][k] for k, _ in cols], width, label=LABELS[name]
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cols))], [c[1] for c in cols])
    ax.set_ylabel("×100")
    ax.set_title("GLPFT vs baselines, SmolLM2-135M LoRA, static evaluation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "glpft_small.png", dpi=120)


def _train_info(run: Path) -> dict[str, Any]:
    done = [json.loads(p.read_text()) for p in run.glob("*/done.json")]
    return {"train_steps": sum(d["steps"] for d in done), "train_minutes": sum(d["seconds"] for d in done) / 60}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "glpft_small")
    p.add_argument("--max-rows", type=int, default=240)
    p.add_argument("--max-steps", type=int, default=40)
    p.add_argument("--max-length", type=int, default=768)
    p.add_argument("--eval-steps", type=int, default=30)
    p.add_argument("--max-prompt", type=int, default=1024)
    p.add_argument("--results", type=Path, default=RESULTS, help="Where the table, chart and JSON go.")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--systems",
        default=",".join(("glpft", "single", "one-stage", "multi-task", "base")),
        help="Which systems this process runs (comma list); results of the others are read if present.",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows_dir, all_steps = prepare(work)
    steps = [all_steps[i] for i in sorted(random.Random(0).sample(range(len(all_steps)), args.eval_steps))]
    log(f"{len(all_steps)} test steps, evaluating {len(steps)}; rows in {rows_dir}")
    results: dict[str, dict[str, Any]] = {}
    mine = args.systems.split(",")
    for name in ("glpft", "single", "one-stage", "multi-task", "base"):
        out = work / name
        result_file = work / "results" / f"{name}.json"
        if name not in mine:
            if result_file.exists():
                results[name] = json.loads(result_file.read_text())
            continue
        if result_file.exists():
            results[name] = json.loads(result_file.read_text())
            log(f"{name}: done earlier, {results[name]}")
            continue
        t0 = time.perf_counter()
        if name != "base":
            if name == "single" and not (out / "stage1" / "done.json").exists():
                shutil.copytree(work / "glpft" / "stage1", out / "stage1", ignore=shutil.ignore_patterns("merged"))
            log(f"{name}: training")
            run_recipe(
                name,
                base="embedded",
                data=rows_dir,
                out=out,
                preset_name="cpu-small",
                max_rows=args.max_rows,
                max_steps=args.max_steps,
                resume=True,
                overrides={"max_length": args.max_length},
                command=" ".join(sys.argv),
            )
        train_minutes = (time.perf_counter() - t0) / 60
        t0 = time.perf_counter()
        log(f"{name}: evaluating")
        manifest = None if name == "base" else out / "manifest.json"
        if manifest is not None and "backbone" in load_manifest(manifest).roles:
            preds = predict_single(steps, manifest, args.max_prompt)
        else:
            preds = predict_multi(steps, manifest, args.max_prompt)
        res = {**score(steps, preds), **(_train_info(out) if name != "base" else {})}
        res["eval_minutes"] = (time.perf_counter() - t0) / 60
        res["wall_train_minutes"] = train_minutes
        result_file.parent.mkdir(parents=True, exist_ok=True)
        (work / "results" / f"{name}.predictions.json").write_text(json.dumps(preds, indent=1))
        result_file.write_text(json.dumps(res, indent=2))
        results[name] = res
        log(f"{name}: {res}")
        write_report(results, args)
    write_report(results, args)
    log("all done")


if __name__ == "__main__":
    main()
