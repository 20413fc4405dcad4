"""The tool server's response cache: an append-only JSONL file, written under a lock and fsynced per entry, so
concurrent requests lose no write and a restart keeps every one.

Readers take the same lock: the server answers requests on a thread pool, and a request that lists a function's
examples while another stores a response must not iterate a dict that is growing (CI caught exactly that as a 500
under 200 concurrent requests)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from umi.tools.replay import normalise_arguments


def cache_key(function_name: str, arguments: dict[str, Any] | str) -> str:
    return f"{function_name}\t{normalise_arguments(arguments)}"


class CacheStore:
    """`(function name, normalised arguments) → {"error", "response"}`, persisted as JSONL."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict[str, str]] = {}
        # function name -> its cache keys, in insertion order; so `examples` reads a few entries instead of
        # scanning the whole cache on every simulated call
        self._by_function: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
                self._store(rec["key"], rec["value"])

    def _store(self, key: str, value: dict[str, str]) -> None:
        if key not in self.entries:
            self._by_function.setdefault(key.partition("\t")[0], []).append(key)
        self.entries[key] = value

    def get(self, function_name: str, arguments: dict[str, Any] | str) -> dict[str, str] | None:
        key = cache_key(function_name, arguments)
        with self._lock:
            return self.entries.get(key)

    def examples(self, function_name: str, limit: int = 5) -> list[tuple[str, str]]:
        """Up to `limit` cached `(arguments, response)` pairs of one function, oldest first, as a snapshot."""
        with self._lock:
            keys = self._by_function.get(function_name, [])[:limit]
            return [(k.partition("\t")[2], self.entries[k]["response"]) for k in keys]

    def put(
        self, function_name: str, arguments: dict[str, Any] | str, value: dict[str, str], *, persist: bool = True
    ) -> None:
        key = cache_key(function_name, arguments)
        with self._lock:
            self._store(key, value)
            if persist and self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")
                    f.flush()
                    os.fsync(f.fileno())

    def seed_recorded(self, path: str | Path) -> int:
        """Load recorded observations (`{"cache": {function: {raw args: text}}}`) without rewriting the file."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        n = 0
        for fn, calls in data.get("cache", data).items():
            if isinstance(calls, dict):
                for args, response in calls.items():
                    if self.get(fn, args) is None:
                        self.put(fn, args, {"error": "", "response": str(response)}, persist=False)
                        n += 1
        return n

    def __len__(self) -> int:
        with self._lock:
            return len(self.entries)
