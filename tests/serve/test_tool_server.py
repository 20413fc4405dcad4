"""The tool server over real HTTP on loopback: cache hits, simulated misses, protocol errors, concurrency, restart."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from umi.serve.store import CacheStore
from umi.serve.tool_server import PARSE_ERROR, create_app, load_tool_docs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def body(api: str = "Search", tool: str = "Simple YouTube Search", tool_input: object = '{"query": "x"}') -> dict:
    return {
        "category": "Data",
        "tool_name": tool,
        "api_name": api,
        "tool_input": tool_input,
        "strip": "truncate",
        "toolbench_key": "",
    }


def test_cache_hit_simulated_miss_and_bad_input(tmp_path: Path, shared_data: Path) -> None:
    store = CacheStore(tmp_path / "cache.jsonl")
    store.put("search_for_simple_youtube_search", {"query": "x"}, {"error": "", "response": "cached!"})
    prompts: list[str] = []

    def sim(prompt: str) -> str:
        prompts.append(prompt)
        return 'Sure: {"error": "", "response": {"result": "simulated"}}'

    docs = load_tool_docs(shared_data / "stabletoolbench/solvable_queries/test_instruction")
    with serving(create_app(store, docs=docs, simulator=sim)) as url:
        assert httpx.post(f"{url}/virtual", json=body()).json() == {"error": "", "response": "cached!"}
        miss = httpx.post(f"{url}/virtual", json=body(api="Video", tool_input={"search": "y"})).json()
        assert miss == {"error": "", "response": '{"result": "simulated"}'}
        assert "Get particular video" in prompts[0]  # the API's document went into the prompt
        bad = httpx.post(f"{url}/virtual", json=body(tool_input="{not json"))
        assert bad.status_code == 200 and bad.json() == {"error": PARSE_ERROR, "response": ""}
        health = httpx.get(f"{url}/health").json()
        assert health["hits"] == 1 and health["simulated"] == 1
    # the simulated answer was written back
    assert CacheStore(tmp_path / "cache.jsonl").get("video_for_simple_youtube_search", {"search": "y"}) is not None


def test_seeded_from_recorded_observations(tmp_path: Path, shared_data: Path) -> None:
    store = CacheStore(tmp_path / "c.jsonl")
    assert store.seed_recorded(shared_data / "alpha_umi/derived_ood_observation_cache.json") == 786
    recorded = json.loads((shared_data / "alpha_umi/derived_ood_observation_cache.json").read_text())["cache"]
    fn = next(iter(recorded))
    args, text = next(iter(recorded[fn].items()))
    assert store.get(fn, args) == {"error": "", "response": text}
    assert not (tmp_path / "c.jsonl").exists()  # seeding does not copy the data into the cache file


def test_200_concurrent_requests_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    counter = {"n": 0}
    lock = threading.Lock()

    def sim(prompt: str) -> str:
        with lock:
            counter["n"] += 1
        return json.dumps({"error": "", "response": "r"})

    with serving(create_app(CacheStore(path), simulator=sim)) as url:

        def one(i: int) -> dict:
            return httpx.post(f"{url}/virtual", json=body(tool_input={"i": i}), timeout=30).json()

        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(one, range(200)))
    assert all(a == {"error": "", "response": "r"} for a in answers)
    lines = path.read_text().splitlines()
    assert len(lines) == 200 and len({json.loads(x)["key"] for x in lines}) == 200
    restarted = CacheStore(path)
    assert len(restarted) == 200
    with serving(create_app(restarted, simulator=lambda p: (_ for _ in ()).throw(AssertionError("miss")))) as url:
        assert httpx.post(f"{url}/virtual", json=body(tool_input={"i": 7})).json()["response"] == "r"


def test_simulator_giving_garbage_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with serving(create_app(CacheStore(None), simulator=lambda p: "not json at all")) as url:
        r = httpx.post(f"{url}/virtual", json=body()).json()
    assert r == {"error": "Failed to generate a simulated response", "response": ""}


def test_umi_executor_speaks_the_protocol(tmp_path: Path) -> None:
    from umi.tools import ToolBenchServerExecutor, ToolCall, from_api_list

    store = CacheStore(None)
    store.put("search_for_simple_youtube_search", {"query": "cats"}, {"error": "", "response": "meow"})
    spec = from_api_list(
        [
            {
                "category_name": "Data",
                "tool_name": "Simple YouTube Search",
                "api_name": "Search",
                "required_parameters": [{"name": "query", "type": "STRING"}],
            }
        ]
    )
    with serving(create_app(store)) as url:
        ex = ToolBenchServerExecutor(f"{url}/virtual", spec)
        assert ex.execute(ToolCall("search_for_simple_youtube_search", {"query": "cats"})).response == "meow"
        miss = ex.execute(ToolCall("search_for_simple_youtube_search", {"query": "dogs"}))
        assert "No cached response" in miss.error


def test_stabletoolbench_executor_client(tmp_path: Path) -> None:
    from umi.serve.client import StableToolBenchExecutor
    from umi.tools import ToolCall, from_api_list

    store = CacheStore(None)
    store.put("search_for_simple_youtube_search", {"query": "cats"}, {"error": "", "response": "meow"})
    specs = from_api_list(
        [
            {
                "category_name": "Data",
                "tool_name": "Simple YouTube Search",
                "api_name": "Search",
                "required_parameters": [{"name": "query", "type": "STRING"}],
            }
        ]
    )
    with serving(create_app(store)) as url:
        ex = StableToolBenchExecutor(url, specs)
        assert ex.health() is not None and ex.health()["cached"] == 1  # type: ignore[index]
        assert ex.execute(ToolCall("search_for_simple_youtube_search", {"query": "cats"})).response == "meow"
        assert "missing required" in ex.execute(ToolCall("search_for_simple_youtube_search", {})).error
        assert "No such function" in ex.execute(ToolCall("nope", {})).error
        assert ex.execute(ToolCall("search_for_simple_youtube_search", {"query": "dogs"})).error
    down = StableToolBenchExecutor(url, specs, timeout=2)  # the server is gone: an error, not an exception
    assert down.health() is None
    assert down.execute(ToolCall("search_for_simple_youtube_search", {"query": "cats"})).error


def test_store_reads_while_another_thread_writes(tmp_path: Path) -> None:
    """`examples` and `get` run on the server's thread pool beside `put`: reading must never see a growing dict
    (the 500 CI once hit under the 200-request test), and `examples` is a snapshot in insertion order."""
    store = CacheStore(None)
    sys_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        for i in range(20_000):
            store.put("f", {"i": i}, {"error": "", "response": str(i)}, persist=False)
        done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                store.examples("g")
                store.examples("f", limit=3)
        except BaseException as e:  # noqa: BLE001 - the test reports whatever the reader hit
            errors.append(e)

    try:
        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(sys_interval)
    assert not errors, errors
    assert len(store) == 20_000
    assert store.examples("f", limit=3) == [('{"i": 0}', "0"), ('{"i": 1}', "1"), ('{"i": 2}', "2")]
    assert store.examples("nothing") == []
