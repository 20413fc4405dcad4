"""Role grammars accept the released gold outputs and reject what the wire format forbids.

String matching only (no model): each gold text is tokenized with the embedded model's tokenizer and fed to an
llguidance matcher, which is exactly the check an engine applies token by token.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from umi.format import backbone_turn_text
from umi.format.grammar import backbone_grammar, caller_grammar, planner_grammar
from umi.schema import Param, ToolSpec, Trajectory

llguidance = pytest.importorskip("llguidance")


@pytest.fixture(scope="module")
def tok() -> tuple[Any, Any]:
    import llguidance.hf
    from transformers import AutoTokenizer

    from umi.models.embedded import embedded_gguf

    gguf = embedded_gguf()
    hf = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return hf, llguidance.hf.from_tokenizer(hf)


def _reject_reason(tok: tuple[Any, Any], grammar: str, text: str, cache: dict[str, Any]) -> str | None:
    hf, ll = tok
    base = cache.get(grammar)
    if base is None:
        base = cache[grammar] = llguidance.LLMatcher(ll, grammar, log_level=0)
        assert not base.is_error(), base.get_error()[:500]
    m = base.deep_copy()
    if m.consume_tokens(hf.encode(text, add_special_tokens=False)) and m.is_accepting():
        return None
    return m.get_error().splitlines()[0][:160] if m.get_error() else "text ends before the grammar does"


def test_gold_outputs_of_the_test_set_are_accepted(ood_path: Path, tok: tuple[Any, Any]) -> None:
    cache: dict[str, Any] = {}
    seen: Counter[str] = Counter()
    rejected: dict[str, list[str]] = {"planner": [], "caller": [], "backbone": []}
    for ti, raw in enumerate(json.loads(ood_path.read_text())):
        traj = Trajectory.model_validate(raw)
        conv = traj.conversations
        for i, turn in enumerate(conv):
            nxt = conv[i + 1] if i + 1 < len(conv) else None
            checks: list[tuple[str, str, str]] = []
            if turn.role == "assistant" and "Next: " in turn.value:
                checks.append(("planner", planner_grammar(), turn.value))
                following = nxt if nxt is not None and nxt.role in ("caller", "conclusion") else None
                checks.append(("backbone", backbone_grammar(traj.tools), backbone_turn_text(turn.value, following)))
            elif turn.role == "caller" and "invalid_hallucination" not in turn.value:
                checks.append(("caller", caller_grammar(traj.tools), turn.value))
            for role, grammar, text in checks:
                seen[role] += 1
                why = _reject_reason(tok, grammar, text, cache)
                if why:
                    rejected[role].append(f"traj {ti} turn {i}: {why}: …{text[-100:]!r}")
    for role, rows in rejected.items():
        share = 1 - len(rows) / seen[role]
        print(
            f"{role}: {seen[role] - len(rows)}/{seen[role]} accepted ({share:.2%}); rejected:\n  " + "\n  ".join(rows)
        )
        assert share >= 0.99, f"{role}: only {share:.2%} of gold outputs accepted"
    assert seen["planner"] == 1547 and seen["caller"] > 1100


def test_grammars_refuse_what_the_format_forbids(tok: tuple[Any, Any]) -> None:
    tools = [
        ToolSpec(
            name="search_for_youtube",
            parameters=[Param(name="q", type="string", required=True), Param(name="limit", type="integer")],
        )
    ]
    cache: dict[str, Any] = {}
    plan, call = planner_grammar(), caller_grammar(tools)
    assert _reject_reason(tok, plan, "I will search. Next: caller.", cache) is None
    assert _reject_reason(tok, plan, "I will search.\n Next: give up.", cache) is None
    assert _reject_reason(tok, plan, "I will search.</s> Next: caller.", cache)  # end-of-turn text
    assert _reject_reason(tok, plan, "a Next: caller. Next: caller.", cache)  # a second marker
    assert _reject_reason(tok, plan, "no marker at all", cache)
    ok = 'Action: search_for_youtube\nAction Input: {\n  "q": "cats",\n  "limit": 3\n}'
    assert _reject_reason(tok, call, ok, cache) is None
    assert _reject_reason(tok, call, 'Action: search_for_youtub\nAction Input: {"q": "x"}', cache)  # unknown API
    assert _reject_reason(tok, call, 'Action: search_for_youtube\nAction Input: {"limit": 3}', cache)  # required q
    assert _reject_reason(tok, call, 'Action: search_for_youtube\nAction Input: {"q": "x", "z": 1}', cache)
    assert _reject_reason(tok, call, 'Action: search_for_youtube\nAction Input: {"q": 5}', cache)  # type
    assert caller_grammar(tools) is call  # compiled once per tool set
    back = backbone_grammar(tools)
    assert _reject_reason(tok, back, "I will search.\n" + ok, cache) is None
    assert _reject_reason(tok, back, "I will use Action: the search tool.\n" + ok, cache) is None  # released shape
    fake = 'I will search.\nAction: YouTube Search\nAction Input: {"q": "x"}\n' + ok  # a fake block in the thought
    assert _reject_reason(tok, back, fake, cache)


def test_a_degenerate_string_is_closed_after_its_token_bound(tok: tuple[Any, Any]) -> None:
    """A model repeating one character inside a string value: after `string_tokens` tokens the grammar allows
    only the closing quote or an escape (the string stays valid JSON), never one more plain character."""
    from umi.format.grammar import Bounds

    hf, ll = tok
    tools = [ToolSpec(name="search", parameters=[Param(name="q", type="string", required=True)])]
    grammar = caller_grammar(tools, Bounds(string_tokens=5))
    m = llguidance.LLMatcher(ll, grammar, log_level=0)
    assert not m.is_error(), m.get_error()
    assert m.consume_tokens(hf.encode('Action: search\nAction Input: {"q": "', add_special_tokens=False))
    x = hf.encode("x", add_special_tokens=False)
    assert len(x) == 1
    fed = 0
    while m.validate_tokens(x) == 1:
        assert m.consume_tokens(x)
        fed += 1
        assert fed < 50, "the string never closes"
    assert fed == 5
    assert m.consume_tokens(hf.encode('"}', add_special_tokens=False)) and m.is_accepting()
    # The same text is valid JSON: the bound cut the string, not its quoting.
    text = 'Action: search\nAction Input: {"q": "' + "x" * fed + '"}'
    assert json.loads(text.split("Action Input: ", 1)[1]) == {"q": "xxxxx"}


def test_backbone_tail_grammar_takes_only_an_action_block_or_a_conclusion(tok: tuple[Any, Any]) -> None:
    from umi.format.grammar import backbone_tail_grammar

    tools = [ToolSpec(name="search", parameters=[Param(name="q", type="string", required=True)])]
    tail, cache = backbone_tail_grammar(tools), {}
    assert _reject_reason(tok, tail, 'Action: search\nAction Input: {"q": "cats"}', cache) is None
    assert _reject_reason(tok, tail, "conclusion: Cats are mammals.", cache) is None
    assert _reject_reason(tok, tail, "Action: I will search", cache)  # prose is not an API name here
    assert _reject_reason(tok, tail, "more thought", cache)


def test_final_step_grammars_leave_out_the_call(tok: tuple[Any, Any]) -> None:
    """On the step budget's last step the planner may only conclude or give up, the backbone only conclude."""
    from umi.format.grammar import backbone_tail_grammar, marker_grammar

    tools = [ToolSpec(name="search", parameters=[Param(name="q", type="string", required=True)])]
    cache: dict[str, Any] = {}
    thought = "I have the results, so I can answer now."
    for final, caller_ok in ((False, True), (True, False)):
        planner = planner_grammar(final=final)
        assert (_reject_reason(tok, planner, f"{thought}\n Next: caller.", cache) is None) is caller_ok
        assert _reject_reason(tok, planner, f"{thought}\n Next: conclusion.", cache) is None
        assert _reject_reason(tok, planner, f"{thought}\n Next: give up.", cache) is None
        assert (_reject_reason(tok, marker_grammar(final=final), "Next: caller.", cache) is None) is caller_ok
        backbone = backbone_grammar(tools, final=final)
        call = f'{thought}\nAction: search\nAction Input: {{"q": "cats"}}'
        assert (_reject_reason(tok, backbone, call, cache) is None) is caller_ok
        assert _reject_reason(tok, backbone, f"{thought}\nconclusion: Cats are mammals.", cache) is None
        tail = backbone_tail_grammar(tools, final=final)
        assert (_reject_reason(tok, tail, 'Action: search\nAction Input: {"q": "cats"}', cache) is None) is caller_ok
        assert _reject_reason(tok, tail, "conclusion: give up.", cache) is None


