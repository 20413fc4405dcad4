"""ToolAlpaca's judged solutions (`evalution_outputs/ToolAlpaca{7b,13b}.json`) → typed records.

Each judgement's `input` is the judge prompt GPT-4 saw; its "AI Assistant's Solution" section lists the model's
calls (`N. Function: …`, `Parameters: …`, `Retruns: Status Code: C. Response: …`) and its `Final Response`. umi
reads those for two things: the replay cache of the simulated suite (function, arguments → recorded response) and
the calibration of the process rule against GPT-4's labels. Calls whose parameters are not a JSON object are kept
with `arguments=None` (counted, never silently dropped); judgements without an input (the files' `error_num`) are
reported as such.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umi.data.io import DataError, read_json

_SOLUTION = "## AI Assistant's Solution"
_INSTRUCTION = "## Task Instruction"
_STANDARD = "## Standard Answer"
_STEP = re.compile(r"^\d+\. (Function|Final Response): ?", re.M)
_STANDARD_STEP = re.compile(r"^\d+\. Function: (.*)\nParameters: (.*)$", re.M)
_RETURN = re.compile(r"Status Code: (\d+)\. Response: (.*)", re.S)
# ToolAlpaca's agent appended its error-handling advice to every failed return; it is not the API's text.
_ADVICE = ". You should choose one of:"


@dataclass(frozen=True)
class RecordedCall:
    """One call of a recorded solution: `arguments` is None when the model's parameters were not a JSON object."""

    function: str
    raw_arguments: str
    arguments: dict[str, Any] | None
    status: int | None
    response: str


@dataclass
class JudgedSolution:
    """One judged ToolAlpaca solution and GPT-4's two labels (None where the judgement failed).

    `position` is its place in the file's list for its tool, not an instruction index: one 7B entry judges an
    instruction the evaluation file does not have, so match on `instruction` to align with tasks. `standard` holds
    the golden steps exactly as the judge saw them, `(function, raw Action_Input)`.
    """

    model: str
    tool: str
    position: int
    instruction: str
    standard: list[tuple[str, str]] = field(default_factory=list)
    calls: list[RecordedCall] = field(default_factory=list)
    final_response: str = ""
    process: str | None = None
    response: str | None = None
    missing_input: bool = False


def _section(text: str, start: str, end: str) -> str:
    i = text.find(start)
    if i < 0:
        return ""
    i += len(start)
    j = text.find(end, i)
    return text[i : j if j >= 0 else len(text)].strip("\n")


def _call(body: str) -> RecordedCall:
    head, _, rest = body.partition("\n")
    params, returns = rest, ""
    if rest.startswith("Parameters:"):
        params, _, returns = rest[len("Parameters:") :].partition("\nRetruns:")
    raw = params.strip()
    try:
        value = json.loads(raw)
        arguments = value if isinstance(value, dict) else None
    except json.JSONDecodeError:
        arguments = None
    status, response = None, returns.strip()
    if m := _RETURN.match(response):
        status, response = int(m.group(1)), m.group(2)
        if (cut := response.find(_ADVICE)) >= 0:
            response = response[:cut]
    return RecordedCall(head.strip(), raw, arguments, status, response.strip())


def parse_solution(text: str) -> tuple[list[RecordedCall], str]:
    """The calls and final response of one solution section."""
    parts = _STEP.split(text)
    calls: list[RecordedCall] = []
    final = ""
    for kind, body in zip(parts[1::2], parts[2::2], strict=True):
        if kind == "Function":
            calls.append(_call(body))
        else:
            final = body.strip()
    return calls, final


def load_judged(path: str | Path, model: str | None = None) -> list[JudgedSolution]:
    """Every judged solution of one file, in file order (tool, then id)."""
    p = Path(path)
    data = read_json(p)
    if not isinstance(data, dict):
        raise DataError(p, "expected a JSON object of tool name → judged solutions")
    name = model or p.stem
    out: list[JudgedSolution] = []
    for tool, entries in data.items():
        if tool == "statistics":
            continue
        if not isinstance(entries, list):
            raise DataError(p, f"tool {tool!r}: expected a list of judgements")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise DataError(p, f"tool {tool!r}, judgement {i}: not a JSON object")
            messages = entry.get("input") or []
            if not messages:
                out.append(JudgedSolution(name, tool, i, "", missing_input=True))
                continue
            prompt = str(messages[0].get("content", ""))
            if _SOLUTION not in prompt:
                raise DataError(p, f"tool {tool!r}, judgement {i}: no {_SOLUTION!r} section in its input")
            calls, final = parse_solution(_section(prompt, _SOLUTION, "## Analysis"))
            out.append(
                JudgedSolution(
                    model=name,
                    tool=tool,
                    position=i,
                    instruction=_section(prompt, _INSTRUCTION, _STANDARD).strip(),
                    standard=[
                        (m.group(1).strip(), m.group(2).strip())
                        for m in _STANDARD_STEP.finditer(_section(prompt, _STANDARD, _SOLUTION))
                    ],
                    calls=calls,
                    final_response=final,
                    process=entry.get("process_correctness"),
                    response=entry.get("final_response_correctness"),
                )
            )
    return out


def published_statistics(path: str | Path) -> dict[str, Any]:
    """The file's own `statistics` (GPT-4's label counts over the 100 simulated instructions)."""
    data = read_json(path)
    stats = data.get("statistics") if isinstance(data, dict) else None
    if not isinstance(stats, dict):
        raise DataError(path, "no `statistics` object")
    return stats
