"""The OpenAI-compatible chat endpoint on a real loopback server, driven by the official `openai` client with a
scripted α-UMi: the tool loop, statelessness, streaming, tool_choice, usage, models, 400s and the API key."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import openai
import pytest

from umi.models.roles import Roles

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def _ask(client: openai.OpenAI, messages: list[Any], **kw: Any) -> Any:
    return client.chat.completions.create(model="alpha-umi", messages=messages, **kw)


def _prompts(roles: Roles, adapter: str) -> list[str]:
    return [p for p, a in roles.get("planner").engine.prompts if a == adapter]  # type: ignore[attr-defined]


def test_full_tool_loop_across_two_server_processes(agent_server, kit) -> None:  # type: ignore[no-untyped-def]
    roles_a, roles_b = kit.scripted_roles(), kit.scripted_roles()
    with agent_server(roles_a) as url_a, agent_server(roles_b) as url_b:
        messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris today?"}]
        first = _ask(_client(url_a), messages, tools=[WEATHER_TOOL])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        assert choice.message.content == "I should look up the weather in Paris."  # the planner's thought
        # usage is every role's tokens: planner + caller here
        roles_usage = first.usage.model_extra["roles"]
        assert set(roles_usage) == {"planner", "caller"}
        assert first.usage.prompt_tokens == sum(r["prompt_tokens"] for r in roles_usage.values()) > 0
        assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens

        # the client runs the tool; the next request goes to ANOTHER server: no state lives in a server
        messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
        second = _ask(_client(url_b), messages, tools=[WEATHER_TOOL])
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "Answer for Paris: sunny, 21 C"
        assert not second.choices[0].message.tool_calls
        assert set(second.usage.model_extra["roles"]) == {"planner", "summarizer"}
    # server B's planner saw server A's thought, the call and the observation, rebuilt from the messages
    (planner_b,) = _prompts(roles_b, "planner")
    assert "I should look up the weather in Paris." in planner_b
    assert 'get_weather\nAction Input: {"city": "Paris"}' in planner_b and "sunny, 21 C" in planner_b


def _collect_stream(stream: Any) -> tuple[str, dict[int, dict[str, str]], str | None, Any]:
    content, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            content += c.delta.content or ""
            for d in c.delta.tool_calls or []:
                slot = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += d.id or ""
                slot["name"] += (d.function.name or "") if d.function else ""
                slot["arguments"] += (d.function.arguments or "") if d.function else ""
            finish = c.finish_reason or finish
    return content, calls, finish, usage


def test_streaming_matches_the_plain_answer(agent_server) -> None:  # type: ignore[no-untyped-def]
    with agent_server() as url:
        client = _client(url)
        messages: list[Any] = [{"role": "user", "content": "Tell me the weather in Oslo please."}]
        stream = _ask(client, messages, tools=[WEATHER_TOOL], stream=True, stream_options={"include_usage": True})
        content, calls, finish, usage = _collect_stream(stream)
        assert finish == "tool_calls" and list(calls) == [0]
        assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Oslo"}
        assert content == "I should look up the weather in Oslo."
        assert usage is not None and usage.total_tokens > 0
        messages += [
            {"role": "assistant", "content": content, "tool_calls": [
                {"id": calls[0]["id"], "type": "function",
                 "function": {"name": calls[0]["name"], "arguments": calls[0]["arguments"]}}]},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "snow, -3 C"},
        ]  # fmt: skip
        content, calls, finish, _ = _collect_stream(_ask(client, messages, tools=[WEATHER_TOOL], stream=True))
        assert (content, calls, finish) == ("Answer for Oslo: snow, -3 C", {}, "stop")


def test_tool_choice_none_required_and_named(agent_server, kit) -> None:  # type: ignore[no-untyped-def]
    def concluder(prompt: str, adapter: str | None) -> str:
        if adapter == "planner":
            return "I can answer without tools.\n Next: conclusion."
        return kit.weather_responder(prompt, adapter)

    ask = [{"role": "user", "content": "What is the weather in Rome?"}]
    with agent_server() as url:
        client = _client(url)
        none = _ask(client, ask, tools=[WEATHER_TOOL], tool_choice="none")
        assert none.choices[0].finish_reason == "stop" and not none.choices[0].message.tool_calls
        assert none.choices[0].message.content == "Answer for Rome: nothing observed"
        auto = _ask(client, ask, tools=[WEATHER_TOOL], tool_choice="auto")
        assert auto.choices[0].finish_reason == "tool_calls"
        roles = kit.scripted_roles()
        named = _ask(client, ask, tools=[WEATHER_TOOL, kit.TIME_TOOL], tool_choice={
            "type": "function", "function": {"name": "get_time"}})  # fmt: skip
        assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    with agent_server(roles) as url:
        _ask(_client(url), ask, tools=[WEATHER_TOOL, kit.TIME_TOOL],
             tool_choice={"type": "function", "function": {"name": "get_time"}})  # fmt: skip
    (caller_prompt,) = _prompts(roles, "caller")
    assert '"Name": "get_time"' in caller_prompt and '"Name": "get_weather"' not in caller_prompt
    (planner_prompt,) = _prompts(roles, "planner")
    assert '"Name": "get_weather"' in planner_prompt  # the planner still reads every tool
    with agent_server(kit.scripted_roles(concluder)) as url:
        client = _client(url)
        assert _ask(client, ask, tools=[WEATHER_TOOL]).choices[0].finish_reason == "stop"
        required = _ask(client, ask, tools=[WEATHER_TOOL], tool_choice="required")
        assert required.choices[0].finish_reason == "tool_calls"
        assert json.loads(required.choices[0].message.tool_calls[0].function.arguments) == {"city": "Rome"}


def test_give_up_says_so(agent_server, kit) -> None:  # type: ignore[no-untyped-def]
    def quitter(prompt: str, adapter: str | None) -> str:
        return "No tool can do this.\n Next: give up." if adapter == "planner" else "unused"

    with agent_server(kit.scripted_roles(quitter)) as url:
        r = _ask(_client(url), [{"role": "user", "content": "Fly me to the moon"}], tools=[WEATHER_TOOL])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == "I gave up on this task: No tool can do this."


def test_models_lists_the_role_configuration(agent_server) -> None:  # type: ignore[no-untyped-def]
    with agent_server(model_id="umi-test") as url:
        (model,) = _client(url).models.list().data
    assert model.id == "umi-test"
    assert set(model.model_extra["roles"]) == {"planner", "caller", "summarizer"}


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
USER = {"role": "user", "content": "weather in Paris?"}
BAD_REQUESTS = [
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
     "tools[0].function.parameters"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}}}]},
     "tools[0].function.parameters.required"),
    ({"messages": [USER], "tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                   {"role": "tool", "tool_call_id": "call_404", "content": "x"}]}, "messages[2].tool_call_id"),
    ({"messages": [{"role": "tool", "tool_call_id": "call_1", "content": "x"}, USER]}, "messages[0].role"),
    ({"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}, USER]}, "messages[2].role"),
    ({"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}]}, "messages"),
    ({"messages": [USER, {"role": "assistant", "content": "done"}]}, "messages[1].role"),
    ({"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": "{city: Paris"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"}]}, "messages[1].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "be nice"}]}, "messages"),
    ({"messages": [USER], "tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name"),
    ({"messages": [USER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"messages": [USER], "tools": [WEATHER_TOOL, WEATHER_TOOL]}, "tools[1].function.name"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
def test_client_mistakes_are_400_naming_the_field(agent_server, body: dict, param: str) -> None:  # type: ignore[no-untyped-def]
    with agent_server() as url:
        with pytest.raises(openai.BadRequestError) as err:
            _client(url).chat.completions.create(model="alpha-umi", **body)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param, err.value.body  # type: ignore[index]
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["message"]  # type: ignore[index]


def test_malformed_json_bodies_are_400(agent_server) -> None:  # type: ignore[no-untyped-def]
    with agent_server() as url:
        for content in (b"{not json", b"[1, 2]", b'{"messages": "hello"}'):
            r = httpx.post(url + "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text
            assert r.json()["error"]["type"] == "invalid_request_error" and r.json()["error"]["param"]
        r = httpx.get(url + "/v1/runs/run_missing")
        assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"


def test_api_key_is_required_and_never_logged(agent_server, caplog, capfd) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    key = "sk-umi-secret-123"
    with agent_server(api_key=key) as url:
        with pytest.raises(openai.AuthenticationError) as err:
            _client(url, "wrong").models.list()
        assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"  # type: ignore[index]
        assert httpx.get(url + "/v1/runs").status_code == 401  # no header at all
        assert httpx.get(url + "/").status_code == 200  # the viewer page holds no data
        r = _ask(_client(url, key), [{"role": "user", "content": "weather in Lima?"}], tools=[WEATHER_TOOL])
        assert r.choices[0].finish_reason == "tool_calls"
    out = capfd.readouterr()
    assert key not in caplog.text and key not in out.out and key not in out.err
