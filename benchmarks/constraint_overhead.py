"""What the role grammars cost in decode speed on llama.cpp (issue 12's goal: ≤10 % of decode time).

The same prompts (planner and caller prompts of the first caller steps of `out_of_domain.json`, under the default
prompt budget) on one llama.cpp engine (the embedded SmolLM2-135M), greedy, at most `--max-new-tokens` each, with
and without the role's grammar (`umi.format.grammar.role_grammar`, the per-API caller grammar). Every prompt is
prefilled once before the measured calls, so each measured call reuses the cached prompt and its time is decode
(plus, when constrained, the grammar's per-request setup, a real cost of the grammar). The two ways alternate per
prompt and per round (A B, then B A), side by side in one run; the result is the ratio of decode tokens/s.

    python benchmarks/constraint_overhead.py [--prompts 6] [--max-new-tokens 48] [--rounds 2] [--threads 1]

Run it through `/work/tools/exclusive` (it pauses the training run).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from _results import results_header, shared_data

from umi.data import iter_steps, load_trajectories
from umi.format import DEFAULT_BUDGET, END_OF_TURN, caller_prompt, parse_planner, planner_prompt
from umi.format.grammar import role_grammar
from umi.models.base import GenerationParams
from umi.models.llamacpp import LlamaCppEngine
from umi.schema import Turn

ROOT = Path(__file__).resolve().parents[1]
OOD = shared_data() / "alpha_umi/dataset/toolbench/test/out_of_domain.json"


def prompts(n: int) -> list[tuple[str, str, str]]:
    """(role, prompt, grammar) for the planner and the caller of the first `n` caller steps."""
    steps = [s for s in iter_steps(load_trajectories(OOD).items) if s.route == "caller"][:n]
    out = []
    for s in steps:
        thought = parse_planner(s.planner).thought
        history = [*s.history, Turn.model_validate({"from": "assistant", "value": thought})]
        out.append(
            ("planner", planner_prompt(s.tools, s.history, budget=DEFAULT_BUDGET), role_grammar("planner", s.tools))
        )
        out.append(
            ("caller", caller_prompt(s.tools, history, thought, budget=DEFAULT_BUDGET), role_grammar("caller", s.tools))
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=6, help="Caller steps (each gives a planner and a caller prompt).")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/constraint_overhead.md")
    args = ap.parse_args()
    cases = prompts(args.prompts)
    engine = LlamaCppEngine("embedded", n_ctx=4096, n_threads=args.threads, role="bench")
    free = GenerationParams(max_new_tokens=args.max_new_tokens, stop=(END_OF_TURN,))
    cached = {"free": 0, "grammar": 0}
    prompt_tokens = {"free": 0, "grammar": 0}
    totals = {(role, way): [0, 0.0] for role in ("planner", "caller") for way in ("free", "grammar")}
    try:
        for i, (role, prompt, grammar) in enumerate(cases):
            # Prefill once (one slot holds one prompt): the measured calls below reuse it and only decode.
            engine.complete([prompt], GenerationParams(max_new_tokens=1), cache_key="bench")
            for r in range(args.rounds):
                for way in ("free", "grammar") if (i + r) % 2 == 0 else ("grammar", "free"):
                    params = free if way == "free" else replace(free, grammar=grammar)
                    c = engine.complete([prompt], params, cache_key="bench")[0]
                    totals[role, way][0] += c.new_tokens
                    totals[role, way][1] += c.seconds
                    cached[way] += c.cached_tokens
                    prompt_tokens[way] += c.prompt_tokens
                    print(f"{role} {i} round {r} {way}: {c.new_tokens} tokens, {c.seconds:.2f} s", flush=True)
    finally:
        engine.close()
    lines = [
        "# Decode cost of the role grammars on llama.cpp\n",
        f"Embedded SmolLM2-135M (Q4_1), llama.cpp via xllamacpp, {args.threads} thread(s); the planner and caller "
        f"prompts of the first {args.prompts} caller steps of `out_of_domain.json` (default prompt budget), greedy, "
        f"≤{args.max_new_tokens} new tokens, {args.rounds} rounds alternating the order. Prompts are cached before "
        "the measured calls, so a call's time is decode (constrained: plus the grammar's per-request setup). "
        "Training run paused (`/work/tools/exclusive`).\n",
        "| role | way | calls | new tokens | seconds | tokens/s |",
        "|---|---|--:|--:|--:|--:|",
    ]
    rates: dict[tuple[str, str], float] = {}
    calls = args.rounds * args.prompts
    for (role, way), (tokens, seconds) in totals.items():
        rates[role, way] = tokens / seconds if seconds else 0.0
        lines.append(f"| {role} | {way} | {calls} | {tokens} | {seconds:.2f} | {rates[role, way]:.1f} |")
    all_free = sum(totals[r, "free"][0] for r in ("planner", "caller")) / sum(
        totals[r, "free"][1] for r in ("planner", "caller")
    )
    all_gram = sum(totals[r, "grammar"][0] for r in ("planner", "caller")) / sum(
        totals[r, "grammar"][1] for r in ("planner", "caller")
    )
    lines.append("")
    for way in ("free", "grammar"):
        lines.append(f"- {way}: {cached[way]} of {prompt_tokens[way]} prompt tokens served from the cache")
    for role in ("planner", "caller"):
        ratio = rates[role, "grammar"] / rates[role, "free"] if rates[role, "free"] else 0.0
        lines.append(f"- {role}: constrained / free decode tokens/s = **{ratio:.3f}**")
    lines.append(f"- both roles: constrained / free decode tokens/s = **{all_gram / all_free:.3f}**")
    args.out.write_text(results_header() + "\n".join(lines) + "\n", encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
