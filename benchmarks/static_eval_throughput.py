"""Steps per second of `umi eval static` with the prompt cache on vs off: same steps, same roles, one run.

Not the reference implementation's way (HF `generate`, sampling, three fine-tuned models): both sides are umi's own
`run_static` on llama.cpp, greedy, one trajectory at a time, steps in order. "Cache off" sends every request with
`cache_prompt: false`, so each call prefills its whole prompt, as the reference's `generate` did; "cache on" is
the default: one server slot per role, each role's call prefilling only what is new since its last prompt.
`--one-slot` adds the cache on a server with one slot for every role (the layout before per-role slots);
`--per-role` adds a slot per role even where roles run the same weights (what `bind_roles` pools since
`share_caches`; compare on `--roles embedded`, whose roles have no adapters).
Constrained (role grammars), as `umi eval static` runs by default; `--free` runs unconstrained.
The script asserts that every way wrote the same predictions (greedy), and fails if not.

    python benchmarks/static_eval_throughput.py [--steps 50] [--max-new-tokens 32] [--roles embedded-glpft]
        [--one-slot] [--per-role] [--free] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import results_header

from umi.evaluate.static import run_static
from umi.format import parse_step_text
from umi.models.binding import Roles
from umi.models.build import bind_roles
from umi.models.role_config import TRAINED_NAME, RoleConfig, llamacpp_manifest_config, packaged_config, read_toml
from umi.models.roles import trained_roles_dir
from umi.models.slots import SlotTable

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UMI_SHARED_DATA", ROOT.parent / "shared/data"))
OOD = SHARED / "alpha_umi/dataset/toolbench/test/out_of_domain.json"


ON = "prompt cache on, one slot per role (pooled where roles share weights)"
PER_ROLE = "prompt cache on, one slot per role even where roles share weights"


def role_config(name: str) -> RoleConfig:
    if name == TRAINED_NAME:
        manifest = trained_roles_dir()
        if manifest is None:
            raise SystemExit(f"{TRAINED_NAME}: this checkout ships no trained roles; pass --roles embedded")
        return llamacpp_manifest_config(manifest)
    path = packaged_config(name)
    return RoleConfig(read_toml(path), root=path.parent, source=str(path))


def build(
    name: str,
    *,
    cache_prompt: bool,
    one_slot: bool = False,
    per_role: bool = False,
    options: dict[str, Any] | None = None,
) -> Roles:
    """The roles with every llama.cpp engine table set to this way's cache settings (and `options`, any other
    engine-table keys, e.g. `speculative`). `per_role`: undo the pooling of roles that share weights
    (`share_caches`), regrouping the same number of server slots one per role."""
    rc = role_config(name)
    for table in rc.config["engines"].values():
        table["cache_prompt"] = cache_prompt
        table.update(options or {})
        if one_slot:  # otherwise `bind_roles` gives the slots: one per role, pooled where roles share weights
            table["slots"] = []
    roles = bind_roles(rc)
    if per_role:
        bound = roles.bound()
        for role, binding in bound.items():
            engine = binding.engine
            names = [r for r in bound if bound[r].engine is engine]
            slots = getattr(engine, "slots", None)
            if slots is not None and slots.keys != names:
                engine.slots = SlotTable(names, slots.lanes)  # type: ignore[attr-defined]
            binding.cache_key = role
    return roles


def one_way(
    name: str, steps: int, max_new_tokens: int, constrain: bool, **settings: Any
) -> tuple[float, float, dict[str, Any], list[str]]:
    """Wall seconds and CPU seconds of this process (model load included), per-role costs and the predictions.

    CPU seconds are reported beside wall time because the machine is shared: other jobs' load (and their pausing
    of other processes) stretches wall time, not the CPU time the work itself took."""
    start, cpu = time.perf_counter(), time.process_time()
    roles = build(name, **settings)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_static(OOD, roles, tmp, limit=steps, batch_size=1, max_new_tokens=max_new_tokens, constrain=constrain)
        preds = [json.loads(line)["prediction"] for line in run.predictions.read_text().splitlines()]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    roles.close()
    return seconds, cpu, run.costs or {}, preds


def describe_difference(label: str, index: int, off: str, on: str, base: str = "cache off") -> str:
    """One Markdown line: where two predictions of the same step part (`off`: the `base` way's), and whether the
    plan or action changed."""
    at = next((k for k, (x, y) in enumerate(zip(off, on, strict=False)) if x != y), min(len(off), len(on)))
    a, b = parse_step_text(off), parse_step_text(on)
    same = "same plan and action" if (a.plan, a.action) == (b.plan, b.action) else "plan or action differs"
    return (
        f"- {label}, step {index}: from character {at} of {len(off)}: {base} `{off[at : at + 40]!r}` vs "
        f"`{on[at : at + 40]!r}`; off {a.plan} / {a.action}, on {b.plan} / {b.action} ({same})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50, help="The first N steps of out_of_domain.json (the issue: 50).")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--roles", default=TRAINED_NAME, help="shipped GLPFT roles (default) or a packaged config")
    ap.add_argument("--one-slot", action="store_true", help="also the cache on one slot shared by every role")
    ap.add_argument("--free", action="store_true", help="unconstrained decoding (default: role grammars on)")
    ap.add_argument(
        "--per-role", action="store_true", help="also a slot per role where roles share weights (no pooling)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/static_eval_throughput.md")
    args = ap.parse_args()
    head = [results_header().rstrip("\n"), ""]
    ways: dict[str, dict[str, Any]] = {
        "prompt cache off": {"cache_prompt": False},
        ON: {"cache_prompt": True},
    }
    if args.one_slot:
        ways["prompt cache on, one slot for every role"] = {"cache_prompt": True, "one_slot": True}
    if args.per_role:
        ways[PER_ROLE] = {"cache_prompt": True, "per_role": True}
    results: dict[str, tuple[float, float, dict[str, Any], list[str]]] = {}
    for label, settings in ways.items():
        results[label] = one_way(args.roles, args.steps, args.max_new_tokens, not args.free, **settings)
        print(f"{label}: {results[label][0]:.1f} s", flush=True)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    off_seconds, off_cpu, _, off_preds = results["prompt cache off"]
    differ = {
        label: sum(a != b for a, b in zip(preds, off_preds, strict=True)) for label, (_, _, _, preds) in results.items()
    }
    differences = []
    for label, (_, _, _, preds) in results.items():
        for i, (a, b) in enumerate(zip(off_preds, preds, strict=True)):
            if a != b:
                differences.append(describe_difference(label, i, a, b))
    rows = []
    for label, (seconds, cpu, costs, _) in results.items():
        prompt = sum(int(c["prompt_tokens"]) for c in costs.values())
        cached = sum(int(c["cached_tokens"]) for c in costs.values())
        rows.append(
            f"| {label} | {seconds:.1f} | {args.steps / seconds:.3f} | {off_seconds / seconds:.2f}× | {cpu:.1f} | "
            f"{off_cpu / cpu:.2f}× | {prompt} | {cached} | {prompt - cached} |"
        )
    on = results[ON]
    lines = [
        *head,
        "# Static evaluation throughput: prompt cache on vs off",
        "",
        f"The first {args.steps} steps of `out_of_domain.json`, roles `{args.roles}` on llama.cpp (one base), "
        f"greedy, {'unconstrained' if args.free else 'constrained'}, ≤{args.max_new_tokens} new tokens "
        "per call, `run_static` one trajectory at a time with steps in order, 2-core CPU. Every way in this one "
        "process, one after another. This compares umi with its prompt cache on and off; it is not the reference "
        "implementation (HF `generate`, sampling, three fine-tuned models).",
        "",
        "| way | wall s | steps/s | vs cache off | CPU s | vs cache off (CPU) | prompt tokens | cached | prefilled |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"**Prompt cache on / off: {off_seconds / on[0]:.2f}× the steps per second ({off_cpu / on[1]:.2f}× in CPU "
        "time).** Predictions identical to the "
        "cache-off run: " + ", ".join(f"{label} {args.steps - n} / {args.steps}" for label, n in differ.items()) + ".",
        "",
        *(
            [
                f"**Pooled / per-role slots (roles on the same weights): {results[PER_ROLE][0] / on[0]:.2f}× the steps "
                f"per second ({results[PER_ROLE][1] / on[1]:.2f}× in CPU time).**",
                "",
            ]
            if PER_ROLE in results
            else []
        ),
        *(
            [
                "",
                "Where a prediction differs from the cache-off run (first differing character; parsed plan and action "
                "of each):",
                "",
                *differences,
                "",
                "llama.cpp does not promise bit-identical logits for a prompt prefilled in one pass and one continued "
                "from its cache (its server documents this for `cache_prompt`: batch sizes differ), so a near-tie "
                "can flip a greedy token; the script fails when any prediction differs.",
            ]
            if differences
            else []
        ),
        "",
        f"Load when it finished: `{load_after}`.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if any(differ.values()):
        raise SystemExit(f"greedy predictions differ from the cache-off run: {differ}")


if __name__ == "__main__":
    main()
