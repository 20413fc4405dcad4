"""Static evaluation on the seeded 100-step subset of the split's test part: shared by `constrained_static.py`
(issue 12: constrained and not) and `glpft_small.py` (issue 14: GLPFT against its baselines).

Each configuration is one `run_static` folder, `runs/static_subset/<engine>/<config>`, shared by both scripts (a
row both tables show is computed once), so every command resumes: a folder that already holds predictions is
continued, a finished one is only scored. A row that is not complete is labelled "first N of 100", never shown as
the 100-step figure. Scores are `umi eval score`'s (`umi.evaluate.metrics.score`, paper-exact).

The split is `umi data split --by-tools --seed 0` of `out_of_domain.json` (`runs/split/test.json`); the subset file
is `benchmarks/results/static_subset_test_100_seed0.json`.

Each folder's predictions are also kept in the repository, `benchmarks/results/static_subset_predictions/<engine>/
<config>.jsonl` (step key, prediction and per-row flags; the gold reference is left out and rebuilt from the shared
data), so the tables can be rescored, and unfinished rows resumed, on another machine: a missing run folder is
restored from there before anything runs. Delete a kept file to rerun its configuration from scratch.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from umi.data.io import load_trajectories
from umi.data.rows import iter_steps
from umi.evaluate.baselines import write_baseline
from umi.evaluate.metrics import read_predictions, score
from umi.evaluate.static import reference_text, run_static
from umi.evaluate.steps import StepKey, read_step_keys
from umi.format import parse_arguments, parse_step_text
from umi.models.binding import Roles
from umi.models.roles import llamacpp_roles_from_manifest, load_roles, roles_from_manifest, trained_roles_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
SUBSET = RESULTS / "static_subset_test_100_seed0.json"
KEPT = RESULTS / "static_subset_predictions"
STAGE1 = ROOT / "umi/assets/roles/smollm2-glpft/stage1"
#: Earlier trained roles kept beside the shipped ones so their rows can be rerun: source name → packaged folder.
ROLE_DIRS = {
    "glpft-epoch1": ROOT / "benchmarks/roles/smollm2-glpft-epoch1/manifest.json",
    "glpft-planner-half": ROOT / "benchmarks/roles/smollm2-glpft-planner-half/manifest.json",
    "glpft-planner-w5": ROOT / "benchmarks/roles/smollm2-glpft-planner-w5/manifest.json",
    "glpft-ul10": ROOT / "benchmarks/roles/smollm2-glpft-ul10/manifest.json",
    "gemma-single": ROOT / "benchmarks/roles/gemma3-single/manifest.json",
    "gemma-glpft": ROOT / "benchmarks/roles/gemma3-glpft/manifest.json",
    "glpft-qorder": ROOT / "benchmarks/roles/smollm2-glpft-qorder/manifest.json",
    "multitask": ROOT / "benchmarks/roles/smollm2-multitask/manifest.json",
    "one-stage": ROOT / "benchmarks/roles/smollm2-one-stage/manifest.json",
    "glpft-rank": ROOT / "benchmarks/roles/smollm2-glpft-rank/manifest.json",
    "glpft-hint": ROOT / "benchmarks/roles/smollm2-glpft-hint/manifest.json",
}
METRICS = ("plan_acc", "act_em", "hallu", "arg_f1", "rouge_l", "valid_calls", "marker_share")
HEADS = ("Plan ACC", "Act EM", "Hallu", "Arg F1", "ROUGE-L", "valid calls", "planner marker")


@dataclass(frozen=True)
class Config:
    """One evaluated system: `source` is `embedded` (the bare base), `embedded-glpft` (the shipped roles), a
    `ROLE_DIRS` name (earlier roles), `stage1` (the base with the shipped stage-1 adapter merged, `STAGE1`: the
    single-LLM model, the same bytes the shipped roles carry as `stage1`), `first-tool` (no model: always call
    the first tool with {}) or `lexical` (no model: call the tool whose document best matches the query by BM25,
    skipping APIs already called, with {}); `single` runs the backbone; `gold_thought` skips the planner and gives
    the caller and summarizer the gold planner turn (a diagnostic: what the caller does with a right thought; its
    Plan ACC is 100 by construction); `tool_order` overrides the roles' prompt budget's (`"query"`: tools most
    relevant to the query first, `umi.format.relevance`)."""

    name: str
    source: str
    constrain: bool
    label: str
    single: bool = False
    gold_thought: bool = False
    dtype: str = "bfloat16"
    #: llama.cpp only: the base's storage, "Q4_1" as shipped or "Q8_0" requantized (`umi.models.gguf_merge`);
    #: the adapters apply at run time either way. "merged-Q8_0": one merged Q8_0 model per role (an experiment).
    quant: str = "Q4_1"
    tool_order: str | None = None
    #: The caller's (and backbone's) grammar may call only this many tools, the most relevant to the query not
    #: called yet (`umi.format.relevance.shortlist`); 0: every tool.
    shortlist: int = 0
    #: The caller's grammar names only the APIs the planner's thought names (`umi.format.relevance.thought_tools`).
    follow_thought: bool = False
    #: Skip the planner: the caller and summarizer get the planner turns kept from this configuration's run (the
    #: same planner, greedy; `umi eval static --planner-from`).
    planner_from: str | None = None


#: The rows both tables show: the no-model floor and the bare base zero-shot, constrained and not. The zero-shot
#: rows run in fp32: on a CPU without AMX / AVX512-BF16 (this project's machine since 2026-12-03, an AMD EPYC), bf16
#: matrix products are emulated (8x slower prefill than fp32 here, `/tmp` probe), and the bare base, which writes to
#: its token cap, could not finish 100 steps in bf16 within a session. `glpft-constrained-fp32` measures what the
#: dtype alone changes.
FIRST_TOOL = Config("first-tool", "first-tool", False, "first tool with {} (no model)")
LEXICAL = Config("lexical", "lexical", False, "best BM25 match of the query, not called yet, with {} (no model)")
FIRST_UNCALLED = Config("first-uncalled", "first-uncalled", False, "first tool not called yet, with {} (no model)")
ZERO_SHOT = (
    Config(
        "embedded-constrained-fp32",
        "embedded",
        True,
        "SmolLM2-135M zero-shot, multi-LLM, constrained, fp32",
        dtype="float32",
    ),
    Config(
        "embedded-free-fp32",
        "embedded",
        False,
        "SmolLM2-135M zero-shot, multi-LLM, unconstrained, fp32",
        dtype="float32",
    ),
)
GLPFT_FP32 = Config(
    "glpft-constrained-fp32", "embedded-glpft", True, "shipped GLPFT roles, constrained, fp32", dtype="float32"
)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data", type=Path, default=ROOT / "runs/split/test.json")
    ap.add_argument("--steps", type=Path, default=SUBSET)
    ap.add_argument("--runs", type=Path, default=None, help="default: runs/static_subset/<engine>")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--engine",
        choices=("transformers", "llama.cpp"),
        default="transformers",
        help="transformers runs each row's dtype (bf16 unless the row says fp32); llama.cpp is the shipped binding",
    )
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--report-only", action="store_true", help="Score the run folders that exist; run nothing.")


def engine_words(args: argparse.Namespace) -> str:
    """How the table's runs generated, in words."""
    model = (
        "(Q4_1 unless the row says Q8_0; adapters applied at run time unless it says merged) on llama.cpp"
        if args.engine == "llama.cpp"
        else "(Q4_1 dequantized; bf16 unless the row says fp32) on transformers"
    )
    threads = "thread counts as each row's commands below say" if args.report_only else f"{args.threads} thread(s)"
    return (
        f"embedded SmolLM2-135M {model} unless the row names Gemma 3 270M (`gemma3-270m`, Q4_K_M, requantized to "
        f"Q8_0 likewise), greedy, ≤{args.max_new_tokens} new tokens per call, {threads}"
    )


