"""The client side of `umi serve tools`: an `Executor` that sends each call to a StableToolBench-protocol server.

It reuses umi's ToolBench-protocol executor (one implementation of the wire protocol, shared with real
ToolBench servers) and only adds what a local server needs: a base URL (`/virtual` is appended) and a quick
health probe so a run can fail before its first task rather than record every call as an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from umi.schema import ToolSpec
from umi.tools.executors import ToolBenchServerExecutor


def virtual_url(base_url: str) -> str:
    """`http://host:port` (or one already ending in `/virtual`) → the `POST /virtual` endpoint."""
    base = base_url.rstrip("/")
    return base if base.endswith("/virtual") else base + "/virtual"


class StableToolBenchExecutor(ToolBenchServerExecutor):
    """Runs calls for `tools` (ToolSpec.meta: category, tool_name, api_name) against a StableToolBench-protocol
    server. Unknown names, missing required arguments, transport failures and the server's own `error` field
    all come back as `Observation.error`; nothing raises."""

    def __init__(
        self,
        base_url: str,
        tools: Sequence[ToolSpec],
        *,
        key_env: str = "TOOLBENCH_KEY",
        timeout: float = 60.0,
        transport: Any = None,
    ) -> None:
        super().__init__(virtual_url(base_url), tools, key_env=key_env, timeout=timeout, transport=transport)
        self.base_url = self.url[: -len("/virtual")]

    def health(self) -> dict[str, Any] | None:
        """The server's `/health` document, or None when it does not answer."""
        import httpx

        try:
            data = self._client.get(self.base_url + "/health").json()
        except (httpx.HTTPError, ValueError):
            return None
        return data if isinstance(data, dict) else None
