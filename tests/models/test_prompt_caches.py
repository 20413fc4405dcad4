"""Per-role prompt caches: greedy text is the same with and without them, each call of a role prefills only what
is new since that role's last prompt, and a role's cache survives the other roles' calls (llama.cpp slots,
transformers prefix KV), including LoRA roles on one llama.cpp base."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from umi.models.base import GenerationParams

GREEDY = GenerationParams(max_new_tokens=6)
TAILS = {"planner": "\nthe planner thinks:", "caller": "\nthe caller calls:"}


def growing_history(steps: int) -> list[tuple[str, str]]:
    """(role, prompt) pairs: every step the planner then the caller, each prompt the history so far plus the
    role's instruction after it (the α-UMi layout, where the tail differs per role)."""
    history = "apis: search, weather. history:"
    calls = []
    for k in range(steps):
        history += f"\nuser: question {k} about the weather\nobservation: the tool answered {k}"
        calls += [(role, history + TAILS[role]) for role in ("planner", "caller")]
    return calls


def run(engine, calls, adapters=None):  # type: ignore[no-untyped-def]
    return [engine.complete([p], GREEDY, adapter=(adapters or {}).get(role), cache_key=role)[0] for role, p in calls]


def assert_reuse_per_role(outs, calls, tail_tokens: int) -> None:  # type: ignore[no-untyped-def]
    """A role's first call finds nothing cached (at most a start token); from its second call on, it reuses that
    role's whole previous prompt but the role's tail (`tail_tokens` bounds the tail plus a merged boundary token),
    although the other role was called in between."""
    last: dict[str, int] = {}
    for (role, _), c in zip(calls, outs, strict=True):
        if role in last:
            assert c.cached_tokens >= last[role] - tail_tokens, (role, c.cached_tokens, last[role])
            assert 0 < c.prefilled_tokens < c.prompt_tokens - c.cached_tokens + 1
        else:
            assert c.cached_tokens <= 1, (role, c.cached_tokens)
        last[role] = c.prompt_tokens


def tail_tokens(tokenizer) -> int:  # type: ignore[no-untyped-def]
    return max(len(tokenizer(t, add_special_tokens=False).input_ids) for t in TAILS.values()) + 2


def test_transformers_prefix_cache_same_greedy_text_on_a_tiny_model(tiny_llama: Path) -> None:
    from umi.models.hf import TransformersEngine

    engine = TransformersEngine(str(tiny_llama), role="test")
    calls = growing_history(3)
    cached = run(engine, calls)
    engine.prefix_cache = None
    uncached = run(engine, calls)
    assert [c.text for c in cached] == [c.text for c in uncached]
    assert all(c.cached_tokens == 0 for c in uncached)
    assert_reuse_per_role(cached, calls, tail_tokens(engine.tokenizer))


def test_transformers_prefix_cache_same_greedy_text_on_the_embedded_model(hf_engine) -> None:
    calls = growing_history(2)  # 4 calls each way: the embedded model in fp32 is slow on a loaded 2-core CPU
    hf_engine.prefix_cache.clear()
    cached = run(hf_engine, calls)
    saved, hf_engine.prefix_cache = hf_engine.prefix_cache, None
    try:
        uncached = run(hf_engine, calls)
    finally:
        hf_engine.prefix_cache = saved
    assert [c.text for c in cached] == [c.text for c in uncached]
    assert_reuse_per_role(cached, calls, tail_tokens(hf_engine.tokenizer))
    # a batch bypasses the cache and still gives each prompt its own greedy text
    batch = hf_engine.complete([p for _, p in calls[:2]], GREEDY, cache_key="planner")
    assert [c.text for c in batch] == [c.text for c in uncached[:2]] and all(c.cached_tokens == 0 for c in batch)


def test_llamacpp_role_slots_same_greedy_text_as_no_cache() -> None:
    from umi.models.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine("embedded", n_ctx=1024, slots=("planner", "caller"), n_threads=2, role="test")
    try:
        calls = growing_history(3)
        cached = run(engine, calls)
        engine.cache_prompt = False
        uncached = run(engine, calls)
        assert [c.text for c in cached] == [c.text for c in uncached]
        assert all(c.cached_tokens == 0 for c in uncached)
        assert_reuse_per_role(cached, calls, 12)  # SmolLM2 writes each tail in ≤ 8 tokens
    finally:
        engine.close()