def bind(
    source: str, threads: int, engine: str = "transformers", dtype: str = "bfloat16", quant: str = "Q4_1"
) -> Roles:
    """The roles of `source` (`embedded`, or `embedded-glpft` = the shipped roles) on `engine`: llama.cpp with
    `threads` threads and the base stored as `quant` (see `Config.quant`), or transformers in `dtype`."""
    table: dict[str, Any]
    if source == "stage1":
        if engine != "transformers":
            raise SystemExit("the stage-1 source binds on transformers only (llama.cpp: use embedded-glpft)")
        table = {"kind": "transformers", "model": "embedded", "dtype": dtype, "base_adapters": [str(STAGE1)]}
        return load_roles({"family": "toolbench", "engines": {"s1": table}, "roles": {"backbone": {"engine": "s1"}}})
    if source == "embedded":
        if engine == "transformers":
            table = {"kind": "transformers", "model": "embedded", "dtype": dtype}
        else:
            table = {"kind": "llama.cpp", "model": "embedded", "n_ctx": 8192, "n_threads": threads}
        roles = {r: {"engine": "base"} for r in ("planner", "caller", "summarizer", "backbone")}
        return load_roles({"family": "toolbench", "engines": {"base": table}, "roles": roles})
    trained = ROLE_DIRS.get(source) or trained_roles_dir()
    if trained is None or not trained.exists():
        raise SystemExit(f"no trained roles for source {source!r} (umi/assets/roles/smollm2-glpft, or {ROLE_DIRS})")
    if engine == "transformers":
        return roles_from_manifest(trained, dtype=dtype)
    if quant == "merged-Q8_0":
        return merged_roles(trained, threads)
    return llamacpp_roles_from_manifest(trained, n_threads=threads, base_quant=None if quant == "Q4_1" else quant)


