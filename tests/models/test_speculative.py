"""llama.cpp's draft-free speculative decoding (`speculative = "ngram-simple"`): the role's greedy, grammar-constrained
output is the same text as without it, drafts are really proposed and accepted, and a wrong setting is refused by
name before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from umi.data import iter_steps, load_trajectories
from umi.format import DEFAULT_BUDGET, END_OF_TURN, caller_prompt, parse_planner
from umi.format.grammar import role_grammar
from umi.models.base import EngineError, GenerationParams
from umi.models.build import build_engine
from umi.schema import Turn


def caller_cases(ood_path: Path, n: int) -> list[tuple[str, str]]:
    """(prompt, grammar) of the caller on the first `n` call steps of the test set, given the gold thought: its
    output copies an API name and argument values from the prompt, which is where n-gram drafts pay."""
    steps = [s for s in iter_steps(load_trajectories(ood_path).items) if s.route == "caller"][:n]
    cases = []
    for s in steps:
        thought = parse_planner(s.planner).thought
        history = [*s.history, Turn.model_validate({"from": "assistant", "value": thought})]
        cases.append((caller_prompt(s.tools, history, thought, budget=DEFAULT_BUDGET), role_grammar("caller", s.tools)))
    return cases


def test_speculative_greedy_text_equals_plain_decoding(ood_path: Path) -> None:
    cases = caller_cases(ood_path, 2)
    table = {"kind": "llama.cpp", "model": "embedded", "n_ctx": 4096, "n_threads": 2}
    plain = build_engine(dict(table), role="caller")
    spec = build_engine({**table, "speculative": "ngram-simple", "ngram": 3, "draft_max": 8}, role="caller")
    try:
        assert getattr(spec, "speculative", None) == "ngram-simple"
        for prompt, grammar in cases:
            params = GenerationParams(max_new_tokens=48, stop=(END_OF_TURN,), grammar=grammar)
            a = plain.complete([prompt], params)[0]
            b = spec.complete([prompt], params)[0]
            assert b.text == a.text
            assert a.drafted_tokens == 0
            assert b.drafted_tokens > 0
            assert 0 < b.accepted_tokens <= b.drafted_tokens
            assert b.accepted_tokens < b.new_tokens  # a draft only ever follows a token the model produced
    finally:
        plain.close()
        spec.close()


def test_unknown_speculative_kind_is_refused_by_name() -> None:
    with pytest.raises(EngineError, match=r"unknown speculative 'lookahead'.*ngram-simple"):
        build_engine({"kind": "llama.cpp", "model": "embedded", "speculative": "lookahead"}, role="caller")
    with pytest.raises(EngineError, match="draft_max and ngram must be at least 1"):
        build_engine({"kind": "llama.cpp", "model": "embedded", "speculative": "ngram-mod", "ngram": 0}, role="x")
