"""Bounded loopback load: 200 concurrent chat requests across 50 conversations on a scripted α-UMi with model
latency. The server is stateless, so every stage of every conversation can be in flight at once: none may be
lost, and none may be answered with another conversation's content."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _stages(i: int) -> list[tuple[list[dict[str, Any]], bool]]:
    """Four requests of conversation i: the task, and the task with its tool result; each plain and streamed."""
    city = f"City{i:02d}"
    ask = [{"role": "user", "content": f"What is the weather in {city}?"}]
    call = {
        "id": f"call_{i}",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }
    answered = [*ask, {"role": "assistant", "content": f"Look up {city}.", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": f"call_{i}", "content": f"{city}: {i} degrees"}]  # fmt: skip
    return [(ask, False), (answered, False), (ask, True), (answered, True)]


async def _one(client: openai.AsyncOpenAI, messages: list[dict[str, Any]], stream: bool) -> tuple[str, str]:
    """(tool-call arguments or "", content) of one request."""
    if not stream:
        r = await client.chat.completions.create(model="alpha-umi", messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
        m = r.choices[0].message
        return (m.tool_calls[0].function.arguments if m.tool_calls else "", m.content or "")  # type: ignore[union-attr]
    args, content = "", ""
    s = await client.chat.completions.create(model="alpha-umi", messages=messages, tools=[WEATHER], stream=True)  # type: ignore[arg-type]
    async for chunk in s:
        for c in chunk.choices:
            content += c.delta.content or ""
            for d in c.delta.tool_calls or []:
                args += (d.function.arguments or "") if d.function else ""
    return args, content


def test_200_concurrent_requests_50_conversations(agent_server, kit) -> None:  # type: ignore[no-untyped-def]
    jobs = [(i, stage, msgs, stream) for i in range(50) for stage, (msgs, stream) in enumerate(_stages(i))]
    assert len(jobs) == 200

    async def main(url: str) -> list[Any]:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        results = await asyncio.gather(*(_one(client, m, s) for _, _, m, s in jobs), return_exceptions=True)
        await client.close()
        return results

    with agent_server(kit.scripted_roles(latency=0.02)) as url:
        results = asyncio.run(main(url))
    failures = [(job[:2], r) for job, r in zip(jobs, results, strict=True) if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    for (i, stage, _, _), (args, content) in zip(jobs, results, strict=True):
        city = f"City{i:02d}"
        if stage % 2 == 0:
            assert json.loads(args) == {"city": city} and content == f"I should look up the weather in {city}."
        else:
            assert args == "" and content == f"Answer for {city}: {city}: {i} degrees"