def merged_roles(manifest: Path, threads: int) -> Roles:
    """Each role's own GGUF: the base with its stage-1 and role adapters folded in, Q8_0, a server per role."""
    from umi.models.gguf_merge import cached_merged_gguf
    from umi.models.role_config import llamacpp_manifest_config

    rc = llamacpp_manifest_config(manifest, n_threads=threads, base_quant=None)
    base = rc.config["engines"].pop("base")
    for role, spec in rc.config["roles"].items():
        stack = [base["loras"][n] for n in base["base_loras"]]
        stack += [base["loras"][spec["adapter"]]] if spec.get("adapter") else []
        model = str(cached_merged_gguf(base["model"], stack, quant="Q8_0"))
        rc.config["engines"][role] = {"kind": "llama.cpp", "model": model, "n_ctx": 8192, "n_threads": threads}
        rc.config["roles"][role] = {"engine": role}
    return load_roles(rc.config)


def prepare(args: argparse.Namespace) -> list[StepKey]:
    """Check the split exists, set threads and the runs folder; the subset's step keys."""
    if not args.data.exists():
        raise SystemExit(
            f"{args.data} not found; make it with `umi data split --by-tools "
            "../shared/data/alpha_umi/dataset/toolbench/test/out_of_domain.json --out runs/split --seed 0`"
        )
    args.runs = args.runs or ROOT / "runs/static_subset" / args.engine
    if args.engine == "transformers":
        import torch

        torch.set_num_threads(args.threads)
    return read_step_keys(args.steps)


def kept_path(args: argparse.Namespace, name: str) -> Path:
    return KEPT / args.engine / f"{name}.jsonl"


def keep(args: argparse.Namespace, name: str) -> None:
    """Copy a run folder's predictions into the repository, without the gold references."""
    src = args.runs / name / "predictions.jsonl"
    if not src.exists():
        return
    rows = []
    for line in src.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue  # a last line cut by a crash
        d.pop("reference", None)
        rows.append(json.dumps(d, ensure_ascii=False))
    dst = kept_path(args, name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(rows) + ("\n" if rows else ""), encoding="utf-8")


