"""Role configuration: the embedded default, CLI flags, run manifests, shared engines, `umi models check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from umi.models.base import EngineError, GenerationParams
from umi.models.roles import ROLE_NAMES, apply_flags, default_roles, load_roles, parse_flag


def _peft_adapter(base_dir: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    return out


def test_embedded_roles_bind_every_role_to_one_embedded_engine() -> None:
    from umi.models.embedded import embedded_gguf
    from umi.models.llamacpp import LlamaCppEngine

    roles = load_roles("embedded")
    engines = {id(b.engine) for b in roles.bound().values()}
    assert set(roles.bound()) == set(ROLE_NAMES) and len(engines) == 1 and roles.is_multi
    engine = roles.get("planner").engine
    assert isinstance(engine, LlamaCppEngine) and engine.model_path == embedded_gguf()
    c = roles.get("caller").complete(["The capital of France is"], GenerationParams(max_new_tokens=4))[0]
    assert c.text.strip().startswith("Paris")
    engine.close()


def test_default_roles_without_shipped_roles_are_the_bare_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without shipped roles the default is the packaged `embedded` configuration (built by the test above); the
    `embedded-glpft` name then fails with a clear line. No engine is built here."""
    import umi.models.roles as roles_module

    built: list[object] = []
    monkeypatch.setattr(roles_module, "trained_roles_dir", lambda: None)
    monkeypatch.setattr(roles_module, "load_roles", lambda source=None, **flags: built.append(source) or "bare")
    assert default_roles() == "bare" and built == [roles_module.packaged_config("embedded")]
    monkeypatch.undo()
    monkeypatch.setattr(roles_module, "trained_roles_dir", lambda: None)
    with pytest.raises(EngineError, match="ships no trained roles"):
        load_roles("embedded-glpft")