def test_summarizer_answers_end_with_end_of_turn_and_hold_no_other_roles_text(
    ood_path: Path, tok: tuple[Any, Any]
) -> None:
    """Gold conclusions are accepted with and without the `</s>` the roles were trained to end them with (before,
    the grammar had no way to end an answer but the token cap); markers, the caller's labels and text after the
    end of turn are not."""
    from umi.format.grammar import summarizer_grammar

    grammar, cache = summarizer_grammar(), {}
    gold = [
        t.value
        for traj in json.loads(ood_path.read_text(encoding="utf-8"))
        for t in Trajectory.model_validate(traj).conversations
        if t.role == "conclusion"
    ]
    assert len(gold) == 294
    rejected = [g for g in gold if _reject_reason(tok, grammar, g.strip() + "</s>", cache)]
    # the end of turn costs nothing: what is rejected with it is rejected without it (words past the token bound
    # per word, e.g. base64 blobs and long URLs, or `<` inside a word: `<` may only start a word)
    assert rejected == [g for g in gold if _reject_reason(tok, grammar, g.strip(), cache)]
    assert len(rejected) <= 8, [g[:80] for g in rejected]
    for end in ("It is sunny in Paris.</s>", "It is sunny in Paris. </s>", "It is sunny in Paris."):
        assert _reject_reason(tok, grammar, end, cache) is None, end
    for bad in ("It is sunny.</s> More", "Sunny. Next: caller.", 'Sunny.\nAction Input: {"q": 1}', "Sunny </s"):
        assert _reject_reason(tok, grammar, bad, cache), bad
