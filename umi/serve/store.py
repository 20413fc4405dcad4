"""The tool server's response cache: an append-only JSONL file, written under a lock and fsynced per entry, so
concurrent requests lose no write and a restart keeps every one."""

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
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
                self.entries[rec["key"]] = rec["value"]

    def get(self, function_name: str, arguments: dict[str, Any] | str) -> dict[str, str] | None:
        return self.entries.get(cache_key(function_name, arguments))

    def examples(self, function_name: str, limit: int = 5) -> list[tuple[str, str]]:
        prefix = function_name + "\t"
        return [(k[len(prefix) :], v["response"]) for k, v in self.entries.items() if k.startswith(prefix)][:limit]

    def put(
        self, function_name: str, arguments: dict[str, Any] | str, value: dict[str, str], *, persist: bool = True
    ) -> None:
        key = cache_key(function_name, arguments)
        with self._lock:
            self.entries[key] = value
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
                    if cache_key(fn, args) not in self.entries:
                        self.put(fn, args, {"error": "", "response": str(response)}, persist=False)
                        n += 1
        return n

    def __len__(self) -> int:
        return len(self.entries)
