"""ToolBench's raw answer files (DFSDT trajectories in OpenAI function-calling messages) → umi trajectories.

Follows the reference preprocessing (stage-1 raw → stage-2 raw) rule for rule, with one fix outside `compat`:
observation text is taken from the `response` field by a parser that survives truncated JSON, where the
reference's fallback left a stray leading ` "` in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from umi.data.io import DataError, Loaded, read_json, validate_trajectory
from umi.format import caller_text, planner_text
from umi.format.naming import MAX_NAME
from umi.schema import Trajectory

FINISH = "Finish"
GIVE_UP = "give_up_and_restart"
#: The reference's stage-1 script wrote only the first 20 trajectories (a debug leftover); `compat` keeps it.
COMPAT_STAGE1_LIMIT = 20


def tool_doc_from_function(fn: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function of an answer file → the released tool layout (last 64 chars of the name,
    description[:256], `{arg: "<type>, <desc[-256:]>"}` or `"<type>"` without a description)."""
    params = (fn.get("parameters") or {}).get("properties") or {}
    inputs: dict[str, str] = {}
    for arg, spec in params.items():
        kind = str(spec.get("type", "string"))
        desc = spec.get("description")
        inputs[arg] = f"{kind}, {desc[-256:]}" if desc is not None else kind
    return {"Name": fn["name"][-MAX_NAME:], "function": str(fn.get("description", ""))[:256], "input": inputs}


def _finish_args(arguments: Any) -> dict[str, Any]:
    """Finish arguments: a dict or a JSON string; a string search rescues text that is not JSON."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments)
        if isinstance(value, dict):
            return value
    except (json.JSONDecodeError, TypeError):
        pass
    text = str(arguments)
    out: dict[str, Any] = {"return_type": GIVE_UP if GIVE_UP in text else "give_answer"}
    m = re.search(r'"final_answer"\s*:\s*"(.*)', text, re.S)
    if m:
        out["final_answer"] = m.group(1).rstrip().rstrip("}").rstrip().rstrip('"')
    return out


def observation_text(content: str, *, compat: bool = False) -> str:
    """The `response` field of a function message. `compat` reproduces the reference's fallbacks exactly."""
    try:
        value = json.loads(content)
        if isinstance(value, dict) and "response" in value:
            resp = value["response"]
            return resp if isinstance(resp, str) else json.dumps(resp)
    except json.JSONDecodeError:
        pass
    idx = content.find('"response":')
    if idx < 0:
        return ""
    rest = content[idx + len('"response":') :]
    if compat:
        return rest  # keeps the leading ` "` the reference left in its text
    m = re.match(r'\s*"((?:[^"\\]|\\.)*)', rest, re.S)
    if not m:
        return rest.strip()
    try:
        return str(json.loads('"' + m.group(1) + '"'))
    except json.JSONDecodeError:
        return m.group(1)


def chain_to_conversations(
    instruction: str, chain: Sequence[dict[str, Any]], *, compat: bool = False
) -> list[dict[str, str]]:
    """The reference's stage-2 walk over `chain[2:]` (system prompt and first user message skipped).

    Outside `compat`, a content-only assistant turn right before a call that carries no content of its own (in
    StableToolBench's CoT/DFS answer files: the thought, then a bare `Finish` call) gives that call its thought;
    the reference dropped it, leaving the final step without a rationale.
    """
    conv: list[dict[str, str]] = [{"from": "user", "value": instruction}]
    pending: str | None = None
    for msg in chain[2:]:
        role = msg.get("role")
        if role == "assistant":
            call = msg.get("function_call")
            if not call:
                pending = None if compat else (msg.get("content") or None)
                continue  # content-only assistant turns were dropped by the reference
            content = msg.get("content") or pending
            pending = None
            if call.get("name") != FINISH:
                conv.append({"from": "assistant", "value": planner_text(content, "caller")})
                conv.append({"from": "caller", "value": caller_text(call["name"], str(call.get("arguments", "")))})
                continue
            args = _finish_args(call.get("arguments", ""))
            if args.get("return_type") == GIVE_UP:
                conv.append({"from": "assistant", "value": planner_text(content, "give up")})
            else:
                conv.append({"from": "assistant", "value": planner_text(content, "conclusion")})
                conv.append({"from": "conclusion", "value": str(args.get("final_answer") or "none")})
        elif role == "function":
            pending = None
            conv.append({"from": "observation", "value": observation_text(str(msg.get("content", "")), compat=compat)})
        elif role == "user":
            pending = None
            conv.append({"from": "user", "value": str(msg.get("content", ""))})
        else:
            raise ValueError(f"unknown message role {role!r}")
    return conv


def answer_to_stage1(data: Any, path: str | Path) -> dict[str, Any]:
    """One answer file → the stage-1 raw record `{tools, instruction, chains}`; a `DataError` says what is missing."""
    if not isinstance(data, dict) or not isinstance(data.get("answer_generation"), dict):
        raise DataError(path, "not a ToolBench answer file: no 'answer_generation' object")
    ag = data["answer_generation"]
    messages = ag.get("train_messages")
    if not messages:
        raise DataError(
            path, "answer_generation has no train_messages (ToolBench marks it invalid_data; nothing to train on)"
        )
    if not isinstance(ag.get("query"), str):
        raise DataError(path, "answer_generation has no 'query' string")
    functions = [f for f in ag.get("function", []) if f.get("name") != FINISH]
    return {"tools": [tool_doc_from_function(f) for f in functions], "instruction": ag["query"], "chains": messages[-1]}


def stage1_to_trajectory(record: dict[str, Any], path: str | Path, index: int, *, compat: bool = False) -> Trajectory:
    try:
        conv = chain_to_conversations(record["instruction"], record["chains"], compat=compat)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"malformed chain ({exc})", index) from None
    return validate_trajectory(
        {"tools": record["tools"], "instruction": record["instruction"], "conversations": conv}, path, index
    )


def load_answer_folder(folder: str | Path, *, compat: bool = False, skip_invalid: bool = False) -> Loaded:
    """Every `*.json` answer file under `folder` (sorted), as trajectories. Invalid files raise, or are skipped
    and reported with `skip_invalid`."""
    root = Path(folder)
    files = sorted(root.rglob("*.json"))
    if not files:
        raise DataError(root, "no *.json answer files found; point at ToolBench's answer/ folder")
    out = Loaded()
    records: list[tuple[Path, dict[str, Any]]] = []
    for f in files:
        try:
            records.append((f, answer_to_stage1(read_json(f), f)))
        except DataError as err:
            if not skip_invalid:
                raise
            out.skipped.append(err)
    if compat:
        records = records[:COMPAT_STAGE1_LIMIT]
    for i, (f, rec) in enumerate(records):
        try:
            out.items.append(stage1_to_trajectory(rec, f, i, compat=compat))
        except DataError as err:
            if not skip_invalid:
                raise
            out.skipped.append(err)
    return out
