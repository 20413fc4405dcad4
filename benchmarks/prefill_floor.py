"""How few prompt tokens any prompt cache could prefill on the static evaluation's steps, per way of caching.

No model runs: the prompts are rendered with umi.format (the shipped roles' prompt budget), teacher-forced with the
gold turns (the caller and summarizer given the gold thought, each role called where the gold route calls it),
tokenized with the base's tokenizer, and walked in `run_static`'s order (each trajectory's steps in order). A call
must prefill the tokens that its cache does not already hold:

- *no cache* (the reference's way): every prompt whole.
- *one slot for all roles*: the longest common prefix with the previous prompt of any role (what one shared slot,
  or a single LLM, keeps).
- *one slot per role* (umi): the longest common prefix with the same role's previous prompt.
- *one cache shared by the roles* (a lower bound no LoRA roles can reach: their key/value states differ from the
  first layer an adapter touches): the longest common prefix with any earlier prompt of any role.

Why: on a small CPU prefill dominates a static evaluation's time (llama.cpp here prefills a token in about a third
of a decode step's time, and there are ~8× as many prompt tokens as generated ones), so these counts bound what any
cache can win. Compare them with the prefilled counts `benchmarks/static_eval_reference.py` measured.

    python benchmarks/prefill_floor.py [--steps 50]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _results import results_header, shared_data

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.steps import select_steps, trajectory_batches
from umi.format import PromptBudget, caller_prompt, parse_planner, planner_prompt, summarizer_prompt
from umi.models.roles import trained_roles_dir
from umi.schema import Turn
from umi.train.model import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
OOD = shared_data() / "alpha_umi/dataset/toolbench/test/out_of_domain.json"


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="The first N steps of out_of_domain.json.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/prefill_floor.md")
    args = ap.parse_args()
    trained = trained_roles_dir()
    if trained is None:
        raise SystemExit("this checkout ships no trained roles (their manifest names the prompt budget)")
    manifest = json.loads(trained.read_text(encoding="utf-8"))  # the shipped manifest.json
    budget = PromptBudget.from_dict(manifest.get("prompt_budget"))
    tokenizer = load_tokenizer(manifest["base"])
    steps = select_steps(iter_steps(load_trajectories(OOD).items), args.steps, None)
    calls: list[tuple[str, list[int]]] = []
    for batch in trajectory_batches(steps, 1):
        for s in batch:
            thought = parse_planner(s.planner).thought
            history = [*s.history, Turn.model_validate({"from": "assistant", "value": thought})]
            prompts = [("planner", planner_prompt(s.tools, s.history, budget=budget))]
            if s.route == "caller":
                prompts.append(("caller", caller_prompt(s.tools, history, thought, budget=budget)))
            elif s.route == "conclusion":
                prompts.append(("summarizer", summarizer_prompt(history, budget=budget)))
            calls += [(role, tokenizer(p, add_special_tokens=False).input_ids) for role, p in prompts]
    total = sum(len(ids) for _, ids in calls)
    last_any: list[int] = []
    last_role: dict[str, list[int]] = {}
    earlier: list[list[int]] = []
    ways = {"no cache (the reference's way)": 0, "one slot for all roles": 0, "one slot per role (umi)": 0}
    shared = 0
    for role, ids in calls:
        ways["no cache (the reference's way)"] += len(ids)
        ways["one slot for all roles"] += len(ids) - common_prefix(ids, last_any)
        ways["one slot per role (umi)"] += len(ids) - common_prefix(ids, last_role.get(role, []))
        shared += len(ids) - max((common_prefix(ids, e) for e in earlier), default=0)
        last_any, last_role[role] = ids, ids
        earlier.append(ids)
    ways["one cache shared by the roles (not reachable with LoRA roles)"] = shared
    trajectories = len({s.traj for s in steps})
    rows = [f"| {way} | {n} | {total / max(1, n):.2f}× |" for way, n in ways.items()]
    per_role = {r: sum(len(ids) for role, ids in calls if role == r) for r in ("planner", "caller", "summarizer")}
    lines = [
        results_header().rstrip("\n"),
        "",
        "# Prompt tokens a cache must prefill on the static evaluation's steps",
        "",
        f"The first {args.steps} steps of `out_of_domain.json` ({trajectories} trajectories), run in `run_static`'s "
        f"order, prompts rendered with the shipped roles' prompt budget and teacher-forced with the gold turns, "
        f"tokenized with `{manifest['base']}`'s tokenizer: {len(calls)} calls, {total} prompt tokens "
        f"(planner {per_role['planner']}, caller {per_role['caller']}, summarizer {per_role['summarizer']}). "
        "What each way is: this script's docstring. No model runs; the caller's and summarizer's prompts carry "
        "the gold thought where a real run carries the planner's own (so measured counts differ a little).",
        "",
        "| way of caching | tokens to prefill | fewer than no cache |",
        "|---|--:|--:|",
        *rows,
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