def restore(args: argparse.Namespace, names: list[str]) -> None:
    """Rebuild missing run folders from the kept predictions, each reference from the shared data."""
    todo = [n for n in names if not (args.runs / n / "predictions.jsonl").exists() and kept_path(args, n).exists()]
    if not todo:
        return
    steps = {(s.traj, s.step): s for s in iter_steps(load_trajectories(args.data).items)}
    for name in todo:
        out = []
        for i, line in enumerate(kept_path(args, name).read_text(encoding="utf-8").splitlines()):
            d = json.loads(line)
            key = (int(d["traj"]), int(d["step"]))
            if key not in steps:
                raise SystemExit(f"{kept_path(args, name)} row {i}: step {key} is not in {args.data}")
            out.append(json.dumps({**d, "reference": reference_text(steps[key])}, ensure_ascii=False))
        (args.runs / name).mkdir(parents=True, exist_ok=True)
        (args.runs / name / "predictions.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
        print(f"{name}: {len(out)} predictions restored from {kept_path(args, name).relative_to(ROOT)}", flush=True)


def count_rows(path: Path) -> int:
    """Complete JSON lines in a predictions file (0 when it does not exist; a crash-cut last line not counted)."""
    if not path.exists():
        return 0
    n = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            json.loads(line)
        except json.JSONDecodeError:
            continue
        n += 1
    return n


def provenance_path(kept: Path) -> Path:
    return kept.with_name(kept.stem + ".provenance.jsonl")


def record_provenance(kept: Path, command: str, before: int, after: int, started: str, load: float) -> None:
    """Append which command added predictions `before+1 … after` to the kept file's provenance (nothing when it
    added none): a table's rows may come from several commands (a row resumed across sessions), and its header
    names only the last one, so each row's own commands are listed under the table."""
    if after <= before:
        return
    rec = {"command": command, "started": started, "rows": [before + 1, after], "load": round(load, 2)}
    with provenance_path(kept).open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def provenance_lines(kept: Path) -> list[str]:
    """One line per command that produced the kept predictions, in order; rows older than the records are named
    as such rather than attributed to a command."""
    total = count_rows(kept)
    if total == 0:
        return []
    recs = []
    path = provenance_path(kept)
    if path.exists():
        recs = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    first = recs[0]["rows"][0] if recs else total + 1
    out = []
    if first > 1:
        out.append(f"rows 1–{first - 1}: runs before provenance was recorded (commands not kept)")
    for r in recs:
        a, b = r["rows"]
        out.append(f"rows {a}–{b}: `{r['command']}`, started {r['started']}, load {r['load']}")
    return out


def run_configs(configs: list[Config], args: argparse.Namespace, keys: list[StepKey]) -> None:
    """Run (or resume) every configuration's folder, keeping its predictions (and which command made them) in the
    repository."""
    import datetime
    import os

    from _results import command_line

    for cfg in configs:
        before = count_rows(args.runs / cfg.name / "predictions.jsonl")
        started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        load = os.getloadavg()[0]
        try:
            _run_one(cfg, args, keys)
        finally:
            keep(args, cfg.name)
            after = count_rows(kept_path(args, cfg.name))
            record_provenance(kept_path(args, cfg.name), command_line(), before, after, started, load)


def _run_one(cfg: Config, args: argparse.Namespace, keys: list[StepKey]) -> None:
    """Run (or resume) one configuration's folder."""
    folder = args.runs / cfg.name
    if cfg.source in ("first-tool", "first-uncalled", "lexical"):
        write_baseline(cfg.source, args.data, folder, keys=keys)
        return
    if cfg.quant != "Q4_1" and args.engine != "llama.cpp":
        raise SystemExit(f"{cfg.name}: a GGUF storage choice; add --engine llama.cpp")
    roles = bind(cfg.source, args.threads, args.engine, cfg.dtype, cfg.quant)
    if cfg.tool_order is not None:
        if roles.prompt_budget is None:
            raise SystemExit(f"{cfg.name}: tool_order needs roles with a prompt budget")
        roles.prompt_budget = {**roles.prompt_budget, "tool_order": cfg.tool_order}
    roles.set_shortlist(cfg.shortlist)
    if cfg.follow_thought and roles.caller is not None:
        roles.caller.follow_thought = True
    run = run_static(
        args.data,
        roles,
        folder,
        single=cfg.single,
        keys=keys,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        roles_source=cfg.source,
        constrain=cfg.constrain,
        gold_thought=cfg.gold_thought,
        planner_from=None if cfg.planner_from is None else kept_path(args, cfg.planner_from),
        on_progress=progress_printer(cfg.name),
    )
    del roles
    print(f"{cfg.name}: {run.total} steps ({run.skipped} from an earlier run)", flush=True)


def extra_rates(folder: Path, trajectories: list[Any]) -> tuple[float, float, int]:
    """(valid-call rate among predicted calls, share of planner outputs with a route marker, predicted calls).

    A valid call names one of the step's exact API names and its input is a JSON object."""
    calls = valid = 0
    markers: list[bool] = []
    for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "planner_marker" in d:
            markers.append(bool(d["planner_marker"]))
        pred = parse_step_text(d["prediction"])
        if pred.plan != "call":
            continue
        calls += 1
        args, _ = parse_arguments(pred.action_input)
        valid += pred.action in set(trajectories[int(d["traj"])].tool_names) and isinstance(args, dict)
    rate = round(100.0 * valid / calls, 2) if calls else 0.0
    share = round(100.0 * sum(markers) / len(markers), 2) if markers else float("nan")
    return rate, share, calls


def report(folder: Path, data: Path, total: int) -> dict[str, Any] | None:
    """The folder's scores plus the valid-call and marker rates; None while it holds no predictions."""
    if not (folder / "predictions.jsonl").exists():
        return None
    trajectories = load_trajectories(data).items
    rows = read_predictions(str(folder / "predictions.jsonl"))
    if not rows:
        return None
    result = score(rows, trajectories)
    result["valid_calls"], result["marker_share"], result["predicted_calls"] = extra_rates(folder, trajectories)
    result["complete"] = result["steps"] == total
    return result


def results_for(configs: list[Config], args: argparse.Namespace, total: int) -> dict[str, dict[str, Any]]:
    return {c.name: r for c in configs if (r := report(args.runs / c.name, args.data, total)) is not None}


def steps_cell(r: dict[str, Any], total: int) -> str:
    return str(r["steps"]) if r["complete"] else f"first {r['steps']} of {total}"


def cell(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"  # NaN: the system has no planner


def chart(results: dict[str, dict[str, Any]], labels: dict[str, str], path: Path, title: str) -> None:
    """Grouped bars, one group per metric, one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(1, len(results))
    for k, (name, r) in enumerate(results.items()):
        xs = [i + k * width for i in range(len(METRICS))]
        label = labels[name] if r["complete"] else f"{labels[name]} (first {r['steps']})"
        ax.bar(xs, [0.0 if r[m] != r[m] else r[m] for m in METRICS], width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(METRICS))], HEADS)
    ax.set_ylabel("×100")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def progress_printer(name: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        print(f"{name}: {done}/{total}", flush=True)

    return show


def run_cli(
    description: str,
    configs: list[Config],
    out_name: str,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[argparse.Namespace, list[StepKey], dict[str, dict[str, Any]]]:
    """Parse the shared arguments (plus `extra`), run or resume the chosen configurations, score them all."""
    ap = argparse.ArgumentParser(description=description)
    add_arguments(ap)
    names = [c.name for c in configs]
    ap.add_argument("--configs", nargs="*", default=names, choices=names)
    ap.add_argument("--out", type=Path, default=RESULTS / out_name)
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    # A stopped job (`kill`, a session's end) still keeps what it predicted: SIGTERM unwinds through `run_configs`'
    # `finally`. (A background job of a non-interactive shell ignores SIGINT, so Ctrl-C's signal would not reach it.)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    keys = prepare(args)
    restore(args, names)
    if not args.report_only:
        run_configs([c for c in configs if c.name in args.configs], args, keys)
    return args, keys, results_for(configs, args, len(keys))


def table_lines(
    configs: list[Config],
    results: dict[str, dict[str, Any]],
    total: int,
    extra_heads: list[str],
    extra_cells: Callable[[Config, dict[str, Any]], list[str]],
) -> list[str]:
    """The Markdown table (one row per configuration that has predictions) and a line naming those without."""
    lines = [
        "| system | steps | " + " | ".join([*HEADS, *extra_heads]) + " |",
        "|---|---|" + "--:|" * (len(HEADS) + len(extra_heads)),
    ]
    for c in configs:
        if (r := results.get(c.name)) is not None:
            cells = [cell(r[m]) for m in METRICS] + extra_cells(c, r)
            lines.append(f"| {c.label} | {steps_cell(r, total)} | " + " | ".join(cells) + " |")
    missing = [c.name for c in configs if c.name not in results]
    if missing:
        lines.append(f"\nNot run (no predictions yet): {', '.join(missing)}.")
    return lines


def write_report(
    args: argparse.Namespace, lines: list[str], configs: list[Config], results: dict[str, Any], title: str
) -> None:
    """The results file (header line first, written whole) and its chart beside it."""
    from _results import results_header

    prov = ["", "## Where each row's predictions come from", ""]
    for c in configs:
        if c.name in results:
            prov += [f"- {c.label}:", *(f"  - {x}" for x in provenance_lines(kept_path(args, c.name)))]
    args.out.write_text(results_header() + "\n".join([*lines, *prov]) + "\n", encoding="utf-8")
    if results:
        chart(results, {c.name: c.label for c in configs}, args.out.with_suffix(".png"), title)
    print(args.out.read_text(encoding="utf-8"))
