"""Static evaluation with and without the role grammars (issue 12), on the seeded 100-step subset of the split.

The bare embedded base and the shipped roles, each constrained and not, plus two no-model baselines (the first tool
with {}, the floor; the best BM25 match of the query, `lexical`); the five metrics, the valid-call rate and the
share of planner outputs with a route marker. Run folders are shared with
`glpft_small.py` (see `_static_subset.py`), so the command resumes and a row both tables show is computed once.

    python benchmarks/constrained_static.py                     # run (or resume) every config, then write the table
    python benchmarks/constrained_static.py --configs glpft-constrained
    python benchmarks/constrained_static.py --report-only       # only score the folders that exist
"""

from __future__ import annotations

from _static_subset import (
    FIRST_TOOL,
    FIRST_UNCALLED,
    GLPFT_FP32,
    LEXICAL,
    ROOT,
    ZERO_SHOT,
    Config,
    engine_words,
    run_cli,
    table_lines,
    write_report,
)

#: Source `glpft-epoch1`: the roles shipped until the second epoch (one epoch of every row set), kept in
#: `benchmarks/roles/smollm2-glpft-epoch1`; `embedded-glpft`: the shipped roles (planner and caller a second epoch
#: from those, `umi train glpft --continue-from`); `glpft-planner-half`: the shipped roles with the planner retrained
#: anew on the same stage 1 with LoRA on the upper half of the layers (`--fresh planner --lora-top-fraction 0.5`),
#: kept in `benchmarks/roles/smollm2-glpft-planner-half`; `glpft-planner-w5`: the same with the planner retrained
#: anew on the upper quarter with API-name emphasis (`--fresh planner --api-name-weight 5`), kept in
#: `benchmarks/roles/smollm2-glpft-planner-w5`; `glpft-ul10`: planner and caller retrained anew on the same stage 1
#: with API-name emphasis 5 and unlikelihood 10 against the previous call (`--fresh planner --fresh caller
#: --api-name-weight 5 --unlikelihood 10`), kept in `benchmarks/roles/smollm2-glpft-ul10`; `gemma-single`: stage 1 of
#: a GLPFT run on Gemma 3 270M (`umi train glpft --base gemma3-270m`), packaged as a single-LLM run, kept in
#: `benchmarks/roles/gemma3-single`; `gemma-glpft`: that run's roles (planner, caller, summarizer on its stage 1), kept
#: in `benchmarks/roles/gemma3-glpft`; `glpft-qorder`: the shipped roles' stage 1 and summarizer with planner and
#: caller trained anew on rows whose tools are listed by relevance to the query (`umi data build --tool-order
#: query`; `--continue-from … --fresh planner --fresh caller --keep summarizer`), kept in
#: `benchmarks/roles/smollm2-glpft-qorder`; `multitask`: one adapter trained on the union of the three roles' rows
#: from the base (`umi train multi-task --preset cpu-epoch`), kept in `benchmarks/roles/smollm2-multitask`;
#: `one-stage`: planner, caller and summarizer each trained from the base on their own rows, no stage 1 (`umi train
#: one-stage --preset cpu-epoch`), kept in `benchmarks/roles/smollm2-one-stage`; `glpft-rank`: the shipped roles'
#: stage 1 and summarizer with planner and caller trained anew with name ranking (`--fresh planner --fresh caller
#: --name-rank 50` for the planner, 10 for the caller), kept in `benchmarks/roles/smollm2-glpft-rank`; `glpft-hint`:
#: the shipped roles with the planner trained anew on rows built with the planner hint (`umi data build --budget 0
#: --planner-hint`; `--continue-from … --fresh planner --keep caller --keep summarizer`), kept in
#: `benchmarks/roles/smollm2-glpft-hint`.
CONFIGS = [
    FIRST_TOOL,
    FIRST_UNCALLED,
    LEXICAL,
    Config(
        "glpft2-follow-q8",
        "embedded-glpft",
        True,
        "shipped GLPFT roles (planner, caller 2 epochs), the caller's grammar limited to the APIs its planner's "
        "thought names (planner's turns kept from the row without it), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        follow_thought=True,
        planner_from="glpft2-constrained-q8",
    ),
    Config(
        "glpft2-gold-thought-follow-q8",
        "embedded-glpft",
        True,
        "diagnostic: shipped caller (2 epochs) given the gold thought, its grammar limited to the APIs the thought "
        "names, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        gold_thought=True,
        follow_thought=True,
    ),
    Config(
        "glpft-hint-follow-q8",
        "glpft-hint",
        True,
        "GLPFT roles with the planner-hint planner, the caller's grammar limited to the APIs the thought names "
        "(planner's turns kept likewise), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        follow_thought=True,
        planner_from="glpft-hint-constrained-q8",
    ),
    Config(
        "glpft-hint-constrained-q8",
        "glpft-hint",
        True,
        "GLPFT roles, planner 1 epoch anew on rows with the planner hint (the APIs not called yet after the history, "
        "as it is then shown; caller and summarizer the shipped ones), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "onestage-constrained-q8",
        "one-stage",
        True,
        "multi-LLM one-stage: planner, caller and summarizer each 1 epoch from the base (no stage 1), constrained, "
        "Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft-rank-constrained-q8",
        "glpft-rank",
        True,
        "GLPFT roles, planner and caller 1 epoch with name ranking (weights 50 and 10), constrained, Q8_0 base "
        "(llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft-qorder-constrained-q8",
        "glpft-qorder",
        True,
        "GLPFT roles, planner and caller 1 epoch on rows with the tools listed by relevance to the query (as they "
        "are then shown), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft-qorder-gold-thought-q8",
        "glpft-qorder",
        True,
        "diagnostic: that caller given the gold thought, tools by relevance, Q8_0 base (llama.cpp)",
        gold_thought=True,
        quant="Q8_0",
    ),
    Config(
        "glpft-qorder-short1-q8",
        "glpft-qorder",
        True,
        "those GLPFT roles (tools by relevance), shortlist of 1: the retriever's choice of API, the caller's "
        "arguments (planner's turns kept likewise), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        shortlist=1,
        planner_from="glpft-qorder-constrained-q8",
    ),
    Config(
        "glpft-qorder-short2-q8",
        "glpft-qorder",
        True,
        "those GLPFT roles (tools by relevance), the caller's grammar limited to the 2 tools most relevant to the "
        "query not called yet (a retriever shortlist; the planner's turns kept from the row without it), "
        "constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        shortlist=2,
        planner_from="glpft-qorder-constrained-q8",
    ),
    Config(
        "glpft-qorder-short3-q8",
        "glpft-qorder",
        True,
        "those GLPFT roles (tools by relevance), shortlist of 3 tools (planner's turns kept likewise), constrained, "
        "Q8_0 base (llama.cpp)",
        quant="Q8_0",
        shortlist=3,
        planner_from="glpft-qorder-constrained-q8",
    ),
    Config(
        "glpft2-short1-q8",
        "embedded-glpft",
        True,
        "shipped GLPFT roles (2 epochs), shortlist of 1: the retriever's API, the caller's arguments (planner's turns "
        "kept likewise), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        shortlist=1,
        planner_from="glpft2-constrained-q8",
    ),
    Config(
        "glpft2-short2-q8",
        "embedded-glpft",
        True,
        "shipped GLPFT roles (planner, caller 2 epochs), caller's grammar limited to the 2 tools most relevant to the "
        "query not called yet (planner's turns kept from the row without it), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        shortlist=2,
        planner_from="glpft2-constrained-q8",
    ),
    Config(
        "glpft2-short3-q8",
        "embedded-glpft",
        True,
        "shipped GLPFT roles (2 epochs), shortlist of 3 tools (planner's turns kept likewise), constrained, Q8_0 base "
        "(llama.cpp)",
        quant="Q8_0",
        shortlist=3,
        planner_from="glpft2-constrained-q8",
    ),
    Config(
        "single-short1-q8",
        "embedded-glpft",
        True,
        "single-LLM (the shipped stage 1 as backbone), its grammar limited to the 1 tool most relevant to the query "
        "not called yet, constrained, Q8_0 base (llama.cpp)",
        single=True,
        quant="Q8_0",
        shortlist=1,
    ),
    Config(
        "single-short2-q8",
        "embedded-glpft",
        True,
        "single-LLM (the shipped stage 1 as backbone), its grammar limited to the 2 tools most relevant to the query "
        "not called yet, constrained, Q8_0 base (llama.cpp)",
        single=True,
        quant="Q8_0",
        shortlist=2,
    ),
    Config(
        "multitask-constrained-q8",
        "multitask",
        True,
        "multi-task: one SmolLM2 adapter for the three roles (1 epoch of their rows together, from the base), "
        "constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "gemma-glpft-constrained-q8",
        "gemma-glpft",
        True,
        "GLPFT roles on Gemma 3 270M (1 epoch per row set), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "gemma-single-constrained-q8",
        "gemma-single",
        True,
        "single-LLM on Gemma 3 270M (its GLPFT stage 1 as backbone, 1 epoch), constrained, Q8_0 base (llama.cpp)",
        single=True,
        quant="Q8_0",
    ),
    Config(
        "glpft-ul-constrained-q8",
        "glpft-ul10",
        True,
        "GLPFT roles, planner and caller 1 epoch with API-name emphasis 5 and unlikelihood 10 against the previous "
        "call, constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft-pw5-constrained-q8",
        "glpft-planner-w5",
        True,
        "GLPFT roles, planner 1 epoch with API-name emphasis (weight 5), caller 2 epochs, constrained, Q8_0 base "
        "(llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft-ph-constrained-q8",
        "glpft-planner-half",
        True,
        "GLPFT roles, planner 1 epoch with LoRA on the upper half of the layers, caller 2 epochs, constrained, "
        "Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft2-qorder-constrained-q8",
        "embedded-glpft",
        True,
        "shipped GLPFT roles (trained on the given tool order) shown the tools most relevant to the query first, "
        "constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
        tool_order="query",
    ),
    Config(
        "glpft2-constrained-q8",
        "embedded-glpft",
        True,
        "shipped GLPFT roles (planner, caller 2 epochs), constrained, Q8_0 base (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "single-constrained-q8",
        "embedded-glpft",
        True,
        "single-LLM (the shipped stage 1 as backbone), constrained, Q8_0 base (llama.cpp)",
        single=True,
        quant="Q8_0",
    ),
    Config(
        "glpft2-gold-thought-q8",
        "embedded-glpft",
        True,
        "diagnostic: shipped caller (2 epochs) given the gold thought, Q8_0 base (llama.cpp)",
        gold_thought=True,
        quant="Q8_0",
    ),
    Config("glpft-constrained", "glpft-epoch1", True, "GLPFT roles, 1 epoch, constrained"),
    Config(
        "glpft-constrained-q8",
        "glpft-epoch1",
        True,
        "GLPFT roles, 1 epoch, constrained, base requantized to Q8_0 (llama.cpp)",
        quant="Q8_0",
    ),
    Config(
        "glpft-constrained-merged",
        "glpft-epoch1",
        True,
        "GLPFT roles, 1 epoch, constrained, merged Q8_0 model per role (llama.cpp)",
        quant="merged-Q8_0",
    ),
    GLPFT_FP32,
    ZERO_SHOT[0],
    Config("glpft-free", "glpft-epoch1", False, "GLPFT roles, 1 epoch, unconstrained"),
    ZERO_SHOT[1],
]