def test_llamacpp_lora_roles_keep_their_cache_across_switches(gguf_loras: dict[str, Path]) -> None:
    """Planner and caller with different LoRAs on one server. One slot for both (the layout before per-role slots)
    cleared the cache on every switch; one slot per role reuses each role's previous prompt."""
    from umi.models.llamacpp import LlamaCppEngine

    adapters = {"planner": "planner", "caller": "caller"}
    calls = growing_history(3)
    totals = {}
    for slots in ((), ("planner", "caller")):
        engine = LlamaCppEngine("embedded", n_ctx=1024, loras=gguf_loras, slots=slots, n_threads=2, role="test")
        try:
            assert engine.slots.total == max(1, len(slots))
            outs = run(engine, calls, adapters)
        finally:
            engine.close()
        totals[slots] = sum(c.cached_tokens for c in outs)
        if slots:
            assert_reuse_per_role(outs, calls, 12)
    assert totals[()] <= len(calls)  # at most a start token per call survived the LoRA switches
    assert totals[("planner", "caller")] > 20 * len(calls) // 2


def test_llamacpp_batch_lanes_do_not_evict_a_role_slot() -> None:
    """A batch of planner prompts runs on the planner's lanes; the caller's cached prompt is still there after."""
    from umi.models.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine("embedded", n_ctx=512, slots=("planner", "caller"), n_parallel=2, n_threads=2)
    try:
        assert engine.slots.total == 4 and engine.slots.groups == {"planner": [0, 1], "caller": [2, 3]}
        prompt = "The caller reads the history: the user asked about the weather in Paris and"
        engine.complete([prompt], GREEDY, cache_key="caller")
        batch = engine.complete([f"Planner lane {i} thinks that" for i in range(3)], GREEDY, cache_key="planner")
        assert len(batch) == 3 and all(c.new_tokens > 0 for c in batch)
        again = engine.complete([prompt + " then"], GREEDY, cache_key="caller")[0]
        assert again.cached_tokens >= again.prompt_tokens - 3
    finally:
        engine.close()


def test_closing_engines_right_after_building_them_does_not_hang() -> None:
    """xllamacpp's server could miss a terminate sent before its loop started, and its destructor then joined
    forever (seen when closing an idle engine with other engines alive). Several engines are built and closed at
    once, with two others alive, in a child process so a regression fails here instead of hanging the suite."""
    code = textwrap.dedent(
        """
        from umi.models.llamacpp import LlamaCppEngine
        make = lambda: LlamaCppEngine("embedded", n_ctx=256, n_threads=1)
        alive = [make(), make()]
        for i in range(4):
            make().close()
            print("closed", i, flush=True)
        for e in alive:
            e.close()
        print("all closed", flush=True)
        """
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"closing a fresh llama.cpp engine hung; printed so far: {exc.stdout!r}") from None
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-2:] == ["closed 3", "all closed"]


def test_http_engine_pins_roles_to_llamacpp_server_slots_and_reads_cached_tokens() -> None:
    """Through llama.cpp's OpenAI-compatible HTTP endpoint: `id_slot` + `cache_prompt` per role, and the server's
    cached-token count lands in the completion."""
    from umi.models.llamacpp import LlamaCppEngine
    from umi.models.openai_http import OpenAIEngine

    server = LlamaCppEngine("embedded", n_ctx=512, slots=("planner", "caller"), n_threads=2)
    try:
        url = server.listening_address() + "/v1"
        http = OpenAIEngine(url, model="smollm2", llamacpp_slots=True, slots=("planner", "caller"), role="test")
        calls = growing_history(2)
        outs = [http.complete([p], GREEDY, cache_key=role)[0] for role, p in calls]
        assert_reuse_per_role(outs, calls, 12)
        plain = OpenAIEngine(url, model="smollm2", role="test")  # no slots: the server picks; no id_slot sent
        assert plain.slots is None and plain.complete([calls[0][1]], GREEDY)[0].text == outs[0].text
    finally:
        server.close()


