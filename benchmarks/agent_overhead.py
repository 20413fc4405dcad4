"""umi's own per-step overhead, and multi-LLM vs single-LLM end-to-end time with the embedded model.

Part 1: a scripted engine with a fixed latency plays planner and caller; the agent's wall time minus the engine's
time is umi's overhead per step (prompt building, parsing, tool dispatch, trace writing). Part 2: the same tasks
run by the multi-LLM agent and by the single-LLM agent on the same roles (by default the shipped GLPFT roles on
one llama.cpp base: planner/caller/summarizer LoRAs, backbone = stage 1), same step and token limits; the ratios
of their wall times and of their prefilled prompt tokens. Both run constrained (role grammars), as `umi run` does
by default; `--free` runs both unconstrained. `--one-slot` adds the multi-LLM run on a server with
one slot for every role (the layout before per-role slots), measured in the same run. `--engine transformers`
binds the shipped roles on transformers instead (fp32, one base, adapters switched per call, per-role prefix
caches) and adds the multi-LLM run with cross-role layer sharing off (`umi.models.shared_layers`), written to
`agent_overhead_transformers.md`.

    python benchmarks/agent_overhead.py [--tasks 20] [--max-steps 3] [--max-new-tokens 128] [--roles embedded-glpft]
        [--engine llama.cpp|transformers] [--one-slot] [--free] [--skip-model]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import results_header

from umi.agent import MultiLLMAgent, SingleLLMAgent
from umi.data import load_trajectories
from umi.format import caller_text, planner_text
from umi.models import ScriptedEngine
from umi.models.base import COST_FIELDS
from umi.models.build import bind_roles
from umi.models.role_config import TRAINED_NAME, llamacpp_manifest_config, manifest_config, trained_roles_dir
from umi.models.roles import RoleBinding, Roles, load_roles
from umi.tools import ReplayCache

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UMI_SHARED_DATA", ROOT.parent / "shared/data"))
OOD = SHARED / "alpha_umi/dataset/toolbench/test/out_of_domain.json"
LATENCY = 0.005


def overhead(trajs, steps_per_task: int = 6) -> dict[str, float]:
    total_steps = 0
    wall = 0.0
    engine_time = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, traj in enumerate(trajs):
            name = traj.tool_names[0]
            planner = [planner_text("thinking about the next call", "caller")] * (steps_per_task - 1)
            planner.append(planner_text("done", "conclusion"))
            caller = [caller_text(name, json.dumps({"q": k})) for k in range(steps_per_task - 1)]
            roles = Roles(
                planner=RoleBinding(ScriptedEngine(planner, latency=LATENCY)),
                caller=RoleBinding(ScriptedEngine(caller, latency=LATENCY)),
                summarizer=RoleBinding(ScriptedEngine(["answer"], latency=LATENCY)),
            )
            cache = ReplayCache()
            for k in range(steps_per_task):
                cache.add(name, {"q": k}, '{"result": "' + "x" * 800 + '"}')
            agent = MultiLLMAgent(
                roles, traj.tools, cache, max_steps=steps_per_task, trace_path=Path(tmp) / f"{i}.jsonl"
            )
            start = time.perf_counter()
            ep = agent.run(traj.instruction)
            wall += time.perf_counter() - start
            engine_time += sum(c["seconds"] for c in ep.costs.values())
            total_steps += ep.steps
    return {
        "steps": total_steps,
        "overhead_ms_per_step": 1000 * (wall - engine_time) / total_steps,
        "engine_latency_ms": LATENCY * 1000,
    }


def bound_roles(name: str, *, one_slot: bool = False, engine: str = "llama.cpp", share: bool = True) -> Roles:
    """The roles to compare. `one_slot` builds the same engine with a single server slot for every role;
    `engine="transformers"` binds the shipped roles on transformers (`share`: cross-role layer sharing)."""
    if name == TRAINED_NAME:
        manifest = trained_roles_dir()
        if manifest is None:
            raise SystemExit(f"{TRAINED_NAME}: this checkout ships no trained roles; pass --roles embedded")
        if engine == "transformers":
            rc = manifest_config(manifest)
            rc.config["engines"]["lora"]["share_layers"] = share
            return bind_roles(rc)
        rc = llamacpp_manifest_config(manifest)
        if one_slot:
            rc.config["engines"]["base"]["slots"] = []
        return bind_roles(rc)
    if one_slot or engine != "llama.cpp":
        raise SystemExit("--one-slot and --engine transformers are only wired for the shipped roles")
    path = Path(name)
    if path.name == "manifest.json" or (path / "manifest.json").exists():  # a trained run, on llama.cpp
        return bind_roles(llamacpp_manifest_config(path if path.name == "manifest.json" else path / "manifest.json"))
    return load_roles(name)


def run_agents(roles: Roles, cls: Any, trajs, max_steps: int, max_new_tokens: int, constrain: bool) -> dict[str, Any]:
    """Wall time, steps and token counts of one agent kind over the tasks, in all and per role."""
    totals: dict[str, Any] = {
        "seconds": 0.0,
        "steps": 0,
        "calls": 0,
        "prompt_tokens": 0,
        "cached_tokens": 0,
        "prefilled_tokens": 0,
        "shared_tokens": 0,
        "roles": {},
    }
    start, cpu = time.perf_counter(), time.process_time()
    for traj in trajs:
        agent = cls(
            roles, traj.tools, ReplayCache(), max_steps=max_steps, max_new_tokens=max_new_tokens, constrain=constrain
        )
        ep = agent.run(traj.instruction)
        totals["steps"] += ep.steps
        for role, c in ep.costs.items():
            per_role = totals["roles"].setdefault(role, {})
            for k in COST_FIELDS:
                per_role[k] = per_role.get(k, 0) + c.get(k, 0)
                if k != "seconds" and k != "new_tokens":
                    totals[k] = totals.get(k, 0) + c.get(k, 0)
    totals["seconds"] = time.perf_counter() - start
    # CPU seconds beside wall time: the machine is shared, and other jobs' load stretches wall time only
    totals["cpu"] = time.process_time() - cpu
    return totals


def model_ratio(
    trajs,
    max_steps: int,
    max_new_tokens: int,
    roles_name: str,
    one_slot: bool,
    constrain: bool,
    engine: str,
    single_name: str | None = None,
) -> dict[str, Any]:
    """Multi-LLM and single-LLM runs on the same roles. On llama.cpp one binding serves both (the backbone has a
    slot of its own); on transformers each run gets a fresh binding, since cross-role sharing would otherwise let
    the single-LLM run borrow the multi-LLM run's cached prefixes of the same tasks. `single_name`: the single-LLM
    run's backbone from other roles (a multi-task model's backbone is not a trained single-LLM model)."""
    runs: list[tuple[str, Any, bool]] = [("multi", MultiLLMAgent, True), ("single", SingleLLMAgent, True)]
    if engine == "transformers":
        runs.append(("multi, no layer sharing", MultiLLMAgent, False))
    out: dict[str, Any] = {}
    roles: Roles | None = None
    for label, cls, share in runs:
        if label == "single" and single_name and single_name != roles_name:
            if roles is not None:
                roles.close()
            roles = bound_roles(single_name, engine=engine, share=share)
        elif roles is None or engine == "transformers":
            if roles is not None:
                roles.close()
            roles = bound_roles(roles_name, engine=engine, share=share)
        out[label] = run_agents(roles, cls, trajs, max_steps, max_new_tokens, constrain)
    if roles is not None:
        roles.close()
    if one_slot:
        old = bound_roles(roles_name, one_slot=True)
        out["multi, one slot"] = run_agents(old, MultiLLMAgent, trajs, max_steps, max_new_tokens, constrain)
        old.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--roles", default=TRAINED_NAME, help="roles for part 2 (default: the shipped GLPFT roles)")
    ap.add_argument("--one-slot", action="store_true", help="also run multi-LLM with one slot for every role")
    ap.add_argument("--free", action="store_true", help="unconstrained decoding (default: role grammars on)")
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--engine", choices=("llama.cpp", "transformers"), default="llama.cpp")
    ap.add_argument(
        "--single-roles", default=None, help="the single-LLM run's roles (default: --roles' backbone); llama.cpp only"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="result file (default: benchmarks/results/agent_overhead*.md)"
    )
    args = ap.parse_args()
    if args.single_roles and args.engine != "llama.cpp":
        raise SystemExit("--single-roles is wired for llama.cpp only")
    head = [results_header().rstrip("\n"), ""]
    trajs = load_trajectories(OOD).items[: args.tasks]
    o = overhead(trajs)
    lines = [
        *head,
        "# Agent overhead",
        "",
        "Generated by `benchmarks/agent_overhead.py` (2-core CPU).",
        "",
        f"- Scripted engine with {o['engine_latency_ms']:.0f} ms latency per call, {o['steps']} steps over "
        f"{len(trajs)} α-UMi test tasks (real tool docs, 800-char observations, JSONL trace on): "
        f"**umi's own overhead {o['overhead_ms_per_step']:.2f} ms per step** (target < 2 ms).",
    ]
    print(lines[-1])
    if not args.skip_model:
        m = model_ratio(
            trajs,
            args.max_steps,
            args.max_new_tokens,
            args.roles,
            args.one_slot,
            not args.free,
            args.engine,
            args.single_roles,
        )
        multi, single = m["multi"], m["single"]
        lines += [
            "",
            (
                f"Roles `{args.roles}` on llama.cpp (one base, one server slot per role)"
                if args.engine == "llama.cpp"
                else f"Roles `{args.roles}` on transformers (fp32, one base, adapters per call, per-role prefix "
                "caches; cross-role layer sharing on unless the row says otherwise)"
            )
            + (f"; the single-LLM run's backbone from `{args.single_roles}`" if args.single_roles else "")
            + f", the same {len(trajs)} tasks, "
            f"≤{args.max_steps} steps, ≤{args.max_new_tokens} new tokens per call, "
            f"{'unconstrained decoding' if args.free else 'constrained (role grammars, as `umi run` by default)'}, "
            "run one after another in this process:",
            "",
            "| run | wall s | CPU s | steps | model calls | prompt tokens | cached | prefilled | of which shared below "
            "the adapters |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, t in m.items():
            lines.append(
                f"| {label} | {t['seconds']:.1f} | {t['cpu']:.1f} | {t['steps']} | {t['calls']} | "
                f"{t['prompt_tokens']} | {t['cached_tokens']} | {t['prefilled_tokens']} | {t['shared_tokens']} |"
            )
        lines += [
            "",
            "Per role (engine seconds are the model calls' own time):",
            "",
            "| run | role | calls | prompt tokens | cached | prefilled | new tokens | engine s |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label, t in m.items():
            for role, c in sorted(t["roles"].items()):
                lines.append(
                    f"| {label} | {role} | {c['calls']} | {c['prompt_tokens']} | {c['cached_tokens']} | "
                    f"{c['prefilled_tokens']} | {c['new_tokens']} | {c['seconds']:.1f} |"
                )
        ratio = multi["seconds"] / single["seconds"]
        pre = multi["prefilled_tokens"] / max(1, single["prefilled_tokens"])
        lines += [
            "",
            f"- **multi / single wall time = {ratio:.2f}×** (CPU time {multi['cpu'] / single['cpu']:.2f}×), prefilled "
            f"prompt tokens {pre:.2f}×, per step "
            f"{multi['seconds'] / max(1, multi['steps']):.2f} s vs "
            f"{single['seconds'] / max(1, single['steps']):.2f} s.",
        ]
        if "multi, no layer sharing" in m:
            off = m["multi, no layer sharing"]
            lines.append(
                f"- Without cross-role layer sharing: multi / single {off['seconds'] / single['seconds']:.2f}× "
                f"(CPU {off['cpu'] / single['cpu']:.2f}×); sharing makes the multi-LLM run "
                f"{off['seconds'] / multi['seconds']:.2f}× faster."
            )
        if "multi, one slot" in m:
            old = m["multi, one slot"]
            lines.append(
                f"- One slot for every role (before per-role slots): multi / single "
                f"{old['seconds'] / single['seconds']:.2f}× (CPU {old['cpu'] / single['cpu']:.2f}×), prefilled tokens "
                f"{old['prefilled_tokens'] / max(1, single['prefilled_tokens']):.2f}× single's."
            )
        print("\n".join(lines[len(head) :]))
    name = "agent_overhead.md" if args.engine == "llama.cpp" else "agent_overhead_transformers.md"
    (args.out or ROOT / "benchmarks/results" / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
