"""Each metric on hand-made cases, with every quirk of the reference kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from umi.evaluate.baselines import write_baseline
from umi.evaluate.metrics import PredictionRow, arg_f1, read_predictions, rouge_l, score
from umi.schema import ToolDoc, Trajectory, Turn

TRAJ = Trajectory(
    tools=[ToolDoc(Name="a_for_t"), ToolDoc(Name="b_for_t")],
    instruction="q",
    conversations=[Turn.model_validate({"from": "user", "value": "q"})],
)


def call(action: str, args: str = "{}") -> str:
    return f"assistant: t\n Next: caller.</s>caller: Action: {action}\nAction Input: {args}"


def finish(answer: str) -> str:
    return f"assistant: t\n Next: conclusion.</s>conclusion: {answer}"


GIVE_UP = "t\n Next: give up."


def rows(*pairs: tuple[str, str]) -> list[PredictionRow]:
    return [PredictionRow(0, i, r, p) for i, (r, p) in enumerate(pairs)]


def test_arg_f1_quirks() -> None:
    assert arg_f1("a", "b", '{"x": 1}', '{"x": 1}') == 0.0  # names differ
    assert arg_f1("a", "a", "{not json", "{}") is None  # reference does not parse: dropped
    assert arg_f1("a", "a", '{"x": 1}', "[1]") == 0.0  # prediction not a dict
    assert arg_f1("a", "a", '{"x": 1}', "oops") == 0.0
    assert arg_f1("a", "a", "{}", "{}") == 1.0
    assert arg_f1("a", "a", "{}", '{"x": 1}') == 0.0
    assert arg_f1("a", "a", '{"x": 5}', '{"x": "5"}') == pytest.approx(0.5)  # "5" != 5: half hit only
    assert arg_f1("a", "a", '{"x": 5}', '{"x": "5"}', clean=True) == 1.0
    # one full hit of two reference keys, one extra predicted key: R = 1/2, P = 1/2
    assert arg_f1("a", "a", '{"x": 1, "y": 2}', '{"x": 1, "z": 3}') == pytest.approx(0.5)
    assert arg_f1("a", "a", '{"x": 1}', "{}") == 0.0  # zero division → 0
    assert arg_f1("a", "b", "{not json", "{}") == 0.0  # names are compared first: kept, scores 0
    assert arg_f1("a", "a", '{"x": 1, "y": 2}', '{"x": 1, "y": 3}') == pytest.approx(0.75)  # one full, one half hit
    assert arg_f1("a", "a", '{"x": "Paris"}', '{"x": "paris"}') == pytest.approx(0.5)  # case-sensitive values


def test_clean_variant_is_type_and_case_lenient() -> None:
    assert arg_f1("a", "a", '{"x": [1, "2"]}', '{"x": ["1", 2]}', clean=True) == 1.0
    assert arg_f1("a", "a", '{"x": true}', '{"x": "True"}', clean=True) == 1.0
    assert arg_f1("a", "a", '{"x": "Paris "}', '{"x": "Paris"}', clean=True) == 1.0
    assert arg_f1("a", "a", '{"x": "AAPL"}', '{"x": "aapl"}', clean=True) == 1.0  # strings case-insensitive
    assert arg_f1("a", "a", '{"x": "AAPL"}', '{"x": "aapl"}') == pytest.approx(0.5)  # exact: case-sensitive
    assert arg_f1("a", "a", '{"x": null}', '{"x": null}', clean=True) == 1.0
    assert arg_f1("a", "a", '{"x": 5}', '{"x": "5.0"}', clean=True) == 1.0
    assert arg_f1("a", "a", '{"x": 5}', '{"x": "6"}', clean=True) == pytest.approx(0.5)
    assert arg_f1("A", "a", "{}", "{}", clean=True) == 0.0  # names stay exact in the clean variant


def test_easy_and_hard_parts() -> None:
    r = score(
        rows(
            (call("a_for_t", "{}"), call("a_for_t", "{}")),  # easy, 1
            (call("a_for_t", "{}"), call("a_for_t", '{"q": 1}')),  # easy, 0
            (call("b_for_t", '{"q": 1}'), call("b_for_t", '{"q": 1}')),  # hard, 1
            (call("b_for_t", "{bad"), call("a_for_t", "{}")),  # names differ first: hard, 0, not dropped
        ),
        [TRAJ],
    )
    assert r["arg_dropped"] == 0
    assert (r["arg_f1"], r["arg_f1_easy"], r["arg_f1_hard"]) == (50.0, 50.0, 50.0)


def test_plan_act_hallu_denominators() -> None:
    r = score(
        rows(
            (call("a_for_t"), call("a_for_t")),  # right
            (call("a_for_t"), call("zzz")),  # hallucinated name
            (finish("yes"), call("b_for_t")),  # wrong plan, not a hallucination
            (GIVE_UP, GIVE_UP),
            (call("b_for_t"), "assistant: no marker</s>caller: nothing"),  # no marker = call, action none
        ),
        [TRAJ],
    )
    assert r["steps"] == 5 and r["call_steps"] == 3 and r["finish_steps"] == 1 and r["giveup_steps"] == 1
    assert r["plan_acc"] == 80.0  # 4 of 5 (the no-marker row counts as a call)
    assert r["act_em"] == pytest.approx(33.33)
    assert r["hallu"] == 20.0  # 1 of ALL 5 steps; `none` is not a hallucination
    assert r["rouge_l"] == pytest.approx(100 * rouge_l(["none"], ["yes"]))


def test_rouge_hypothesis_none_when_the_prediction_did_not_finish() -> None:
    r = score(rows((finish("none"), call("a_for_t")), (finish("yes it is"), finish("yes it is"))), [TRAJ])
    assert r["finish_steps"] == 2 and r["rouge_l"] == pytest.approx(100.0, abs=0.01)  # "none" vs "none" scores 1
    r = score(
        rows(
            (finish("the weather is sunny"), GIVE_UP),
        ),
        [TRAJ],
    )
    assert r["rouge_l"] == 0.0 and r["plan_acc"] == 0.0


def test_hallucination_rules() -> None:
    r = score(
        rows(
            (call("a_for_t"), call("Finish")),  # Finish is not in the tool list: a hallucination
            (call("a_for_t"), call("A_FOR_T")),  # exact, case-sensitive names
            (finish("x"), "assistant: t\n Next: caller.</s>caller: no action here"),  # action none: not counted
            (GIVE_UP, finish("zzz")),  # not a call: not counted
        ),
        [TRAJ],
    )
    assert r["hallu"] == 50.0 and r["act_em"] == 0.0  # 2 of ALL 4 steps


def test_rouge_none_and_case() -> None:
    assert rouge_l(["The answer is 4."], ["The answer is 4."]) == pytest.approx(1.0, abs=1e-6)
    assert rouge_l(["the answer"], ["The Answer"]) == 0.0  # the reference's ROUGE-L is case-sensitive
    assert rouge_l(["the answer"], ["The Answer"], clean=True) == pytest.approx(1.0, abs=1e-6)
    assert rouge_l(["a b c d"], ["a c"]) == pytest.approx(2 / 3, abs=1e-6)  # LCS 2: P 2/4, R 2/2
    # an empty (or only " .") text is scored as the word `none` (the library raises on empty text)
    assert rouge_l([""], ["x"]) == 0.0
    assert rouge_l([""], ["none"]) == pytest.approx(1.0, abs=1e-6)
    assert rouge_l([" ."], ["none"]) == pytest.approx(1.0, abs=1e-6)


def test_dropped_reference_is_reported() -> None:
    r = score(rows((call("a_for_t", "{broken"), call("a_for_t", "{}"))), [TRAJ])
    assert r["arg_dropped"] == 1 and r["act_em"] == 100.0 and r["arg_f1"] == 0.0


def test_gold_scores_perfectly_on_the_paper_test_set(ood_path: Path, tmp_path: Path) -> None:
    from umi.data import load_trajectories

    path = write_baseline("gold", ood_path, tmp_path)
    r = score(read_predictions(str(path)), load_trajectories(ood_path).items)
    assert (r["plan_acc"], r["act_em"], r["hallu"], r["arg_f1"], r["rouge_l"]) == (100.0, 100.0, 0.0, 100.0, 100.0)
    assert (r["steps"], r["call_steps"], r["finish_steps"], r["giveup_steps"]) == (1547, 1146, 294, 107)


def test_lexical_baseline_calls_task_apis_skips_called_ones_and_beats_the_first_tool(
    ood_path: Path, tmp_path: Path
) -> None:
    from umi.data import iter_steps, load_trajectories
    from umi.evaluate.baselines import lexical_choice

    trajs = load_trajectories(ood_path).items
    lexical = score(read_predictions(str(write_baseline("lexical", ood_path, tmp_path / "lex"))), trajs)
    first = score(read_predictions(str(write_baseline("first-tool", ood_path, tmp_path / "first"))), trajs)
    assert lexical["hallu"] == 0.0 and lexical["plan_acc"] == first["plan_acc"]
    # Measured: 41.62 vs 26.35 Act EM, 16.40 vs 10.73 Arg F1 on the 1,146 call steps.
    assert lexical["act_em"] > first["act_em"] + 10 and lexical["arg_f1"] > first["arg_f1"]
    for s in iter_steps(trajs):
        called = {t.value.split("\n")[0].removeprefix("Action: ") for t in s.history if t.role == "caller"}
        choice = lexical_choice(s)
        assert choice in trajs[s.traj].tool_names
        assert choice not in called or called >= set(trajs[s.traj].tool_names), (s.traj, s.step)


def test_first_tool_baseline(ood_path: Path, tmp_path: Path) -> None:
    from umi.data import iter_steps, load_trajectories

    trajs = load_trajectories(ood_path).items
    r = score(read_predictions(str(write_baseline("first-tool", ood_path, tmp_path))), trajs)
    assert r["hallu"] == 0.0
    calls = [s for s in iter_steps(trajs) if s.route == "caller"]
    first = sum(1 for s in calls if (s.action or "").split("\n")[0] == f"Action: {trajs[s.traj].tool_names[0]}")
    assert r["act_em"] == pytest.approx(round(100 * first / len(calls), 2))


def test_first_uncalled_baseline_calls_the_first_tool_the_history_has_not(ood_path: Path, tmp_path: Path) -> None:
    from umi.data import iter_steps, load_trajectories
    from umi.evaluate.baselines import first_uncalled

    trajs = load_trajectories(ood_path).items
    r = score(read_predictions(str(write_baseline("first-uncalled", ood_path, tmp_path / "fu"))), trajs)
    first = score(read_predictions(str(write_baseline("first-tool", ood_path, tmp_path / "first"))), trajs)
    assert r["hallu"] == 0.0 and r["plan_acc"] == first["plan_acc"]
    assert r["act_em"] > first["act_em"]  # the gold call is rarely the one just made
    for s in iter_steps(trajs):
        names = trajs[s.traj].tool_names
        called = {t.value.split("\n")[0].removeprefix("Action: ") for t in s.history if t.role == "caller"}
        want = next((n for n in names if n not in called), names[0])
        assert first_uncalled(s) == want, (s.traj, s.step)