def test_parse_flag_infers_the_engine_kind() -> None:
    assert parse_flag("embedded") == ({"kind": "llama.cpp", "model": "embedded"}, None)
    assert parse_flag("transformers:embedded#runs/p/adapter") == (
        {"kind": "transformers", "model": "embedded"},
        "runs/p/adapter",
    )
    assert parse_flag("http://127.0.0.1:8000/v1#planner") == (
        {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"},
        "planner",
    )
    assert parse_flag("HuggingFaceTB/SmolLM2-135M-Instruct")[0]["kind"] == "transformers"
    assert parse_flag("/models/x.gguf#lora.gguf") == ({"kind": "llama.cpp", "model": "/models/x.gguf"}, "lora.gguf")


def test_flags_lone_backbone_binds_all_roles_and_same_base_is_shared() -> None:
    config = apply_flags({"roles": {"planner": {"engine": "x"}}}, {"backbone": "http://127.0.0.1:9/v1#m"})
    assert set(config["roles"]) == set(ROLE_NAMES)
    roles = load_roles({}, backbone="http://127.0.0.1:9/v1#m")  # openai engines build without connecting
    assert len({id(b.engine) for b in roles.bound().values()}) == 1
    assert {b.adapter for b in roles.bound().values()} == {"m"}
    # per-role flags on one server: still one engine, each role its own served model name
    roles = load_roles({}, planner="http://127.0.0.1:9/v1#p", caller="http://127.0.0.1:9/v1#c")
    assert roles.planner.engine is roles.caller.engine  # type: ignore[union-attr]
    assert (roles.planner.adapter, roles.caller.adapter) == ("p", "c")  # type: ignore[union-attr]
    with pytest.raises(EngineError, match="unknown role flag"):
        load_roles({}, critic="embedded")


def test_engine_tables_on_one_base_share_one_engine(tiny_llama: Path, tmp_path: Path) -> None:
    a = _peft_adapter(tiny_llama, tmp_path / "a", 1)
    b = _peft_adapter(tiny_llama, tmp_path / "b", 2)
    config = {
        "engines": {
            "p": {"kind": "transformers", "model": str(tiny_llama), "adapters": {"planner": str(a)}},
            "c": {"kind": "transformers", "model": str(tiny_llama), "adapters": {"caller": str(b)}},
        },
        "roles": {"planner": {"engine": "p", "adapter": "planner"}, "caller": {"engine": "c", "adapter": "caller"}},
    }
    roles = load_roles(config)
    assert roles.planner.engine is roles.caller.engine  # type: ignore[union-attr]
    assert sorted(roles.planner.engine.adapters) == ["caller", "planner"]  # type: ignore[union-attr]
    config["engines"]["c"]["adapters"] = {"planner": str(b)}  # same name, another path: ambiguous
    with pytest.raises(EngineError, match="adapter 'planner' names two paths"):
        load_roles(config)


def test_manifest_roles_share_one_base(tiny_llama: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    for i, role in enumerate(("planner", "caller", "summarizer"), 1):
        _peft_adapter(tiny_llama, run / role / "adapter", i)
    roles_map = {r: {"adapter": f"{r}/adapter"} for r in ("planner", "caller", "summarizer")}
    (run / "manifest.json").write_text(json.dumps({"base": str(tiny_llama), "roles": roles_map}))
    roles = load_roles(run)  # the run folder, paths relative to the manifest, no umi_manifest marker
    assert roles.is_multi and roles.planner.engine is roles.summarizer.engine  # type: ignore[union-attr]
    params = GenerationParams(max_new_tokens=8)
    texts = {r: roles.get(r).complete(["the caller calls"], params)[0].text for r in ("planner", "caller")}
    assert texts["planner"] != texts["caller"]
    roles_map["caller"] = {"adapter": "caller/missing"}
    (run / "manifest.json").write_text(json.dumps({"base": str(tiny_llama), "roles": roles_map}))
    with pytest.raises(EngineError, match=r"role 'caller', engine transformers: adapter .*caller/missing .*manifest"):
        load_roles(run / "manifest.json")


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"role 'planner', engine llama.cpp: unknown option"):
        load_roles({"engines": {"e": {"model": "embedded", "gpu": 1}}, "roles": {"planner": {"engine": "e"}}})
    with pytest.raises(EngineError, match="not found; give a TOML file"):
        load_roles(tmp_path / "nope.toml")
    with pytest.raises(EngineError, match="no packaged role configuration 'nope'"):
        load_roles("nope")


def test_models_check_cli(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from umi.cli.models import register

    app = typer.Typer()
    register(app)
    config = tmp_path / "roles.toml"
    config.write_text('[engines.e]\nmodel = "embedded"\nn_ctx = 512\n[roles.planner]\nengine = "e"\n')
    result = CliRunner().invoke(app, ["models", "check", "--roles", str(config), "--max-new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])["roles"][0]
    assert row["role"] == "planner" and row["engine"] == "llama.cpp" and row["rss_mib"] > 0
    assert row["tokens_per_second"] > 0 and row["load_seconds"] >= 0
    result = CliRunner().invoke(app, ["models", "check", "--roles", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1 and "not found" in result.output


def test_shipped_glpft_roles_are_the_default_on_llamacpp(shared_data: Path) -> None:
    """umi ships GLPFT roles trained for the embedded base (`umi train glpft --preset cpu-epoch`); the default:
    one llama.cpp engine, stage 1 always on, one adapter per role; they change what the bare base writes."""
    from umi.demo import build_scenario
    from umi.format import planner_prompt
    from umi.models.llamacpp import LlamaCppEngine
    from umi.models.roles import trained_roles_dir
    from umi.schema import Turn

    assert trained_roles_dir() is not None, "umi/assets/roles/smollm2-glpft/manifest.json is missing from the package"
    roles = default_roles()
    engine = roles.get("planner").engine
    assert isinstance(engine, LlamaCppEngine) and engine.base_loras == ("stage1",)
    assert {r: roles.get(r).adapter for r in ("planner", "caller", "summarizer", "backbone")} == {
        "planner": "planner",
        "caller": "caller",
        "summarizer": "summarizer",
        "backbone": None,  # stage 1 alone: GLPFT's single-LLM model
    }
    # each role's request switches on stage 1 and that role's adapter, nothing else
    for role in ("planner", "caller", "summarizer"):
        on = {i for i, n in enumerate(engine._lora_ids) if n in ("stage1", role)}
        assert engine._lora_field(role) == [
            {"id": i, "scale": 1.0 if i in on else 0.0} for i in range(len(engine._lora_ids))
        ]
    assert sorted(engine._lora_ids) == ["caller", "planner", "stage1", "summarizer"]
    scenario = build_scenario("landscape")
    prompt = planner_prompt(scenario.tools, [Turn.model_validate({"from": "user", "value": scenario.query})])
    params = GenerationParams(max_new_tokens=24)
    trained = roles.get("planner").complete([prompt], params)[0].text
    bare_roles = load_roles("embedded")
    bare = bare_roles.get("planner").complete([prompt], params)[0].text
    # Greedy, unconstrained, on the landscape task (measured): the bare base echoes the prompt's format line, the
    # shipped planner (two epochs) writes a thought naming an API of the task, in the released rows' style.
    assert bare.startswith("\nThe thought of next step, followed by Next: caller or conclusion or give up."), bare
    assert trained.startswith('Based on the user\'s request, I will call the "video_for_simple_youtube_search"'), (
        trained
    )
    engine.close()
    bare_roles.get("planner").engine.close()


def test_a_grammar_an_engine_does_not_enforce_is_an_error_for_every_caller() -> None:
    """`RoleBinding.complete` owns "never silently unconstrained": the agent, static evaluation and the tool
    simulator all call through it. A scripted engine enforces no grammar, so a grammar request fails, naming the
    role, the engine and the fix; without a grammar the same call answers."""
    from umi.models import ScriptedEngine
    from umi.models.binding import RoleBinding

    binding = RoleBinding(ScriptedEngine(["Action: x", "Action: y"]), cache_key="caller")
    assert [c.text for c in binding.complete(["p"], GenerationParams())] == ["Action: x"]
    with pytest.raises(EngineError, match=r"role 'caller', engine scripted: does not enforce grammars.*--no-constrain"):
        binding.complete(["p"], GenerationParams(grammar='%llguidance {}\nstart: "x"'))


def test_default_roles_with_lanes_decode_trajectories_side_by_side() -> None:
    """`default_roles(lanes=2)` (what `umi eval static --lanes 2` binds): each role gets 2 slots of 4,096 tokens,
    static evaluation then runs 2 trajectories at a time, and a batch of 2 planner prompts comes back whole."""
    from umi.evaluate.static import engine_lanes
    from umi.models.llamacpp import LlamaCppEngine

    roles = default_roles(lanes=2)
    try:
        engine = roles.get("planner").engine
        assert isinstance(engine, LlamaCppEngine) and engine.n_parallel == 2 and engine.n_ctx == 4096
        assert engine_lanes(roles, "planner", 8) == 2 and engine_lanes(roles, "planner", 1) == 1
        assert len(engine.slots.group_of("planner")) == 2
        out = roles.get("planner").complete(
            ["The capital of France is", "One, two,"], GenerationParams(max_new_tokens=3)
        )
        assert len(out) == 2 and all(c.new_tokens > 0 for c in out)
    finally:
        roles.close()
    with pytest.raises(ValueError, match="lanes must be at least 1"):
        default_roles(lanes=0)


def test_a_multitask_run_on_llamacpp_plays_the_backbone_with_its_one_adapter() -> None:
    """A multi-task model is one model for every role: its backbone is the same adapter, not the bare base (the
    transformers binding of a manifest did this; the llama.cpp one bound the bare base)."""
    from umi.models.role_config import llamacpp_manifest_config

    manifest = Path(__file__).resolve().parents[2] / "benchmarks/roles/smollm2-multitask/manifest.json"
    rc = llamacpp_manifest_config(manifest, base_quant=None)
    roles = rc.config["roles"]
    assert {r: spec.get("adapter") for r, spec in roles.items()} == {
        "planner": "planner",
        "caller": "caller",
        "summarizer": "summarizer",
        "backbone": "planner",
    }
    loras = rc.config["engines"]["base"]["loras"]
    assert len({loras[r] for r in ("planner", "caller", "summarizer")}) == 1  # one file: one cache pool


def test_a_manifests_role_entry_carries_its_shortlist_to_the_role(tmp_path: Path) -> None:
    """`"caller": {"adapter": …, "shortlist": 3}` in a run manifest reaches the caller's binding on both engines'
    configurations, so packaged roles can ship their decoding settings."""
    import shutil

    from umi.models.role_config import llamacpp_manifest_config, manifest_config

    src = Path(__file__).resolve().parents[2] / "benchmarks/roles/smollm2-multitask"
    shutil.copytree(src, tmp_path / "run")
    path = tmp_path / "run/manifest.json"
    manifest = json.loads(path.read_text())
    manifest["roles"]["caller"]["shortlist"] = 3
    path.write_text(json.dumps(manifest))
    for rc in (llamacpp_manifest_config(path, base_quant=None), manifest_config(path)):
        assert rc.config["roles"]["caller"]["shortlist"] == 3
        assert "shortlist" not in rc.config["roles"]["planner"]


def test_follow_thought_binds_the_caller_only(tiny_llama: Path) -> None:
    """`follow_thought = true` in a role table reaches the caller's binding; on another role, or not a boolean, it is
    refused with the rule, before any model loads."""
    config: dict = {  # type: ignore[type-arg]
        "engines": {"s": {"kind": "transformers", "model": str(tiny_llama)}},
        "roles": {"planner": {"engine": "s"}, "caller": {"engine": "s", "follow_thought": True}},
    }
    roles = load_roles(config)
    assert roles.caller is not None and roles.caller.follow_thought
    assert roles.planner is not None and not roles.planner.follow_thought
    for role, value in (("planner", True), ("caller", "yes")):
        bad = {**config, "roles": {**config["roles"], role: {"engine": "s", "follow_thought": value}}}
        with pytest.raises(EngineError, match="only the caller follows a planner's thought"):
            load_roles(bad)
