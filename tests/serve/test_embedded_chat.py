"""The chat endpoint once with the real embedded model (the shipped GLPFT roles on llama.cpp): the official
`openai` client asks for a named tool and must get back a valid, schema-conforming tool call.

Measured on this machine without output grammars: the shipped caller writes `Action:` without a usable API name
for this request (2 of 2 tries), so the test is an expected failure until the agent has issue #12's caller
grammar (`Action: <one allowed name>` + arguments from the tool's JSON schema). Where the agent has it, the
server is built with `constrain=True` and the test is strict."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from umi.serve.agent_server import agent_supports

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city.",
                                            "parameters": SCHEMA}}  # fmt: skip


@pytest.mark.slow
def test_embedded_roles_answer_a_named_tool_call(agent_server) -> None:  # type: ignore[no-untyped-def]
    from umi.models.roles import default_roles

    constrained = agent_supports("constrain")
    options = {"constrain": True} if constrained else None
    with agent_server(default_roles(), chat_attempts=1, agent_options=options) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=900)
        r = client.chat.completions.create(
            model="alpha-umi",
            messages=[{"role": "user", "content": "What is the weather in Paris right now?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=32,
        )
    roles = r.usage.model_extra["roles"]  # type: ignore[union-attr]
    assert roles["planner"]["prompt_tokens"] > 50 and roles["caller"]["completion_tokens"] > 0  # a real model ran
    message = r.choices[0].message
    if not message.tool_calls and not constrained:
        pytest.xfail(f"embedded caller, unconstrained, wrote no valid call ({message.content}); needs #12's grammar")
    assert r.choices[0].finish_reason == "tool_calls"
    (call,) = message.tool_calls  # type: ignore[misc]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), SCHEMA)  # type: ignore[union-attr]


RATE = {"type": "function", "function": {"name": "get_rate", "description": "Exchange rate between two currencies.",
                                         "parameters": {"type": "object", "properties": {}}}}  # fmt: skip
RATE_THOUGHT = "I will call get_rate to get the exchange rate. Next: caller."


def _rate_messages(copies: int) -> list[dict[str, object]]:
    """A task whose history holds `copies` identical `get_rate({})` calls, each answered."""
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the euro to dollar rate?"}]
    for i in range(copies):
        call = {"id": f"c{i}", "type": "function", "function": {"name": "get_rate", "arguments": "{}"}}
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": '{"rate": null}'},
        ]
    return messages


@pytest.mark.slow
def test_a_looped_call_leaves_the_callers_grammar_across_requests(agent_server) -> None:  # type: ignore[no-untyped-def]
    """The client runs the tools, so the loop is read from the messages: after two identical `get_rate({})` calls
    the real caller (constrained) must call the other tool although the (scripted) thought names `get_rate`; after
    one it follows the thought."""
    from umi.models import ScriptedEngine
    from umi.models.roles import RoleBinding, default_roles

    roles = default_roles()
    roles.planner = RoleBinding(ScriptedEngine([RATE_THOUGHT] * 2), constrain=False)
    names = []
    with agent_server(roles, chat_attempts=1, agent_options={"constrain": True}) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=900)
        for copies in (1, 2):
            r = client.chat.completions.create(
                model="alpha-umi",
                messages=_rate_messages(copies),
                tools=[RATE, WEATHER],
                max_tokens=32,  # type: ignore[arg-type, list-item]
            )
            (call,) = r.choices[0].message.tool_calls  # type: ignore[misc]
            names.append(call.function.name)  # type: ignore[union-attr]
    assert names == ["get_rate", "get_weather"]
