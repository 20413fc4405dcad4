"""`umi serve tools`: the StableToolBench-compatible tool server on loopback (or any host you choose)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from umi.cli._common import console, fail
from umi.paths import shared_data


def _default_shared() -> Path:
    return shared_data()


def register(app: typer.Typer) -> None:
    serve_app = typer.Typer(no_args_is_help=True)
    app.add_typer(serve_app, name="serve", help="HTTP servers.")

    @serve_app.command()
    def tools(
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8080, "--port"),
        cache: Path = typer.Option(Path("runs/tool_cache.jsonl"), "--cache", help="Cache file (JSONL, appended)."),
        seed_cache: Path | None = typer.Option(None, "--seed-cache", help="Recorded responses to preload."),
        tools_dir: Path | None = typer.Option(None, "--tools-dir", help="StableToolBench query files (tool docs)."),
        simulator: str | None = typer.Option(None, "--simulator", help="Role config of the simulator model."),
        upstream_url: str | None = typer.Option(None, "--upstream-url"),
        key_env: str = typer.Option("TOOLBENCH_KEY", "--key-env", help="Environment variable holding the key."),
        write_back: bool = typer.Option(True, "--write-back/--no-write-back"),
    ) -> None:
        """Serve `POST /virtual` (StableToolBench protocol): cache → upstream → simulator."""
        import uvicorn

        from umi.serve.store import CacheStore
        from umi.serve.tool_server import Upstream, create_app, engine_simulator, load_tool_docs

        shared = _default_shared()
        seed = seed_cache or shared / "alpha_umi" / "derived_ood_observation_cache.json"
        docs_dir = tools_dir or shared / "stabletoolbench" / "solvable_queries" / "test_instruction"
        store = CacheStore(cache)
        seeded = store.seed_recorded(seed) if seed.exists() else 0
        docs = load_tool_docs(docs_dir) if docs_dir.is_dir() else {}
        up = None
        if upstream_url:
            key = os.environ.get(key_env, "")
            if not key:
                fail(f"--upstream-url needs a key in the environment variable {key_env}")
            up = Upstream(upstream_url, key)
        sim = engine_simulator(simulator) if simulator else None
        console.print(
            f"umi tool server listening on http://{host}:{port}/virtual "
            f"({len(store)} cached responses, {seeded} seeded; {len(docs)} API documents)"
        )
        uvicorn.run(
            create_app(store, docs=docs, simulator=sim, upstream=up, write_back=write_back),
            host=host,
            port=port,
            log_level="warning",
        )
