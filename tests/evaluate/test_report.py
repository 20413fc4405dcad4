"""The report library other harnesses reuse: our rows beside the paper's, labelled, plus one chart."""

from __future__ import annotations

from pathlib import Path

from umi.evaluate.report import PAPER_TABLE1_OOD, write_report

OURS = {"plan_acc": 80.0, "act_em": 10.0, "hallu": 1.5, "arg_f1": 5.0, "rouge_l": 2.0, "steps": 60}


def test_write_report_with_and_without_the_paper_rows(tmp_path: Path) -> None:
    md, png = write_report({"tiny": OURS}, tmp_path, "GLPFT small", note="a note")
    text = md.read_text()
    assert text.startswith("# GLPFT small")
    assert "| tiny | umi (ours) | 80.00 | 10.00 | 1.50 | 5.00 | 2.00 | 60 |" in text
    assert "| 7B α-UMi w/ reuse | paper (LLaMA-2-7B, OOD) | 89.72 | 60.47 | 0.45 | 53.60 | 46.26 | 1547 |" in text
    assert "| ChatGPT 0-shot | paper (gpt-3.5-turbo 0-shot, OOD) | 81.62" in text and "a note" in text
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert len(PAPER_TABLE1_OOD) == 6
    md, _ = write_report({"tiny": OURS}, tmp_path / "bare", title="x", paper_rows={}, stem="r")
    assert "paper" not in md.read_text() and md.name == "r.md"
