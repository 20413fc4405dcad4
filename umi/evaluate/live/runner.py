"""The loop every live suite shares: one result file and one trace per task, bounded concurrency, resume.

Why one file per task: a run of hundreds of whole tasks on a CPU takes hours, and a crash or a Ctrl-C must lose at
most the tasks in flight. A result is written atomically (temporary file, then rename) only when its task is
finished, so a file on disk is always a whole result; on a rerun those tasks are read back, and an unfinished
task's partial trace is discarded and the task runs again from its start.

Why threads: the engines already overlap requests (llama.cpp fills its server slots from concurrent requests and
releases the GIL; HTTP engines wait on the network; the transformers engine serialises itself with a lock), and
the tools are light Python. `workers` bounds how many tasks are in flight.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from umi.data.io import write_json

T = TypeVar("T")
Work = Callable[[T, Path], dict[str, Any]]


def result_path(out_dir: Path, key: str) -> Path:
    return out_dir / f"{key}.json"


def trace_path(out_dir: Path, key: str) -> Path:
    return out_dir / "traces" / f"{key}.jsonl"


def run_tasks(
    items: Sequence[T],
    key: Callable[[T], str],
    work: Work[T],
    out_dir: str | Path,
    *,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run `work(item, trace_path)` for every item without a result file yet, at most `workers` at a time.

    Returns every item's result in the order of `items` (finished earlier or now). `work` must not raise for a
    task's own failure (it records it in the result); an exception from `work` is a bug and stops the run after
    the tasks already in flight are saved.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out_dir)
    (out / "traces").mkdir(parents=True, exist_ok=True)
    keys = [key(item) for item in items]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys are not unique; results would overwrite each other")
    results: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, T]] = []
    for k, item in zip(keys, items, strict=True):
        path = result_path(out, k)
        if path.exists():
            results[k] = json.loads(path.read_text(encoding="utf-8"))
        else:
            todo.append((k, item))
    done = len(results)
    if on_progress:
        on_progress(done, len(items))

    def one(k: str, item: T) -> dict[str, Any]:
        trace = trace_path(out, k)
        trace.unlink(missing_ok=True)  # a partial trace of an interrupted attempt
        result = work(item, trace)
        write_json(result_path(out, k), result, indent=1)  # atomic: a resumed run never reads half a file
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future[dict[str, Any]], str] = {}
        queue = iter(todo)
        for k, item in queue:
            pending[pool.submit(one, k, item)] = k
            if len(pending) >= workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                k = pending.pop(fut)
                results[k] = fut.result()
                done += 1
                if on_progress:
                    on_progress(done, len(items))
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(one, *nxt)] = nxt[0]
    return [results[k] for k in keys]