def main() -> None:
    args, keys, results = run_cli(__doc__.splitlines()[0], CONFIGS, "constrained_static.md")
    lines = [
        "# Static evaluation, constrained and not (issue 12)\n",
        f"The seeded {len(keys)}-step subset (`{args.steps.relative_to(ROOT)}`, seed 0) of the test part of "
        f"`umi data split --by-tools --seed 0` of `out_of_domain.json`; {engine_words(args)}. ×100, paper-exact "
        "(`umi eval score`). *valid calls*: predicted calls naming one of the step's exact API names with a JSON "
        "object as input, over all predicted calls. *planner marker*: planner outputs with a `Next:` route marker. "
        f"A row marked *first N of {len(keys)}* did not finish in the time given; its numbers cover only those "
        "steps.\n",
        *table_lines(CONFIGS, results, len(keys), ["predicted calls"], lambda c, r: [str(r["predicted_calls"])]),
        "",
        "The summarizer's grammar gained its end of turn at commit d8591a2 (an answer may end with `</s>`; before, "
        "a constrained answer ran to the token cap): the constrained rows whose predictions were made before it "
        "(by the dates below, all constrained rows made by 2026-12-03 10:30 UTC) used the earlier summarizer "
        "grammar. Only conclusion steps' answers, so only ROUGE-L, can differ.",
    ]
    title = f"Static evaluation, split test part, seeded {len(keys)}-step subset"
    write_report(args, lines, CONFIGS, results, title)


if __name__ == "__main__":
    main()
