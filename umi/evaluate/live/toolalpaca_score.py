"""ToolAlpaca's two correctness questions, answered the way umi can: the process by rule, the final response by a
judge model.

ToolAlpaca asked GPT-4 both questions with one prompt. Its process criteria are mechanical enough for a rule:

- every step of the standard answer must appear among the agent's calls (each golden step matched by its own
  call, in any order; `[Optional]` steps need not appear);
- a matched call must carry the golden value of every parameter the instruction mentions (a value is "mentioned"
  when its text, or any comma-separated part of it, occurs in the instruction; numbers also as words from
  two to twenty); parameters the instruction does not mention, and ToolAlpaca's `${…}` placeholders, may differ;
- retries after an error and extra calls to the functions of the standard answer are allowed, and so are calls
  to ToolAlpaca's `getDetails` and read-only (GET) lookups; calls to any other function are unrelated and fail it.

The rule is calibrated against GPT-4's labels on ToolAlpaca-7B/13B's solutions by
`benchmarks/toolalpaca_rule_calibration.py`. The final response goes to a judge with ToolAlpaca's criteria in
umi's words; an episode that ended without an answer is "No" without asking.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from umi.data.toolalpaca import ASK_USER, GoldenStep, is_placeholder

VERDICTS = ("Yes", "No", "Uncertain")
# "one" is left out: in instructions it is nearly always a pronoun ("which one I saw"), not a count.
_NUMBER_WORDS = (
    "- - two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
).split()
Judge = Callable[[str], str]


@dataclass(frozen=True)
class Call:
    """One call the agent made: the function, its arguments, and whether the tool answered without error."""

    function: str
    arguments: dict[str, Any]
    ok: bool = True


@dataclass
class ProcessVerdict:
    correct: bool
    reasons: list[str] = field(default_factory=list)


def _norm(text: str) -> str:
    """Case, runs of spaces and trailing punctuation do not count ("Your Lie in April." == "your lie in april")."""
    return " ".join(str(text).casefold().split()).rstrip(".!?;:")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _parts(value: Any) -> list[Any]:
    """A list, or a comma-separated string, as its items; anything else as itself."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and "," in value:
        return [p for p in (s.strip() for s in value.split(",")) if p]
    return [value]


def mentioned(value: Any, instruction: str) -> bool:
    """Whether the instruction states this golden value (so the agent must reproduce it)."""
    if is_placeholder(value) or value is None or value == "" or isinstance(value, bool):
        return False
    if isinstance(value, dict):
        return any(mentioned(v, instruction) for v in value.values())
    parts = _parts(value)
    if len(parts) > 1:
        return any(mentioned(p, instruction) for p in parts)
    text = _norm(instruction)
    num = _number(value)
    if num is not None and num == int(num):
        n = int(num)
        words = [str(n)] + ([_NUMBER_WORDS[n]] if 2 <= n < len(_NUMBER_WORDS) else [])
        return any(re.search(rf"(?<![\w.]){re.escape(w)}(?![\w])", text) for w in words)
    return _norm(str(value)) in text


def same_value(golden: Any, got: Any, instruction: str) -> bool:
    """Golden and agent value agree: numbers numerically ("3" == 3), text case- and space-insensitively, lists and
    comma-separated strings as sets of their mentioned items, objects on their mentioned keys."""
    if is_placeholder(golden):
        return True
    if isinstance(golden, dict):
        if not isinstance(got, dict):
            return False
        return all(same_value(v, got.get(k), instruction) for k, v in golden.items() if mentioned(v, instruction))
    gold_parts, got_parts = _parts(golden), _parts(got)
    if len(gold_parts) > 1 or isinstance(golden, list):
        need = [p for p in gold_parts if mentioned(p, instruction)] or gold_parts
        return all(any(same_value(p, q, instruction) for q in got_parts) for p in need)
    a, b = _number(golden), _number(got)
    if a is not None and b is not None:
        return a == b
    if got is None:
        return False
    return _norm(str(golden)) == _norm(str(got))


def _matches(step: GoldenStep, call: Call, instruction: str) -> bool:
    if call.function != step.action:
        return False
    return all(
        same_value(v, call.arguments.get(k), instruction)
        for k, v in step.arguments.items()
        if mentioned(v, instruction)
    )


def process_correct(
    golden: Sequence[GoldenStep],
    calls: Sequence[Call],
    instruction: str,
    *,
    read_only: Callable[[str], bool] = lambda name: False,
) -> ProcessVerdict:
    """ToolAlpaca's process criteria as a rule (see the module docstring); `read_only(name)` says which
    functions count as lookups (the suites pass "its HTTP method is GET")."""
    reasons: list[str] = []
    used: set[int] = set()
    for j, step in enumerate(golden):
        if step.optional:
            continue
        hit = next((i for i, c in enumerate(calls) if i not in used and _matches(step, c, instruction)), None)
        if hit is None:
            same = [c for c in calls if c.function == step.action]
            why = "with the instruction's values" if same else "at all"
            reasons.append(f"golden step {j} ({step.action}) not called {why}")
        else:
            used.add(hit)
    allowed = {s.action for s in golden} | {ASK_USER}
    for c in calls:
        if c.function not in allowed and not read_only(c.function):
            reasons.append(f"unrelated call to {c.function}")
    return ProcessVerdict(not reasons, reasons)


def solution_text(calls: Sequence[tuple[str, dict[str, Any], str]], final_response: str) -> str:
    """A solution as ToolAlpaca's judge was shown it: numbered calls with their returns, then the final response."""
    lines: list[str] = []
    for i, (name, args, returned) in enumerate(calls, 1):
        lines += [
            f"{i}. Function: {name}",
            f"Parameters: {json.dumps(args, ensure_ascii=False)}",
            f"Returns: {returned}",
        ]
    lines.append(f"{len(calls) + 1}. Final Response: {final_response}")
    return "\n".join(lines)


def standard_text(golden: Sequence[GoldenStep]) -> str:
    lines: list[str] = []
    for i, s in enumerate(golden, 1):
        name = ("(optional) " if s.optional else "") + s.action
        lines += [f"{i}. Function: {name}", f"Parameters: {json.dumps(s.arguments, ensure_ascii=False)}"]
    return "\n".join(lines)


def response_prompt(documentation: str, instruction: str, standard: str, solution: str) -> str:
    """umi's wording of ToolAlpaca's final-response question."""
    return (
        "You check an AI assistant's answer to a user's request that it served by calling a REST API.\n"
        f"API documentation:\n{documentation[:3000]}\n\n"
        f"User request: {instruction}\n\n"
        f"Reference calls (names and parameters only):\n{standard}\n\n"
        f"The assistant's calls, what each returned, and its final response:\n{solution}\n\n"
        "Question: does the final response faithfully sum up what the calls returned and give the user a reasonable "
        "answer to the request? Reply Yes if it does, No if it misstates the returns or does not answer, Uncertain "
        "if you cannot tell. Reply with one word: Yes, No or Uncertain.\nVerdict:"
    )


def parse_yes_no(text: str) -> str:
    """The first of Yes / No / Uncertain in a judge's reply; no verdict word is Uncertain."""
    low = text.casefold()
    hits = [(m.start(), w) for w in VERDICTS for m in [re.search(rf"\b{w.casefold()}\b", low)] if m]
    return min(hits)[1] if hits else "Uncertain"
