"""Live-evaluation results as a Markdown table and a PNG chart, with the paper's Table 2 shown beside them.

The paper's real-call numbers (ToolBench on live RapidAPI, DFSDT, ToolEval with ChatGPT as judge) come from a
benchmark umi cannot run: those APIs are gone. They are drawn in grey under their own heading and every label says
"paper"; umi's rows say which suite they ran (BFCL's executable classes, or StableToolBench on simulated APIs) so a
reader never compares the two by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# α-UMi paper, Table 2 (real-time ToolBench, DFSDT; pass rate / win rate against ChatGPT-ReACT), as transcribed in
# ../shared/reference/alpha_umi.md §5. Columns: I1-Inst, I1-Tool, I1-Cat, I2-Inst, I2-Cat, I3-Inst, Avg.
PAPER_T2_GROUPS = ("I1-Inst", "I1-Tool", "I1-Cat", "I2-Inst", "I2-Cat", "I3-Inst", "Avg")
PAPER_T2: dict[str, tuple[str, ...]] = {
    "ChatGPT": ("54.5/60.5", "65.0/62.0", "60.5/57.3", "75.0/72.0", "71.5/64.8", "62.0/69.0", "64.8/64.3"),
    "ToolLLaMA": ("57.0/55.0", "61.0/55.3", "62.0/54.5", "77.0/68.5", "77.0/58.0", "66.0/69.0", "60.7/60.0"),
    "GPT-4": ("60.0/67.5", "71.5/67.8", "67.0/66.5", "79.5/73.3", "77.5/63.3", "71.0/84.0", "71.1/70.4"),
    "α-UMi 7B": ("65.0/59.5", "68.0/66.0", "64.0/57.0", "81.5/76.5", "76.5/72.0", "70.0/63.0", "70.9/65.9"),
}


@dataclass(frozen=True)
class LiveRow:
    """One measured number: which system, on which suite/category, which metric, its value in %, and a note
    (subset size, judge, 'simulated APIs')."""

    system: str
    suite: str
    metric: str
    value: float
    n: int
    note: str = ""


def paper_pass_rates() -> dict[str, float]:
    """The paper's average DFSDT pass rate per model (Table 2, 'Avg' column)."""
    return {model: float(cells[-1].split("/")[0]) for model, cells in PAPER_T2.items()}


def paper_section() -> list[str]:
    """The paper's Table 2 as Markdown lines under its own heading, labelled as not comparable."""
    return [
        "## Paper, Table 2 — a different benchmark (for context only)",
        "",
        "α-UMi paper, real-time ToolBench on live RapidAPI, DFSDT, pass rate / win rate against ChatGPT-ReACT, "
        "judged by ToolEval. **Not comparable** with the rows above: other tasks, other tools, other judge, 7B "
        "models.",
        "",
        "| paper model | " + " | ".join(PAPER_T2_GROUPS) + " |",
        "|---|" + "---|" * len(PAPER_T2_GROUPS),
        *(f"| {m} (paper) | " + " | ".join(cells) + " |" for m, cells in PAPER_T2.items()),
        "",
    ]


@dataclass(frozen=True)
class Reference:
    """Published numbers drawn beside umi's rows: Markdown lines under their own heading, and grey chart bars
    (label → value in %), every label saying where the number comes from."""

    section: list[str]
    bars: dict[str, float] = field(default_factory=dict)


def paper_reference() -> Reference:
    """The α-UMi paper's Table 2 (the default beside every live suite)."""
    bars = {f"{m} — paper T2, live ToolBench pass rate (not comparable)": v for m, v in paper_pass_rates().items()}
    return Reference(paper_section(), bars)


def markdown(rows: Sequence[LiveRow], title: str, reference: Reference | None = None) -> str:
    ref = reference or paper_reference()
    lines = [
        f"# {title}",
        "",
        "| system | suite | metric | value | tasks | note |",
        "|---|---|---|---:|---:|---|",
        *(f"| {r.system} | {r.suite} | {r.metric} | {r.value:.1f} | {r.n} | {r.note} |" for r in rows),
        "",
        *ref.section,
    ]
    return "\n".join(lines)


def chart(rows: Sequence[LiveRow], path: Path, title: str, reference: Reference | None = None) -> Path:
    """Horizontal bars: umi's measured rows in colour, the reference's published numbers (default: the paper's
    Table 2 average pass rates) in grey below a separator, each labelled with its source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.system} — {r.suite} {r.metric} (n={r.n})" for r in rows]
    values = [r.value for r in rows]
    colors = ["tab:blue"] * len(rows)
    ref = reference or paper_reference()
    labels += list(ref.bars)
    values += list(ref.bars.values())
    colors += ["0.7"] * len(ref.bars)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.2))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=colors)
    for yi, v in zip(y, values, strict=True):
        ax.text(v + 0.5, yi, f"{v:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    if rows:
        ax.axhline(y[len(rows) - 1] - 0.5, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_live_report(
    rows: Sequence[LiveRow], out: str | Path, title: str = "Live evaluation", reference: Reference | None = None
) -> tuple[Path, Path]:
    """`<out>.md` and `<out>.png` (out is a path without suffix)."""
    base = Path(out)
    base.parent.mkdir(parents=True, exist_ok=True)
    md = base.with_suffix(".md")
    md.write_text(markdown(rows, title, reference), encoding="utf-8")
    return md, chart(rows, base.with_suffix(".png"), title, reference)
