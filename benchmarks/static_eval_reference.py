"""`umi eval static` against the reference implementation's way of running it: same steps, same roles, one run.

The reference's way (`../shared/reference/alpha_umi.md` §4.1 and §6): three passes over the steps — every planner
call, then every caller call, then every summarizer call — each role a fine-tuned model of its own loaded for its
pass (here: the shipped stage-1 and role adapters merged into the base and saved as a full model, loaded from disk
like the released checkpoints), HF `generate` one prompt at a time (batch 1), sampling with the model's generation
config (`do_sample=True`, the seed fixed here), up to 512 new tokens, stopped at `</s>`, no grammar and no prompt
reuse (every call prefills its whole prompt).

umi's way: `run_static` as `umi eval static` runs it. `--umi-engine llama.cpp` (the default, as `umi eval static`
binds the shipped roles): the embedded base requantized to Q8_0 with the roles' LoRA adapters on llama.cpp, server
slots of their own per role (each role's prompt cache survives the others' calls), each trajectory's steps in
order, greedy, role grammars; `--lanes 1,4` runs it once per lane count (lanes: slots per role, so that many
trajectories decode side by side as one batch; `umi eval static --lanes`, 1 by default). `--umi-engine
transformers`: one base with the adapters switched per call, batches of `--batch-size` trajectories (one step of
each; batch 1 uses the per-role prefix caches), greedy, role grammars. Both up to 512 new tokens.

Kept equal on both sides, so the ratio is the way of running, not the work: the prompts (umi.format with the roles'
prompt budget and the `assistant:` label — the reference's `planner:` label changes outputs, not cost), adapters,
the CPU threads, the steps; on transformers also the base weights and dtype (`--dtype auto`: bf16 where this CPU
runs it fast, fp32 elsewhere). The llama.cpp side runs the quantized base umi ships, which is part of its way. Model
loading is inside each side's time. Both sides' scores are printed beside the times (quantization, sampling and no
grammar change the outputs, too).

    python benchmarks/static_eval_reference.py [--steps 50] [--seed 0] [--umi-engine llama.cpp|transformers]
        [--lanes 1,4] [--batch-size 8] [--dtype auto|float32|bfloat16]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import results_header, shared_data

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.metrics import PredictionRow, score
from umi.evaluate.static import reference_text, run_static
from umi.evaluate.steps import select_steps
from umi.format import (
    END_OF_TURN,
    PromptBudget,
    caller_prompt,
    parse_planner,
    planner_prompt,
    step_text,
    summarizer_prompt,
)
from umi.models.hf import bf16_is_fast, merged_base
from umi.models.roles import default_roles, roles_from_manifest, trained_roles_dir
from umi.schema import Step, Turn

ROOT = Path(__file__).resolve().parents[1]
OOD = shared_data() / "alpha_umi/dataset/toolbench/test/out_of_domain.json"
MAX_NEW_TOKENS = 512  # the reference's static inference setting, and `umi eval static`'s default


def _assistant(value: str) -> Turn:
    return Turn.model_validate({"from": "assistant", "value": value})


def merged_models(trained: Path) -> dict[str, Path]:
    """Each role as a full model (stage 1 and the role's adapter merged into the base), built before timing:
    the reference loads its three fine-tuned checkpoints from disk."""
    manifest = json.loads((trained / "manifest.json").read_text(encoding="utf-8"))
    stage1 = [str(trained / a) for a in manifest.get("base_adapters", [])]
    return {
        role: merged_base(manifest["base"], [*stage1, str(trained / spec["adapter"])])
        for role, spec in manifest["roles"].items()
    }


class Pass:
    """One role's pass: its model loaded on its own, HF `generate` on one prompt at a time, sampling."""

    def __init__(self, path: Path, seed: int, dtype: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        self.prompt_tokens = self.new_tokens = 0

    def generate(self, prompt: str) -> str:
        import torch

        ids = self.tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(
                **ids,
                do_sample=True,
                max_new_tokens=MAX_NEW_TOKENS,
                stop_strings=[END_OF_TURN],
                tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        self.prompt_tokens += int(ids["input_ids"].shape[1])
        self.new_tokens += int(new.shape[0])
        return str(self.tokenizer.decode(new, skip_special_tokens=True)).split(END_OF_TURN)[0]


def reference_way(
    steps: list[Step], trained: Path, budget: PromptBudget | None, seed: int, dtype: str
) -> dict[str, Any]:
    """Planner pass, caller pass, summarizer pass, as the reference's static inference runs them."""
    models = merged_models(trained)
    start, cpu = time.perf_counter(), time.process_time()
    tokens = {"prompt": 0, "new": 0}

    def run_pass(role: str, prompts: dict[int, str]) -> dict[int, str]:
        p = Pass(models[role], seed, dtype)
        out = {i: p.generate(prompt) for i, prompt in prompts.items()}
        tokens["prompt"] += p.prompt_tokens
        tokens["new"] += p.new_tokens
        del p  # the reference frees each model before loading the next
        return out

    planned = run_pass("planner", {i: planner_prompt(s.tools, s.history, budget=budget) for i, s in enumerate(steps)})
    thoughts, routes = {}, {}
    for i, text in planned.items():
        p = parse_planner(text)
        thoughts[i] = "none" if p.empty else (p.thought if p.has_marker else p.raw)
        routes[i] = p.route
    hist = {i: [*s.history, _assistant(thoughts[i])] for i, s in enumerate(steps)}
    calls = run_pass(
        "caller",
        {
            i: caller_prompt(s.tools, hist[i], thoughts[i], budget=budget)
            for i, s in enumerate(steps)
            if routes[i] in ("caller", "none")
        },
    )
    answers = run_pass(
        "summarizer",
        {i: summarizer_prompt(hist[i], budget=budget) for i, s in enumerate(steps) if routes[i] == "conclusion"},
    )
    preds = [step_text(thoughts[i], calls.get(i, answers.get(i)), routes[i]) for i in range(len(steps))]  # type: ignore[arg-type]
    return {
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "prompt": tokens["prompt"],
        "prefilled": tokens["prompt"],
        "new": tokens["new"],
        "preds": preds,
    }


def umi_way(manifest: Path, n_steps: int, engine: str, batch_size: int, dtype: str, lanes: int = 1) -> dict[str, Any]:
    """`run_static` on `engine` (llama.cpp: the roles `umi eval static` binds by default, `lanes` slots per role),
    model loading included."""
    start, cpu = time.perf_counter(), time.process_time()
    roles = default_roles(lanes=lanes) if engine == "llama.cpp" else roles_from_manifest(manifest, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_static(
            OOD, roles, tmp, limit=n_steps, batch_size=batch_size, max_new_tokens=MAX_NEW_TOKENS, constrain=True
        )
        rows = {
            (d["traj"], d["step"]): d["prediction"]
            for d in (json.loads(line) for line in run.predictions.read_text(encoding="utf-8").splitlines())
        }
    roles.close()
    costs = run.costs or {}
    total = {
        k: sum(float(c.get(k, 0)) for c in costs.values()) for k in ("prompt_tokens", "prefilled_tokens", "new_tokens")
    }
    return {
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "prompt": int(total["prompt_tokens"]),
        "prefilled": int(total["prefilled_tokens"]),
        "new": int(total["new_tokens"]),
        "rows": rows,
    }


def scores(steps: list[Step], preds: list[str], trajectories: list[Any]) -> dict[str, Any]:
    rows = [PredictionRow(s.traj, s.step, reference_text(s), p) for s, p in zip(steps, preds, strict=True)]
    return score(rows, trajectories)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="The first N steps of out_of_domain.json.")
    ap.add_argument("--seed", type=int, default=0, help="torch seed of the reference's sampling")
    ap.add_argument("--umi-engine", choices=("llama.cpp", "transformers"), default="llama.cpp")
    ap.add_argument("--batch-size", type=int, default=8, help="umi's transformers side: trajectories per batch")
    ap.add_argument("--lanes", default="1,4", help="umi's llama.cpp side: run it once per lane count (comma list)")
    ap.add_argument(
        "--dtype", choices=("auto", "float32", "bfloat16"), default="auto", help="the transformers sides' weights"
    )
    args = ap.parse_args()
    dtype = args.dtype if args.dtype != "auto" else ("bfloat16" if bf16_is_fast("cpu") else "float32")
    head = results_header()
    found = trained_roles_dir()
    if found is None:
        raise SystemExit("this umi build ships no trained roles (umi/assets/roles/smollm2-glpft)")
    trained = found.parent if found.name.endswith(".json") else found  # the run folder
    trajectories = load_trajectories(OOD).items
    steps = select_steps(iter_steps(trajectories), args.steps, None)
    manifest = json.loads((trained / "manifest.json").read_text(encoding="utf-8"))
    budget = PromptBudget.from_dict(manifest.get("prompt_budget"))
    ref = reference_way(steps, trained, budget, args.seed, dtype)
    print(f"reference's way: {ref['seconds']:.1f} s", flush=True)
    lane_counts = [int(x) for x in args.lanes.split(",")] if args.umi_engine == "llama.cpp" else [1]
    ways: list[tuple[str, dict[str, Any]]] = []
    for lanes in lane_counts:
        ours = umi_way(found, args.steps, args.umi_engine, max(args.batch_size, lanes), dtype, lanes=lanes)
        print(f"umi's way ({lanes} lane(s)): {ours['seconds']:.1f} s", flush=True)
        ours["preds"] = [ours["rows"][(s.traj, s.step)] for s in steps]
        ways.append((f"{lanes} lane{'s' if lanes > 1 else ''}", ours))
    umi_words = (
        "the base requantized to Q8_0 (`umi.models.gguf_merge`) with the roles' LoRA adapters on llama.cpp, slots "
        "of their own per role, each trajectory's steps in order; *lanes*: slots per role, so that many "
        "trajectories decode side by side as one batch (1: a trajectory at a time)"
        if args.umi_engine == "llama.cpp"
        else f"transformers in {dtype}, batches of {args.batch_size}"
        + (" (batch 1: per-role prefix caches)" if args.batch_size == 1 else " (batched calls bypass the prefix cache)")
    )
    lines = [
        "# Static evaluation: umi's way vs the reference implementation's way\n",
        f"The first {len(steps)} steps of `out_of_domain.json`, the shipped GLPFT roles (2-core CPU; "
        f"{'AMX / AVX512-BF16' if bf16_is_fast('cpu') else 'no AMX or AVX512-BF16'}), one run. The reference's way: "
        f"merged models on transformers in {dtype}. umi's way: {umi_words}. What each way is: "
        "`benchmarks/static_eval_reference.py`'s docstring.\n",
        "| way | wall s | CPU s | prompt tokens | prefilled | new tokens | Plan ACC | Act EM | Hallu | Arg F1 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    rows: list[tuple[str, dict[str, Any]]] = [
        ("reference's (3 passes, HF generate, batch 1, sampling, no grammar, no cache)", ref)
    ]
    rows += [
        (f"umi's (`run_static` on {args.umi_engine}: grammars, per-role prompt caches, greedy, {name})", r)
        for name, r in ways
    ]
    for label, r in rows:
        s = scores(steps, r["preds"], trajectories)
        lines.append(
            f"| {label} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['prompt']} | {r['prefilled']} | {r['new']} | "
            + " | ".join(f"{s[m]:.2f}" for m in ("plan_acc", "act_em", "hallu", "arg_f1"))
            + " |"
        )
    lines.append("")
    for name, ours in ways:
        lines.append(
            f"- **umi's way, {name}: {ref['seconds'] / ours['seconds']:.2f}× the steps per second of the reference's "
            f"way** (CPU time {ref['cpu'] / ours['cpu']:.2f}×; the issue's goal: ≥5×); new tokens "
            f"{ref['new'] / max(1, ours['new']):.2f}×, prefilled tokens "
            f"{ref['prefilled'] / max(1, ours['prefilled']):.2f}× on the reference's side."
        )
    if len(ways) > 1:
        base_rows = ways[0][1]["rows"]
        for name, ours in ways[1:]:
            same = sum(ours["rows"][k] == v for k, v in base_rows.items())
            lines.append(
                f"- {name} against {ways[0][0]}: {ways[0][1]['seconds'] / ours['seconds']:.2f}× the steps per second; "
                f"{same} of {len(base_rows)} predictions identical (llama.cpp's batched decode may round a near-tie "
                "the other way)."
            )
    out = ROOT / "benchmarks/results/static_eval_reference.md"
    out.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
