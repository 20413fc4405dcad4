"""Results people compare: a Markdown table (ours beside the paper's published rows, labelled) and a bar chart."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS = (
    ("plan_acc", "Plan ACC"),
    ("act_em", "Act. EM"),
    ("hallu", "Hallu.↓"),
    ("arg_f1", "Arg. F1"),
    ("rouge_l", "ROUGE-L"),
)

#: Table 1, out-of-domain columns, as published (LLaMA-2-7B based systems; ChatGPT and GPT-4 zero-shot).
PAPER_TABLE1_OOD: dict[str, dict[str, float]] = {
    "ChatGPT 0-shot": {"plan_acc": 81.62, "act_em": 54.67, "hallu": 8.19, "arg_f1": 40.08, "rouge_l": 22.85},
    "GPT-4 0-shot": {"plan_acc": 77.80, "act_em": 55.26, "hallu": 5.12, "arg_f1": 47.45, "rouge_l": 30.61},
    "7B Single-LLM": {"plan_acc": 84.61, "act_em": 56.54, "hallu": 2.26, "arg_f1": 50.09, "rouge_l": 47.99},
    "7B Multi-LLM one-stage": {"plan_acc": 88.42, "act_em": 53.40, "hallu": 2.52, "arg_f1": 45.79, "rouge_l": 46.39},
    "7B Single-LLM multi-task": {"plan_acc": 86.55, "act_em": 56.89, "hallu": 2.77, "arg_f1": 49.50, "rouge_l": 32.58},
    "7B α-UMi w/ reuse": {"plan_acc": 89.72, "act_em": 60.47, "hallu": 0.45, "arg_f1": 53.60, "rouge_l": 46.26},
}
PAPER_LABEL = "paper (LLaMA-2-7B, OOD)"
#: Source label of each published row: the 7B systems are LLaMA-2-7B fine-tunes, the API models zero-shot.
PAPER_SOURCES: dict[str, str] = {
    "ChatGPT 0-shot": "paper (gpt-3.5-turbo 0-shot, OOD)",
    "GPT-4 0-shot": "paper (GPT-4 0-shot, OOD)",
}


def markdown_table(results: Mapping[str, Mapping[str, Any]], paper_rows: Mapping[str, Mapping[str, float]]) -> str:
    """Our rows first (labelled `umi (ours)`, with their step counts), then the published rows, each labelled with
    where it comes from, so nobody mistakes a 135M zero-shot subset for a reproduction of the paper."""
    head = "| system | source | " + " | ".join(name for _, name in METRICS) + " | steps |\n"
    head += "|---|---|" + "---:|" * (len(METRICS) + 1) + "\n"
    lines = []
    for name, r in results.items():
        cells = " | ".join(f"{float(r.get(k, 0)):.2f}" for k, _ in METRICS)
        lines.append(f"| {name} | umi (ours) | {cells} | {r.get('steps', '')} |")
    for name, r in paper_rows.items():
        cells = " | ".join(f"{r[k]:.2f}" for k, _ in METRICS)
        lines.append(f"| {name} | {PAPER_SOURCES.get(name, PAPER_LABEL)} | {cells} | 1547 |")
    return head + "\n".join(lines) + "\n"


def bar_chart(
    results: Mapping[str, Mapping[str, Any]], paper_rows: Mapping[str, Mapping[str, float]], path: Path, title: str
) -> Path:
    """One grouped bar chart of the five metrics per system (paper rows hatched); Agg, so it runs headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = [(f"{n} (ours)", r) for n, r in results.items()] + [(f"{n} (paper)", r) for n, r in paper_rows.items()]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / max(1, len(systems))
    palette = plt.get_cmap("tab20" if len(systems) > 10 else "tab10")
    for i, (name, r) in enumerate(systems):
        xs = [j + i * width for j in range(len(METRICS))]
        ax.bar(
            xs,
            [float(r.get(k, 0)) for k, _ in METRICS],
            width,
            label=name,
            color=palette(i % palette.N),
            hatch="//" if name.endswith("(paper)") else None,
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(METRICS))], [n for _, n in METRICS])
    ax.set_ylabel("score (×100)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    results: Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
    title: str = "Static evaluation",
    *,
    paper_rows: Mapping[str, Mapping[str, float]] = PAPER_TABLE1_OOD,
    note: str = "",
    stem: str = "report",
) -> tuple[Path, Path]:
    """Write `<stem>.md` (table) and `<stem>.png` (chart) into `out_dir`; the one report every harness reuses.

    `results` maps a system name to a `umi.evaluate.metrics.score` dict; `paper_rows` defaults to Table 1's
    out-of-domain rows (pass `{}` to leave them out); `note` is appended under the chart.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    png = bar_chart(results, paper_rows, out / f"{stem}.png", title)
    text = f"# {title}\n\n{markdown_table(results, paper_rows)}\n![chart]({png.name})\n"
    md.write_text(text + (f"\n{note}\n" if note else ""), encoding="utf-8")
    return md, png
