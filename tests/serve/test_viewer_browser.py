"""The trace viewer in real headless Chromium (Debian's package, driven by Playwright; no browser download):
the run list shows a finished run, a run page shows its steps, and a run started during the test appears and
completes live from the event stream."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make setup installs it)")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _source(tmp_path: Path) -> dict:
    replay = tmp_path / "replay.json"
    cache = {
        "get_weather": {json.dumps({"city": c}): f"{c}: clear skies, {t} C" for c, t in (("Paris", 21), ("Kyoto", 17))}
    }
    replay.write_text(json.dumps({"cache": cache}), encoding="utf-8")
    return {"replay": str(replay), "tools": [WEATHER]}


def test_viewer_lists_runs_shows_steps_and_follows_a_live_run(agent_server, kit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    source = _source(tmp_path)
    release = threading.Event()

    def responder(prompt: str, adapter: str | None) -> str:
        if adapter == "summarizer" and "Kyoto" in prompt:
            release.wait(60)  # the live run stays in flight until the page has shown it running
        return kit.weather_responder(prompt, adapter)

    with agent_server(kit.scripted_roles(responder, latency=0.2)) as url, sync_playwright() as pw:
        body = {"query": "What is the weather in Paris?", "tool_source": source}
        done_id = httpx.post(f"{url}/v1/runs", json=body).json()["id"]
        deadline = time.time() + 30
        while not httpx.get(f"{url}/v1/runs/{done_id}").json()["done"]:
            assert time.time() < deadline
            time.sleep(0.1)

        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        row = page.locator(f'tr[data-run="{done_id}"]')
        expect(row).to_contain_text("answered")
        expect(row).to_contain_text("What is the weather in Paris?")

        row.click()
        expect(page.locator("#run-query")).to_have_text("What is the weather in Paris?")
        expect(page.locator(".step")).to_have_count(2)
        first = page.locator(".step").nth(0)
        expect(first.locator(".rec-planner")).to_contain_text("I should look up the weather in Paris.")
        expect(first.locator(".rec-caller .action")).to_have_text("get_weather")
        expect(first.locator(".rec-caller .args")).to_contain_text('"city": "Paris"')
        expect(first.locator(".rec-tool")).to_contain_text("Paris: clear skies, 21 C")
        expect(page.locator(".rec-summarizer")).to_contain_text("Answer for Paris")
        expect(page.locator("#answer-text")).to_have_text("Answer for Paris: Paris: clear skies, 21 C")
        expect(page.locator(".cost-card")).to_have_count(3)

        # a run started now: it shows up in the list, then its page fills in step by step and finishes
        page.goto(url + "/#/")
        live_id = httpx.post(
            f"{url}/v1/runs", json={"query": "And the weather in Kyoto?", "tool_source": source}
        ).json()["id"]
        live_row = page.locator(f'tr[data-run="{live_id}"]')
        expect(live_row).to_be_visible(timeout=10_000)
        live_row.click()
        expect(page.locator("#run-status .pill")).to_have_attribute("data-status", "running", timeout=10_000)
        expect(page.locator(".rec")).to_have_count(4, timeout=10_000)  # up to the summarizer, which waits
        release.set()
        expect(page.locator("#run-status .pill")).to_have_attribute("data-status", "answered", timeout=30_000)
        expect(page.locator(".rec")).to_have_count(5)
        expect(page.locator("#answer-text")).to_have_text("Answer for Kyoto: Kyoto: clear skies, 17 C")
        page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
        browser.close()
    assert (tmp_path / "viewer.png").stat().st_size > 10_000


def test_viewer_marks_the_apis_a_looped_episode_left_out(agent_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A caller record whose grammar left a looped API out (the agent's `left_out`, as `umi run` traces it) shows
    the tag; the caller records before it do not."""
    from playwright.sync_api import expect, sync_playwright

    from umi.agent.trace import TraceRecord
    from umi.serve.run_store import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    rid = store.create("Top rock artists?", "demo")
    call = {"name": "artist_search", "arguments": {"q": "rock"}}
    for step in range(3):
        parsed: dict = {"action": "artist_search" if step < 2 else "genre_artists", "arguments": {"q": "rock"}}
        if step == 2:
            parsed["left_out"] = ["artist_search"]
        store.add_step(rid, TraceRecord(step=step, role="caller", output="Action: …", parsed=parsed))
        store.add_step(rid, TraceRecord(step=step, role="tool", tool_call=call, observation="{}"))
    store.set_status(rid, "answered", answer="Arctic Monkeys")
    with agent_server(store=store) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/#/runs/{rid}")
        expect(page.locator(".step")).to_have_count(3)
        expect(page.locator(".tag-left-out")).to_have_count(1)
        tag = page.locator(".step").nth(2).locator(".rec-caller .tag-left-out")
        expect(tag).to_have_text("left out (looped): artist_search")
        browser.close()
