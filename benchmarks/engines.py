"""Engines side by side on a real α-UMi planner prompt: prefill and decode speed, peak memory, per-role caches.

The speed runs turn llama.cpp's prompt cache and transformers' prefix cache off so both engines prefill in full.
Each engine runs in its own subprocess so its peak resident memory is its own. Prefill speed comes from a
1-token generation; decode speed from the extra time of a 64-token generation (the fastest of 3 runs of each).
Per-role caches: 4 successive
steps of one trajectory (a growing history), planner then caller each step (gold thoughts), on the shipped GLPFT
roles, on llama.cpp (the base requantized to Q8_0, umi's default; the shipped Q4_1 base; a merged Q8_0 model per
role; all with one slot per role; and the Q4_1 base with one slot for every role as before) and transformers (prefix
KV cache on and off): per role, prompt tokens cached vs prefilled, and whether the greedy texts match the uncached
run. The speed table also runs the shipped planner role (stage-1 + planner LoRAs at run time) on the Q4_1 and the
Q8_0 base, and as one merged Q8_0 model.

    python benchmarks/engines.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UMI_SHARED_DATA", ROOT.parent / "shared/data"))
OOD = SHARED / "alpha_umi/dataset/toolbench/test/out_of_domain.json"
NEW = 64
REPEATS = 3  # speed runs per engine; the fastest counts
TARGET = 1500  # prompt tokens
CHAIN_NEW = 16  # new tokens per call of the per-role chain
CHAIN_KINDS = {
    "chain-llama.cpp-q8": "llama.cpp, Q8_0 base, one slot per role",
    "chain-llama.cpp-merged": "llama.cpp, merged Q8_0 model per role",
    "chain-llama.cpp": "llama.cpp, Q4_1 base, one slot per role",
    "chain-llama.cpp-one-slot": "llama.cpp, one slot for every role",
    "chain-transformers": "transformers, prefix cache per role",
    "chain-transformers-nocache": "transformers, no prefix cache",
}


def chain_prompts() -> list[list[str]]:
    """(role, prompt) of 4 steps of one trajectory: the planner's prompt, then the caller's with the gold thought."""
    from umi.data import iter_steps, load_trajectories
    from umi.format import caller_prompt, parse_planner, planner_prompt
    from umi.schema import Turn

    by_traj: dict[int, list] = {}
    for s in iter_steps(load_trajectories(OOD).items):
        by_traj.setdefault(s.traj, []).append(s)
    chain = next(v for v in by_traj.values() if sum(s.route == "caller" for s in v[:4]) == 4)[:4]
    calls = []
    for s in chain:
        thought = parse_planner(s.planner).thought
        hist = [*s.history, Turn.model_validate({"from": "assistant", "value": s.planner})]
        calls += [["planner", planner_prompt(s.tools, s.history)], ["caller", caller_prompt(s.tools, hist, thought)]]
    return calls


def run_chain(kind: str, calls: list[list[str]]) -> dict[str, Any]:
    """The chain on the shipped roles; per role: prompt, cached and prefilled tokens, seconds; and the texts."""
    from umi.models.base import GenerationParams
    from umi.models.build import bind_roles
    from umi.models.role_config import llamacpp_manifest_config, manifest_config
    from umi.models.roles import trained_roles_dir

    manifest = trained_roles_dir()
    assert manifest is not None, "the per-role chain needs the shipped GLPFT roles"
    if kind.endswith("merged"):
        from _static_subset import merged_roles

        roles = merged_roles(manifest, os.cpu_count() or 1)
    elif kind.startswith("chain-llama.cpp"):
        rc = llamacpp_manifest_config(manifest, n_ctx=8192, base_quant="Q8_0" if kind.endswith("q8") else None)
        if kind.endswith("one-slot"):
            rc.config["engines"]["base"]["slots"] = []
        roles = bind_roles(rc)
    else:
        rc = manifest_config(manifest)
        rc.config["engines"]["lora"]["prefix_cache"] = not kind.endswith("nocache")
        roles = bind_roles(rc)
    params = GenerationParams(max_new_tokens=CHAIN_NEW)
    per_role: dict[str, dict[str, float]] = {}
    texts = []
    start = time.perf_counter()
    for role, prompt in calls:
        c = roles.get(role).complete([prompt], params)[0]
        t = per_role.setdefault(role, {"prompt": 0, "cached": 0, "prefilled": 0, "seconds": 0.0})
        t["prompt"] += c.prompt_tokens
        t["cached"] += c.cached_tokens
        t["prefilled"] += c.prefilled_tokens
        t["seconds"] += c.seconds
        texts.append(c.text)
    return {"seconds": time.perf_counter() - start, "roles": per_role, "texts": texts}


def prompts() -> tuple[str, list[list[str]]]:
    """One ~1,500-token planner prompt, and the per-role chain of a growing history."""
    from transformers import AutoTokenizer

    from umi.data import iter_steps, load_trajectories
    from umi.format import planner_prompt
    from umi.models.hf import resolve_model_dir

    tok = AutoTokenizer.from_pretrained(resolve_model_dir("embedded"))
    steps = iter_steps(load_trajectories(OOD).items)
    near = sorted(steps, key=lambda s: abs(len(planner_prompt(s.tools, s.history)) - 5000))[:50]
    one = min(near, key=lambda s: abs(len(tok(planner_prompt(s.tools, s.history)).input_ids) - TARGET))
    return planner_prompt(one.tools, one.history), chain_prompts()


def run_engine(kind: str, prompts_file: Path) -> dict[str, Any]:
    from umi.models.base import GenerationParams

    if kind in CHAIN_KINDS:
        return run_chain(kind, json.loads(prompts_file.read_text())[1])
    start = time.perf_counter()
    engine: Any
    adapter = None
    if kind == "transformers":
        from umi.models.hf import TransformersEngine

        engine = TransformersEngine("embedded", prefix_cache=False)  # full prefills, as llama.cpp's below
    elif kind == "llama.cpp":
        from umi.models.llamacpp import LlamaCppEngine

        engine = LlamaCppEngine("embedded", cache_prompt=False, n_ctx=8192)
    else:  # the shipped planner role: run-time LoRAs on the Q4_1 base, or its merged Q8_0 model
        from umi.models.llamacpp import LlamaCppEngine
        from umi.models.role_config import llamacpp_manifest_config
        from umi.models.roles import trained_roles_dir

        manifest = trained_roles_dir()
        assert manifest is not None, "the planner rows need the shipped GLPFT roles"
        if kind == "llama.cpp-planner-merged":
            from umi.models.gguf_merge import cached_merged_gguf

            spec = llamacpp_manifest_config(manifest, base_quant=None).config["engines"]["base"]
            stack = [spec["loras"]["stage1"], spec["loras"]["planner"]]
            engine = LlamaCppEngine(str(cached_merged_gguf("embedded", stack)), cache_prompt=False, n_ctx=8192)
        else:
            quant = "Q8_0" if kind.endswith("q8") else None
            spec = llamacpp_manifest_config(manifest, base_quant=quant).config["engines"]["base"]
            engine = LlamaCppEngine(
                spec["model"], cache_prompt=False, n_ctx=8192, loras=spec["loras"], base_loras=spec["base_loras"]
            )
            adapter = "planner"
    load = time.perf_counter() - start
    prompt, _ = json.loads(prompts_file.read_text())  # built by the parent: no tokenizer in this process
    engine.complete(["warm up"], GenerationParams(max_new_tokens=2), adapter=adapter)
    # The fastest of REPEATS runs each: decode time is the difference of two prefill-dominated runs, so run-to-run
    # noise in one prefill would swamp it. (With transformers' prefix cache on, the 64-token run reused the 1-token
    # run's prefill and decode read 510 tok/s on the AMX machine: the cache is off above.)
    ones, fulls = [], []
    for r in range(REPEATS):
        pad = " " * (2 * r + 1)  # a new prompt each time: no cache hit
        ones.append(engine.complete([prompt + pad], GenerationParams(max_new_tokens=1), adapter=adapter)[0])
        fulls.append(engine.complete([prompt + pad + " "], GenerationParams(max_new_tokens=NEW), adapter=adapter)[0])
    one, full = min(ones, key=lambda c: c.seconds), min(fulls, key=lambda c: c.seconds)
    decode_s = max(1e-9, full.seconds - one.seconds)
    return {
        "load_seconds": load,
        "prompt_tokens": one.prompt_tokens,
        "prefill_tok_s": one.prompt_tokens / one.seconds,
        "new_tokens": full.new_tokens,
        "decode_tok_s": (full.new_tokens - 1) / decode_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def header() -> list[str]:
    """The command line and the machine load, first in every results file."""
    from _results import results_header

    return [results_header().rstrip("\n"), ""]


def chain_lines(results: dict[str, Any]) -> list[str]:
    """The per-role table: each chain kind's cached vs prefilled tokens per role, time, and text agreement."""
    base_ll, base_tf = results["chain-llama.cpp-one-slot"], results["chain-transformers-nocache"]
    lines = [
        "",
        "## Per-role prompt caches: 4 steps of one trajectory, planner then caller each step",
        "",
        f"Shipped GLPFT roles, gold thoughts, ≤{CHAIN_NEW} new tokens per call, greedy; 8 calls alternating roles.",
        "",
        "| engine | role | prompt tokens | cached | prefilled | model seconds | same text as |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for kind, label in CHAIN_KINDS.items():
        r = results[kind]
        ref = base_ll if kind.startswith("chain-llama.cpp") else base_tf
        same = sum(a == b for a, b in zip(r["texts"], ref["texts"], strict=True))
        ref_label = CHAIN_KINDS[
            "chain-llama.cpp-one-slot" if kind.startswith("chain-llama.cpp") else "chain-transformers-nocache"
        ]
        for role, t in r["roles"].items():
            lines.append(
                f"| {label} | {role} | {t['prompt']} | {t['cached']} | {t['prefilled']} | {t['seconds']:.1f} | "
                f"{same} / {len(r['texts'])} calls: {ref_label} |"
            )
    ll, tf = results["chain-llama.cpp"], results["chain-transformers"]
    q8, mg = results["chain-llama.cpp-q8"], results["chain-llama.cpp-merged"]

    def prefilled(r: dict[str, Any]) -> int:
        return int(sum(t["prefilled"] for t in r["roles"].values()))

    lines += [
        "",
        f"- llama.cpp: one slot per role prefills **{prefilled(base_ll) / max(1, prefilled(ll)):.2f}× fewer** prompt "
        f"tokens than one slot for every role; the chain takes {base_ll['seconds'] / ll['seconds']:.2f}× less time.",
        f"- llama.cpp, one slot per role: the Q8_0 base takes **{ll['seconds'] / q8['seconds']:.2f}× less time** than "
        f"the Q4_1 base, merged Q8_0 models {ll['seconds'] / mg['seconds']:.2f}× (prefilling {prefilled(q8)}, "
        f"{prefilled(mg)} and {prefilled(ll)} tokens).",
        f"- transformers: the per-role prefix cache prefills **{prefilled(base_tf) / max(1, prefilled(tf)):.2f}× "
        f"fewer** prompt tokens than no cache; the chain takes {base_tf['seconds'] / tf['seconds']:.2f}× less time.",
    ]
    return lines


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--engine":
        print(json.dumps(run_engine(sys.argv[2], Path(sys.argv[3]))))
        return
    import tempfile

    prompts_file = Path(tempfile.mkdtemp()) / "prompts.json"
    prompts_file.write_text(json.dumps(prompts()))

    head = header()
    load_before = os.getloadavg()[0]
    results = {}
    planner_kinds = ("llama.cpp-planner-q4", "llama.cpp-planner-q8", "llama.cpp-planner-merged")
    for kind in ("llama.cpp", *planner_kinds, "transformers", *CHAIN_KINDS):
        out = subprocess.run(
            [sys.executable, __file__, "--engine", kind, str(prompts_file)], capture_output=True, text=True, check=True
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        print(kind, results[kind], flush=True)
    lc, tf = results["llama.cpp"], results["transformers"]
    pl, pq, pm = (results[k] for k in planner_kinds)
    lines = [
        *head,
        "# Engines: embedded SmolLM2-135M on this 2-core CPU",
        "",
        f"One real planner prompt from `out_of_domain.json` ({lc['prompt_tokens']} tokens), then up to {NEW} new "
        f"tokens (written: {', '.join(str(r['new_tokens']) for r in results.values() if 'new_tokens' in r)}); greedy; "
        f"each engine in its own process; the fastest of {REPEATS} runs of each. Generated by `benchmarks/engines.py`.",
        "",
        "| engine | weights | load s | prefill tok/s | decode tok/s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
        f"| llama.cpp (xllamacpp) | Q4_1 GGUF | {lc['load_seconds']:.1f} | {lc['prefill_tok_s']:.0f} | "
        f"{lc['decode_tok_s']:.1f} | {lc['peak_rss_mib']:.0f} |",
        f"| llama.cpp, shipped planner | Q4_1 GGUF + stage-1 and planner LoRAs at run time | "
        f"{pl['load_seconds']:.1f} | {pl['prefill_tok_s']:.0f} | {pl['decode_tok_s']:.1f} | {pl['peak_rss_mib']:.0f} |",
        f"| llama.cpp, shipped planner | Q8_0 GGUF (requantized) + the same LoRAs at run time (umi's default) | "
        f"{pq['load_seconds']:.1f} | {pq['prefill_tok_s']:.0f} | {pq['decode_tok_s']:.1f} | {pq['peak_rss_mib']:.0f} |",
        f"| llama.cpp, shipped planner | one merged Q8_0 GGUF (base + both adapters) | {pm['load_seconds']:.1f} | "
        f"{pm['prefill_tok_s']:.0f} | {pm['decode_tok_s']:.1f} | {pm['peak_rss_mib']:.0f} |",
        f"| transformers | fp32 (dequantized GGUF) | {tf['load_seconds']:.1f} | {tf['prefill_tok_s']:.0f} | "
        f"{tf['decode_tok_s']:.1f} | {tf['peak_rss_mib']:.0f} |",
        "",
        f"- llama.cpp / transformers: prefill **{lc['prefill_tok_s'] / tf['prefill_tok_s']:.2f}×**, decode "
        f"**{lc['decode_tok_s'] / tf['decode_tok_s']:.2f}×**, peak memory "
        f"**{lc['peak_rss_mib'] / tf['peak_rss_mib']:.2f}×**.",
        f"- shipped planner against the Q4_1 base with run-time LoRAs: Q8_0 base prefill "
        f"**{pq['prefill_tok_s'] / pl['prefill_tok_s']:.2f}×**, "
        f"decode **{pq['decode_tok_s'] / pl['decode_tok_s']:.2f}×**; "
        f"merged Q8_0 prefill {pm['prefill_tok_s'] / pl['prefill_tok_s']:.2f}×, decode "
        f"{pm['decode_tok_s'] / pl['decode_tok_s']:.2f}× (a merged binding holds a model per role).",
        *chain_lines(results),
        "",
        f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores, shared with other "
        "jobs: absolute speeds vary run to run; the ratios were measured in the same run).",
    ]
    (ROOT / "benchmarks/results/engines.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