def test_http_engine_batches_on_a_roles_lanes_and_each_trajectory_keeps_its_slot() -> None:
    """A batch through the HTTP engine on a llama.cpp server with two lanes per role: the two trajectories decode
    side by side, and on the next batch (a new trajectory first, one that shares more text with B than with A,
    then B's next step) B's step finds B's whole cached history: the batch's slots are chosen together."""
    from umi.models.llamacpp import LlamaCppEngine
    from umi.models.openai_http import OpenAIEngine

    server = LlamaCppEngine("embedded", n_ctx=512, slots=("planner",), n_parallel=2, n_threads=2)
    try:
        url = server.listening_address() + "/v1"
        http = OpenAIEngine(url, model="smollm2", llamacpp_slots=True, slots=("planner",), slot_lanes=2, role="test")
        a = "apis: weather, maps. history: the user asked for the forecast in Oslo and the tool said rain"
        b = "apis: search. history: the user wants three novels about rivers and their authors, in print"
        first = http.complete([a, b], GREEDY, cache_key="planner")
        assert len(first) == 2 and all(c.new_tokens > 0 for c in first)
        new = "apis: search, music. history: the user wants three songs about the sea"
        b_next = b + " today; the tool found two"
        got_new, got_b = http.complete([new, b_next], GREEDY, cache_key="planner")
        assert got_b.cached_tokens >= first[1].prompt_tokens - 3, (got_b.cached_tokens, first[1].prompt_tokens)
        assert got_new.cached_tokens < got_new.prompt_tokens // 2
    finally:
        server.close()


def test_roles_on_the_same_weights_share_one_pooled_cache(gguf_loras: dict[str, Path]) -> None:
    """Planner and caller loaded from one adapter file (a multi-task model) get one adapter and one cache key whose
    group pools a slot each: the caller's first call then reuses the planner's prompt, which per-role slots never
    can, and greedy text is the same as with a slot per role. A role on other weights keeps its own slot."""
    from umi.models.build import bind_roles
    from umi.models.role_config import RoleConfig

    def config(same_file: bool) -> RoleConfig:
        caller_file = gguf_loras["planner"] if same_file else gguf_loras["planner"].with_name("copy.gguf")
        if not same_file and not caller_file.exists():
            caller_file.write_bytes(gguf_loras["planner"].read_bytes())  # same weights, another file: not merged
        loras = {
            "planner": str(gguf_loras["planner"]),
            "caller": str(caller_file),
            "summarizer": str(gguf_loras["caller"]),
        }
        engine = {"kind": "llama.cpp", "model": "embedded", "n_ctx": 1024, "n_threads": 2, "loras": loras}
        roles = {r: {"engine": "base", "adapter": r} for r in ("planner", "caller", "summarizer")}
        return RoleConfig({"engines": {"base": engine}, "roles": {**roles, "backbone": {"engine": "base"}}})

    calls = growing_history(3)
    outs = {}
    for same_file in (True, False):
        roles = bind_roles(config(same_file))
        engine = roles.get("planner").engine
        try:
            keys = {r: roles.get(r).cache_key for r in ROLES}
            if same_file:
                assert keys == {
                    "planner": "planner/caller",
                    "caller": "planner/caller",
                    "summarizer": "summarizer",
                    "backbone": "backbone",
                }
                assert roles.get("caller").adapter == "planner" and sorted(engine.lora_paths) == [
                    "planner",
                    "summarizer",
                ]
                assert engine.slots.total == 4 and len(engine.slots.group_of("planner/caller")) == 2
            else:
                assert keys == {r: r for r in ROLES} and len(engine.lora_paths) == 3
            outs[same_file] = [roles.get(role).complete([p], GREEDY)[0] for role, p in calls]
        finally:
            engine.close()
    assert [c.text for c in outs[True]] == [c.text for c in outs[False]]
    planner_first, caller_first = outs[True][0], outs[True][1]
    assert caller_first.cached_tokens >= planner_first.prompt_tokens - 12  # the planner's prompt, but its tail
    assert outs[False][1].cached_tokens <= 1  # own slot, first call: nothing to reuse
    assert sum(c.prefilled_tokens for c in outs[True]) < sum(c.prefilled_tokens for c in outs[False])


ROLES = ("planner", "caller", "summarizer", "backbone")
