"""The HTTP engine's retries, key handling and bounded concurrency, against a tiny loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from umi.models.base import EngineError, GenerationParams


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to every other request (with retry-after 0), else a completion echoing the model name."""

    hits: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).hits.append({"auth": self.headers.get("Authorization"), **body})
        if len(self.hits) % 2 == 1:
            self.send_response(503)
            self.send_header("retry-after-ms", "10")
            self.end_headers()
            return
        text = f"{body['model']}: ok</s> tail"
        payload = {
            "id": "x",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def flaky_url() -> Iterator[str]:
    _Flaky.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_retries_on_5xx_key_from_env_and_adapter_as_model(flaky_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from umi.models.openai_http import OpenAIEngine

    monkeypatch.setenv("UMI_TEST_KEY", "sk-secret-123")
    engine = OpenAIEngine(flaky_url, model="base", api_key_env="UMI_TEST_KEY", max_retries=2, role="caller")
    assert "sk-secret" not in repr(engine)
    # stops beyond the API's four (and any a lax server ignored) are applied client-side
    params = GenerationParams(max_new_tokens=8, stop=("a1", "a2", "a3", "a4", "</s>"))
    c = engine.complete(["hello"], params, adapter="caller")[0]
    assert c.text == "caller: ok" and c.prompt_tokens == 3 and c.new_tokens == 4
    assert len(_Flaky.hits) == 2 and _Flaky.hits[-1]["model"] == "caller"  # one 503, retried once
    assert _Flaky.hits[-1]["auth"] == "Bearer sk-secret-123"
    outs = engine.complete(["a", "b", "c"], GenerationParams(max_new_tokens=4, stop=("</s>",)))
    assert [o.text for o in outs] == ["base: ok"] * 3


def test_missing_key_and_exhausted_retries_are_engine_errors(flaky_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from umi.models.openai_http import OpenAIEngine

    monkeypatch.delenv("UMI_NO_SUCH_KEY", raising=False)
    with pytest.raises(EngineError, match="role 'planner', engine openai: environment variable UMI_NO_SUCH_KEY"):
        OpenAIEngine(flaky_url, api_key_env="UMI_NO_SUCH_KEY", role="planner")
    engine = OpenAIEngine(flaky_url, max_retries=0, role="planner")
    with pytest.raises(EngineError, match=r"role 'planner', engine openai: .*InternalServerError"):
        engine.complete(["x"], GenerationParams(max_new_tokens=2))
