"""Server-side runs and their step records, in one SQLite file (WAL).

Each step record (one `TraceRecord`: a role's model call or a tool call) is committed the moment the agent
writes it, so a server killed mid-run keeps every step it had finished; on the next start, runs that were in
flight are marked `interrupted`. WAL lets several server processes share one file: readers never block the
writer, and the event stream reads new steps by their sequence number.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from umi.agent.trace import TraceRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    query TEXT NOT NULL,
    source TEXT NOT NULL,
    answer TEXT,
    reason TEXT NOT NULL DEFAULT '',
    costs TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""

#: A run in one of these states is finished; anything else is still going (or was, before a crash).
FINAL = ("answered", "gave_up", "budget_exhausted", "error", "interrupted", "ended")


class RunStore:
    """Runs and steps. Thread-safe: one connection, one lock; every write is its own committed transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def recover(self) -> int:
        """Mark runs left `running` by a previous process as interrupted; their steps stay. Returns how many."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE runs SET status='interrupted', reason='the server stopped during this run', updated=? "
                f"WHERE status NOT IN ({','.join('?' * len(FINAL))})",
                (time.time(), *FINAL),
            )
            self._db.commit()
            return cur.rowcount

    def create(self, query: str, source: str, *, run_id: str | None = None, status: str = "queued") -> str:
        rid = run_id or "run_" + uuid.uuid4().hex[:16]
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, created, updated, status, query, source) VALUES (?, ?, ?, ?, ?, ?)",
                (rid, now, now, status, query, source),
            )
            self._db.commit()
        return rid

    def exists(self, run_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is not None

    def set_status(self, run_id: str, status: str, **fields: Any) -> None:
        values: dict[str, Any] = {"status": status, "updated": time.time()}
        for key in ("answer", "reason"):
            if key in fields:
                values[key] = fields[key]
        if "costs" in fields:
            values["costs"] = json.dumps(fields["costs"])
        assignments = ", ".join(f"{k}=?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE runs SET {assignments} WHERE id=?", (*values.values(), run_id))
            self._db.commit()

    def add_step(self, run_id: str, record: TraceRecord) -> int:
        """Append one step record, committed before returning; its sequence number is returned."""
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM steps WHERE run_id=?", (run_id,)).fetchone()
            seq = int(row[0])
            self._db.execute(
                "INSERT INTO steps (run_id, seq, record) VALUES (?, ?, ?)", (run_id, seq, record.model_dump_json())
            )
            self._db.execute("UPDATE runs SET updated=? WHERE id=?", (time.time(), run_id))
            self._db.commit()
        return seq

    def steps(self, run_id: str, after: int = -1) -> list[dict[str, Any]]:
        """Step records with `seq > after`, oldest first, each with its `seq`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, record FROM steps WHERE run_id=? AND seq>? ORDER BY seq", (run_id, after)
            ).fetchall()
        return [{"seq": r["seq"], **json.loads(r["record"])} for r in rows]

    def get(self, run_id: str, *, with_steps: bool = True) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
            count = self._db.execute("SELECT COUNT(*) FROM steps WHERE run_id=?", (run_id,)).fetchone()[0]
        if row is None:
            return None
        run = _run_dict(row, count)
        if with_steps:
            run["steps"] = self.steps(run_id)
            if not run["costs"]:
                run["costs"] = costs_from_steps(run["steps"])
        return run

    def list(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest runs first, without their steps (with their step count and cost)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT runs.*, (SELECT COUNT(*) FROM steps WHERE steps.run_id=runs.id) AS n "
                "FROM runs ORDER BY created DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_run_dict(r, r["n"]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _run_dict(row: sqlite3.Row, records: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "umi.run",
        "created": row["created"],
        "updated": row["updated"],
        "status": row["status"],
        "done": row["status"] in FINAL,
        "query": row["query"],
        "source": row["source"],
        "answer": row["answer"],
        "reason": row["reason"],
        "records": records,
        "costs": json.loads(row["costs"] or "{}"),
    }


def costs_from_steps(steps: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per-role totals from step records (a run still in flight, or one imported from a trace file)."""
    out: dict[str, dict[str, float]] = {}
    for s in steps:
        if s.get("role") in ("tool", "agent"):
            continue
        t = out.setdefault(s["role"], {"calls": 0, "prompt_tokens": 0, "new_tokens": 0, "seconds": 0.0})
        t["calls"] += 1
        t["prompt_tokens"] += s.get("prompt_tokens", 0)
        t["new_tokens"] += s.get("new_tokens", 0)
        t["seconds"] += s.get("seconds", 0.0)
    return out
