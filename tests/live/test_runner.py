"""The shared live-evaluation loop: bounded concurrency, one result and one trace per task, resume after a crash;
the win-rate rule; the results report beside the paper's rows."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from umi.agent import MultiLLMAgent, read_trace
from umi.evaluate.live.bfcl import load_tasks, run_suite
from umi.evaluate.live.report import PAPER_T2, LiveRow, write_live_report
from umi.evaluate.live.runner import run_tasks
from umi.evaluate.live.toolbench import LABEL, parse_preference, win_rate

from .test_bfcl import gold_roles


def test_concurrency_is_bounded_and_results_keep_their_order(tmp_path: Path) -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def work(item: int, trace: Path) -> dict:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        trace.write_text(f"trace of {item}\n")
        with lock:
            active[0] -= 1
        return {"item": item}

    progress: list[int] = []
    results = run_tasks(list(range(9)), str, work, tmp_path, workers=3, on_progress=lambda d, t: progress.append(d))
    assert [r["item"] for r in results] == list(range(9))
    assert peak[0] == 3
    assert progress[-1] == 9 and progress == sorted(progress)
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == sorted(f"{i}.jsonl" for i in range(9))


def test_a_crash_keeps_finished_tasks_and_the_rerun_only_runs_the_rest(tmp_path: Path) -> None:
    ran: list[int] = []

    def flaky(item: int, trace: Path) -> dict:
        trace.write_text("partial\n")
        if item == 2:
            raise RuntimeError("power cut")
        ran.append(item)
        return {"item": item}

    with pytest.raises(RuntimeError, match="power cut"):
        run_tasks([0, 1, 2, 3], str, flaky, tmp_path, workers=1)
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["0", "1"]
    ran.clear()

    def healthy(item: int, trace: Path) -> dict:
        assert not trace.exists(), "the partial trace of the crashed attempt must be discarded"
        ran.append(item)
        return {"item": item}

    results = run_tasks([0, 1, 2, 3], str, healthy, tmp_path, workers=2)
    assert sorted(ran) == [2, 3]
    assert [r["item"] for r in results] == [0, 1, 2, 3]


def test_duplicate_keys_and_zero_workers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not unique"):
        run_tasks([1, 1], str, lambda i, t: {}, tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        run_tasks([1], str, lambda i, t: {}, tmp_path, workers=0)


def test_bfcl_suite_with_workers_passes_and_writes_one_trace_per_task(tmp_path: Path) -> None:
    entries = load_tasks("multi_turn_base")[:6]
    roles = {e["id"]: gold_roles(e) for e in entries}

    def make(specs, executor, trace_path=None):  # type: ignore[no-untyped-def]
        return MultiLLMAgent(
            roles[executor.task_id], specs, executor, max_steps=30, repeat_limit=99, trace_path=trace_path
        )

    summary = run_suite(entries, make, tmp_path, workers=3)
    assert summary == {"tasks": 6, "passed": 6, "accuracy": 100.0}
    for e in entries:
        records = read_trace(tmp_path / "traces" / f"{e['id']}.jsonl")
        calls = [r.tool_call["name"] for r in records if r.role == "tool" and r.tool_call]
        gold = [c.split("(", 1)[0] for turn in e["ground_truth"] for c in turn]
        assert calls == gold  # this task's calls, all of them, and no other task's
        assert len({r.episode for r in records}) == len(e["question"])  # one episode per user turn


def _run(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    for r in rows:
        (folder / f"{r['key']}.json").write_text(json.dumps(r))
    (folder / "summary.json").write_text("{}")
    return folder


def test_win_rate_rules_and_position_fairness(tmp_path: Path) -> None:
    def result(key: str, answer: str, status: str = "answered") -> dict:
        return {"key": key, "query": f"query {key}", "answer": answer, "status": status}

    a = _run(
        tmp_path / "a",
        [result("1", "good: 42"), result("2", "good: yes"), result("3", ""), result("4", "x", "gave_up")],
    )
    b = _run(
        tmp_path / "b",
        [result("1", "bad"), result("2", "", "gave_up"), result("3", "good: no"), result("4", "y", "gave_up")],
    )

    def prefers_good(prompt: str) -> str:  # a fair judge: picks the answer that says "good", wherever it is
        a_text = prompt.split("Answer A:")[1].split("Answer B:")[0]
        return "A" if "good" in a_text else "B"

    r = win_rate(a, b, prefers_good, rounds=1)
    # 1: judge prefers a; 2: only a answered; 3: only b answered; 4: neither answered (tie)
    assert (r["wins"], r["ties"], r["losses"]) == (2, 1, 1)
    assert r["win_rate"] == 62.5 and r["label"] == LABEL
    always_a = win_rate(a, b, lambda p: "A", rounds=2)  # pure position bias cancels out: query 1 is a tie
    assert (always_a["wins"], always_a["ties"], always_a["losses"]) == (1, 2, 1)
    assert parse_preference("**B** is better") == "B" and parse_preference("neither") == "tie"
    with pytest.raises(ValueError, match="share no query"):
        win_rate(a, _run(tmp_path / "c", [result("9", "z")]), prefers_good)


def test_live_report_shows_paper_rows_labelled(tmp_path: Path) -> None:
    rows = [LiveRow("α-UMi multi-LLM (embedded)", "BFCL v4 multi_turn_base", "accuracy", 10.0, 10, "first 10")]
    md, png = write_live_report(rows, tmp_path / "report", title="t")
    text = md.read_text()
    assert "| α-UMi multi-LLM (embedded) | BFCL v4 multi_turn_base | accuracy | 10.0 | 10 | first 10 |" in text
    assert "Not comparable" in text
    assert all(f"| {m} (paper) |" in text for m in PAPER_T2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
