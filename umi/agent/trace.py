"""Traces: one JSONL record per model call or tool call, written and flushed as it happens, so an interrupted run
keeps everything it did up to the interruption. The same records feed the live terminal view."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field


class TraceRecord(BaseModel):
    """One step of an episode: a role's model call (with its parse) or a tool call (with its observation)."""

    episode: str = ""
    step: int
    role: str  # planner | caller | summarizer | backbone | tool
    prompt: str = ""
    output: str = ""
    parsed: dict[str, Any] = Field(default_factory=dict)
    tool_call: dict[str, Any] | None = None
    observation: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, served from the role's prompt cache
    prefilled_tokens: int = 0  # of prompt_tokens, computed by this call
    new_tokens: int = 0
    seconds: float = 0.0
    #: Whether the engine enforced the role's grammar on this model call (None for tool calls).
    constrained: bool | None = None
    time: float = Field(default_factory=time.time)


EventHandler = Callable[[TraceRecord], None]


class TraceWriter:
    """Appends records to a JSONL file (flushed per record) and forwards them to an optional event handler."""

    def __init__(self, path: str | Path | None = None, on_event: EventHandler | None = None) -> None:
        self.path = Path(path) if path else None
        self.on_event = on_event
        self.records: list[TraceRecord] = []
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: TraceRecord) -> None:
        self.records.append(record)
        if self._file is not None:
            self._file.write(record.model_dump_json() + "\n")
            self._file.flush()
        if self.on_event is not None:
            self.on_event(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_trace(path: str | Path) -> list[TraceRecord]:
    """Read a trace back; a last line cut by a crash is ignored, every complete record is returned."""
    out: list[TraceRecord] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(TraceRecord.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError):
            continue
    return out
