"""The adversary of issue 12: a randomly initialised tiny model, sampled at temperature 1.0, under the role grammars.

Random weights put no mass where the format wants it, so every parseable output below is the grammar's doing. Both
local engines run the same 50 real prompts from `out_of_domain.json` (20 planner, 20 caller, 10 backbone), with
the embedded SmolLM2 tokenizer (the one llguidance wraps for the masks). Every output must parse — the planner
with a route marker, the caller and the backbone's call with one of the step's exact API names and a JSON object —
and every generation must be ended by its grammar (finish `stop`) within `max_new_tokens`.

This is also the check that the llama.cpp path is really constrained: the llguidance inside xllamacpp logs `llg
error` and generates unconstrained on a grammar it cannot read, and random weights would then never parse.
The grammars use small bounds here (a few words of a few tokens), so a generation is short and must end by the
grammar well before the cap.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from umi.data import iter_steps, load_trajectories
from umi.format import (
    DEFAULT_BUDGET,
    END_OF_TURN,
    backbone_prompt,
    caller_prompt,
    parse_backbone,
    parse_caller,
    parse_planner,
    planner_prompt,
    tool_names,
)
from umi.format.grammar import Bounds, role_grammar
from umi.models.base import Completion, GenerationParams
from umi.schema import Step, Turn

pytest.importorskip("llguidance")

#: Small bounds: a random model fills every free piece to its limit, so these keep a generation short.
SMALL = Bounds(
    thought_words=6,
    answer_words=6,
    word_tokens=3,
    answer_word_tokens=3,
    whitespace=2,
    string=12,
    digits=4,
    free_key=8,
    free_pairs=2,
    array_items=2,
    object_whitespace=2,
)
MAX_NEW_TOKENS = 256
COUNTS = {"planner": 20, "caller": 20, "backbone": 10}


def _assistant(value: str) -> Turn:
    return Turn.model_validate({"from": "assistant", "value": value})


def _prompt(role: str, s: Step) -> str:
    if role == "planner":
        return planner_prompt(s.tools, s.history, budget=DEFAULT_BUDGET)
    if role == "caller":
        thought = parse_planner(s.planner).thought
        return caller_prompt(s.tools, [*s.history, _assistant(thought)], thought, budget=DEFAULT_BUDGET)
    return backbone_prompt(s.tools, s.history, budget=DEFAULT_BUDGET)


@pytest.fixture(scope="module")
def cases(ood_path: Path) -> list[tuple[str, Step]]:
    """(role, step): planner and backbone steps spread over the file, caller steps where the gold routes to it."""
    steps = list(iter_steps(load_trajectories(ood_path).items))
    spread = steps[:: max(1, len(steps) // 40)]
    callers = [s for s in steps if s.route == "caller"][::37]
    out = [("planner", s) for s in spread[: COUNTS["planner"]]]
    out += [("caller", s) for s in callers[: COUNTS["caller"]]]
    out += [("backbone", s) for s in spread[COUNTS["planner"] :][: COUNTS["backbone"]]]
    assert [sum(r == k for r, _ in out) for k in COUNTS] == list(COUNTS.values())
    return out


def _check(role: str, step: Step, c: Completion) -> str | None:
    """Why this output breaks the format or its bound (None when it is fine)."""
    names = set(tool_names(step.tools))
    if not c.constrained:
        return "engine did not enforce the grammar"
    if c.finish_reason != "stop" or c.new_tokens > MAX_NEW_TOKENS:
        return f"not ended by the grammar ({c.finish_reason}, {c.new_tokens} tokens)"
    if role == "planner":
        p = parse_planner(c.text)
        return None if p.has_marker and p.route in ("caller", "conclusion", "give up") else "no route marker"
    if role == "caller":
        out = parse_caller(c.text)
        if out.problems or out.action not in names or not isinstance(out.arguments, dict):
            return f"bad call {out.action!r}: {out.problems}"
        return None
    b = parse_backbone(c.text)
    if b.problems or b.kind == "none":
        return f"backbone {b.kind}: {b.problems}"
    if b.kind == "call" and (b.action not in names or not isinstance(b.arguments, dict)):
        return f"backbone call {b.action!r} not a known API with an object"
    return None


def _run(engine: Any, cases: list[tuple[str, Step]]) -> list[str]:
    """Each (role, tool set) group in one batch, sampled at temperature 1.0 with a fixed seed."""
    failures: list[str] = []
    keyed = sorted(enumerate(cases), key=lambda ic: (ic[1][0], ic[1][1].traj))
    for (role, _), group in itertools.groupby(keyed, key=lambda ic: (ic[1][0], ic[1][1].traj)):
        items = [c for _, c in group]
        grammar = role_grammar(role, items[0][1].tools, bounds=SMALL)
        params = GenerationParams(
            max_new_tokens=MAX_NEW_TOKENS, stop=(END_OF_TURN,), temperature=1.0, seed=len(failures) + 7, grammar=grammar
        )
        done = engine.complete([_prompt(role, s) for _, s in items], params, cache_key=role)
        for (_, s), c in zip(items, done, strict=True):
            why = _check(role, s, c)
            if why:
                failures.append(f"{role} traj {s.traj} step {s.step}: {why}; output {c.text[:160]!r}")
    return failures


def test_random_gguf_on_llamacpp_always_writes_the_format(tiny_gguf: Path, cases: list[tuple[str, Step]]) -> None:
    from umi.models.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(tiny_gguf, n_ctx=4096, n_threads=1, role="adversary")
    try:
        failures = _run(engine, cases)
    finally:
        engine.close()
    assert failures == [], "\n".join(failures)


@pytest.fixture(scope="module")
def tiny_smollm_tokenizer_llama(tmp_path_factory: pytest.TempPathFactory, tiny_llama_saver: Any) -> Path:
    """A random 2-layer Llama with the embedded SmolLM2 tokenizer (so llguidance wraps the real vocabulary)."""
    from transformers import AutoTokenizer

    from umi.models.embedded import embedded_gguf

    gguf = embedded_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tiny_llama_saver(tok, tmp_path_factory.mktemp("adversary") / "tiny", max_position_embeddings=4096)


def test_random_llama_on_transformers_always_writes_the_format(
    tiny_smollm_tokenizer_llama: Path, cases: list[tuple[str, Step]]
) -> None:
    import torch

    from umi.models.hf import TransformersEngine

    engine = TransformersEngine(str(tiny_smollm_tokenizer_llama), device="cpu", prefix_cache=False, role="adversary")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP threads on this shared 2-core machine stall far more than they gain
    try:
        failures = _run(engine, cases)
    finally:
        torch.set_num_threads(threads)
    assert failures == [], "\n".join(failures)


def _simulator_failures(engine: Any) -> list[str]:
    """Ten simulator prompts (real APIs of the shared data, arguments invented) under the simulator grammar."""
    from umi.format.grammar import simulator_grammar
    from umi.serve.tool_server import _parse_simulated, simulator_prompt

    prompts = [
        simulator_prompt({"api_name": f"api_{i}", "api_description": "Search things."}, f"api_{i}", {"q": i}, [])
        for i in range(10)
    ]
    params = GenerationParams(max_new_tokens=MAX_NEW_TOKENS, temperature=1.0, seed=3, grammar=simulator_grammar(SMALL))
    failures = []
    for i, c in enumerate(engine.complete(prompts, params)):
        if not c.constrained or c.finish_reason != "stop" or _parse_simulated(c.text) is None:
            failures.append(f"prompt {i}: {c.finish_reason}, constrained={c.constrained}: {c.text[:160]!r}")
    return failures


def test_random_models_always_write_the_simulator_reply_shape(
    tiny_gguf: Path, tiny_smollm_tokenizer_llama: Path
) -> None:
    """The tool server's simulator, constrained: `{"error": …, "response": <JSON>}` every time, on both engines."""
    import torch

    from umi.models.hf import TransformersEngine
    from umi.models.llamacpp import LlamaCppEngine

    fast = LlamaCppEngine(tiny_gguf, n_ctx=4096, n_threads=1, role="simulator")
    try:
        assert _simulator_failures(fast) == []
    finally:
        fast.close()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        slow = TransformersEngine(str(tiny_smollm_tokenizer_llama), device="cpu", prefix_cache=False)
        assert _simulator_failures(slow) == []
    finally:
        torch.set_num_threads(threads)


def test_tool_server_simulator_is_constrained_by_default(tiny_gguf: Path) -> None:
    """`role_simulator` (what `umi serve tools --simulator` and the ToolAlpaca suite use) answers in the parsed
    shape at the first try with random weights; `constrain=False` gives the same model no such guarantee."""
    from umi.models.roles import load_roles
    from umi.serve.tool_server import _parse_simulated, role_simulator, simulate, simulator_prompt

    engine = {"kind": "llama.cpp", "model": str(tiny_gguf), "n_ctx": 2048, "n_threads": 1}
    roles = load_roles({"family": "toolbench", "engines": {"e": engine}, "roles": {"backbone": {"engine": "e"}}})
    try:
        sim = role_simulator(roles, max_new_tokens=MAX_NEW_TOKENS)
        for i in range(3):
            assert simulate(sim, None, f"api_{i}", {"q": i}, [], retries=1) is not None
        free = role_simulator(roles, max_new_tokens=64, constrain=False)
        assert _parse_simulated(free(simulator_prompt(None, "api", {"q": 1}, []))) is None
    finally:
        roles.get("backbone").engine.close()
