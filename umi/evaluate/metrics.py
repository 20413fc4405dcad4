"""The paper's five static metrics, exactly as the reference computed them (×100), plus a documented clean variant.

Quirks kept on purpose (for comparability): Plan ACC over all steps with no marker counting as a call; Hallu.
over *all* steps; Arg. F1 scores differing names 0 first, then drops steps whose reference arguments do not parse
(counted as `arg_dropped`), compares values with Python `==` after JSON parsing (`"5" != 5`), and gives `{}`
references 1 only for `{}`; ROUGE-L is `rouge==1.0.1`'s
set-based union-LCS F, with hypothesis `none` when the prediction did not finish. `clean=True` compares argument
values type-leniently, as `str(a) == str(b)` with strings compared case-insensitively (`"5" == 5`, `"true" == true`,
`"Paris" == "paris"`, surrounding spaces ignored; action names stay exact) and lowercases ROUGE text; it is reported
beside the exact numbers, never instead.
Two reference crashes are not reproduced: no easy (or hard) steps gives 0 instead of `ZeroDivisionError`, and an
empty text given to ROUGE becomes `none` instead of raising. The reference's `+1e-30` after its division is left out
(it moves no printed digit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from umi.format import parse_step_text
from umi.schema import Trajectory


@dataclass(frozen=True)
class PredictionRow:
    """One line of `predictions.jsonl`: both texts in the reference layout, so one parser scores both."""

    traj: int
    step: int
    reference: str
    prediction: str


def _lenient(value: Any) -> Any:
    """A value as the clean variant compares it: `str(a) == str(b)`, case-insensitive for strings. Numbers and
    numeric strings become floats (so `5`, `5.0` and `"5"` agree, which a bare `str()` would not), booleans and
    `"True"`/`"false"` the same word, other strings are stripped and casefolded, containers element-wise. The point
    is to measure whether the model meant the right value, not whether it typed the JSON the way the data did."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in ("true", "false"):
            return text
        try:
            return float(text)
        except ValueError:
            return text
    if isinstance(value, list):
        return [_lenient(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _lenient(v) for k, v in value.items()}
    return value  # null stays null


def _values_equal(a: Any, b: Any, clean: bool) -> bool:
    return bool(_lenient(a) == _lenient(b)) if clean else bool(a == b)


def arg_f1(ref_action: str, pred_action: str, ref_args: str, pred_args: str, *, clean: bool = False) -> float | None:
    """One step's argument F1 in the reference's order of checks; None when the step is dropped.

    Names that differ score 0 before anything is parsed; only then does an unparsable reference drop the step
    (the reference's silent `continue`), and an unparsable or non-object prediction score 0.
    """
    if ref_action != pred_action:
        return 0.0
    try:
        ref = json.loads(ref_args)
    except json.JSONDecodeError:
        return None
    try:
        pred = json.loads(pred_args)
    except json.JSONDecodeError:
        return 0.0
    if not isinstance(pred, dict) or not isinstance(ref, dict):
        return 0.0
    if ref == {}:
        return 1.0 if pred == {} else 0.0
    full = half = 0
    for key, value in ref.items():
        if key in pred and _values_equal(pred[key], value, clean):
            full += 1
        elif key in pred:
            half += 1
    try:
        recall = (full + 0.5 * half) / len(ref)
        precision = (full + 0.5 * half) / len(pred)
        return 2 * precision * recall / (precision + recall)
    except ZeroDivisionError:
        return 0.0


def is_easy(ref_args: str) -> bool:
    """An "easy" Arg. F1 step: the reference arguments are `{}` (471 of the 1,146 out-of-domain calls)."""
    try:
        return bool(json.loads(ref_args) == {})
    except json.JSONDecodeError:
        return False


def rouge_l(hyps: Sequence[str], refs: Sequence[str], *, clean: bool = False) -> float:
    """`rouge==1.0.1` `rouge-l` F averaged over pairs; empty texts become `none` (the library raises on them)."""
    if not hyps:
        return 0.0
    from rouge import Rouge

    def prep(t: str) -> str:
        t = t.lower() if clean else t
        return t if t.strip(" .") else "none"

    scores = Rouge().get_scores([prep(h) for h in hyps], [prep(r) for r in refs], avg=True)
    return float(scores["rouge-l"]["f"])


def score(rows: Iterable[PredictionRow], trajectories: Sequence[Trajectory], *, clean: bool = False) -> dict[str, Any]:
    """Plan ACC, Act. EM, Hallu., Arg. F1 (all, easy, hard), ROUGE-L, ×100, and the step counts."""
    rows = list(rows)
    plan_hits = act_hits = hallu = 0
    call_steps = finish_steps = giveup_steps = dropped = 0
    f1_all: list[float] = []
    f1_easy: list[float] = []
    f1_hard: list[float] = []
    hyps: list[str] = []
    refs: list[str] = []
    for row in rows:
        ref = parse_step_text(row.reference)
        pred = parse_step_text(row.prediction)
        names = set(trajectories[row.traj].tool_names)
        plan_hits += ref.plan == pred.plan
        if pred.plan == "call" and pred.action != "none" and pred.action not in names:
            hallu += 1
        if ref.plan == "call":
            call_steps += 1
            act_hits += ref.action == pred.action
            f1 = arg_f1(ref.action, pred.action, ref.action_input, pred.action_input, clean=clean)
            if f1 is None:
                dropped += 1
            else:
                f1_all.append(f1)
                (f1_easy if is_easy(ref.action_input) else f1_hard).append(f1)
        elif ref.plan == "finish":
            finish_steps += 1
            refs.append(ref.answer)
            hyps.append(pred.answer if pred.plan == "finish" else "none")
        else:
            giveup_steps += 1
    n = len(rows)

    def pct(num: float, den: int) -> float:
        return round(100.0 * num / den, 2) if den else 0.0

    def mean(xs: list[float]) -> float:
        return round(100.0 * sum(xs) / len(xs), 2) if xs else 0.0

    return {
        "plan_acc": pct(plan_hits, n),
        "act_em": pct(act_hits, call_steps),
        "hallu": pct(hallu, n),
        "arg_f1": mean(f1_all),
        "arg_f1_easy": mean(f1_easy),
        "arg_f1_hard": mean(f1_hard),
        "rouge_l": round(100.0 * rouge_l(hyps, refs, clean=clean), 2),
        "steps": n,
        "call_steps": call_steps,
        "finish_steps": finish_steps,
        "giveup_steps": giveup_steps,
        "arg_dropped": dropped,
    }


def read_predictions(path: str) -> list[PredictionRow]:
    """predictions.jsonl rows; a last line cut by a crash is skipped, and duplicates keep the first."""
    from pathlib import Path

    seen: set[tuple[int, int]] = set()
    out: list[PredictionRow] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        key = (int(d["traj"]), int(d["step"]))
        if key not in seen:
            seen.add(key)
            out.append(PredictionRow(key[0], key[1], d["reference"], d["prediction"]))
    return out
