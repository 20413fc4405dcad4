"""`umi serve tools` (the StableToolBench-compatible tool server) and `umi serve agent` (the OpenAI-compatible
α-UMi server with runs and the trace viewer).

Every server command binds its socket before anything else is printed: a bad or busy port, or a host that does
not resolve, is one clear line and a non-zero exit, never a traceback. One line is logged with the address;
SIGTERM stops the server cleanly (uvicorn's handler).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import typer

from umi.cli._common import console, fail
from umi.paths import shared_data


def _default_shared() -> Path:
    return shared_data()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or `fail` with the reason and the fix."""
    if not 1 <= port <= 65535:
        fail(f"--port {port} is not a TCP port; give a number from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        fail(f"--host {host!r} does not resolve to an address here ({exc}); use e.g. 127.0.0.1 or 0.0.0.0")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use; stop the other server or choose another --port")
        if exc.errno in (errno.EACCES, errno.EPERM):
            fail(f"no permission to listen on {host}:{port}; use a port above 1023")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Run `app` on an already bound socket until SIGINT / SIGTERM, then exit 0.

    uvicorn drains requests on the signal and then raises it again for the previous handler; the handler set
    here turns that into a normal exit, so a supervisor sees a clean stop rather than death by signal."""
    import uvicorn

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _roles(source: str | None):  # type: ignore[no-untyped-def]
    from umi.models.base import EngineError
    from umi.models.roles import default_roles, load_roles

    try:
        return load_roles(source) if source else default_roles()
    except (EngineError, OSError, ValueError) as exc:
        fail(f"--roles {source or '(default)'}: {exc}")


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
        constrain: bool = typer.Option(
            True,
            "--constrain/--no-constrain",
            help='The simulator can only write its reply shape, {"error": …, "response": <JSON>}.',
        ),
    ) -> None:
        """Serve `POST /virtual` (StableToolBench protocol): cache → upstream → simulator."""
        from umi.serve.store import CacheStore
        from umi.serve.tool_server import Upstream, create_app, engine_simulator, load_tool_docs

        sock = bind(host, port)
        shared = _default_shared()
        seed = seed_cache or shared / "alpha_umi" / "derived_ood_observation_cache.json"
        docs_dir = tools_dir or shared / "stabletoolbench" / "solvable_queries" / "test_instruction"
        try:
            store = CacheStore(cache)
            seeded = store.seed_recorded(seed) if seed.exists() else 0
            docs = load_tool_docs(docs_dir) if docs_dir.is_dir() else {}
        except (OSError, ValueError, KeyError) as exc:
            fail(f"cannot read the cache or tool documents: {exc}")
        up = None
        if upstream_url:
            key = os.environ.get(key_env, "")
            if not key:
                fail(f"--upstream-url needs a key in the environment variable {key_env}")
            up = Upstream(upstream_url, key)
        if simulator:
            _roles(simulator)  # a bad simulator config fails here with one line
        sim = engine_simulator(simulator, constrain=constrain) if simulator else None
        console.print(
            f"umi tool server listening on {_url(host, port)}/virtual "
            f"({len(store)} cached responses, {seeded} seeded; {len(docs)} API documents)"
        )
        serve(create_app(store, docs=docs, simulator=sim, upstream=up, write_back=write_back), sock)

    @serve_app.command()
    def agent(
        roles: str | None = typer.Option(None, "--roles", help="Role config (TOML), run manifest, or packaged name."),
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8000, "--port"),
        db: Path = typer.Option(Path("runs/umi-runs.sqlite"), "--db", help="Run store (SQLite, WAL)."),
        traces: Path | None = typer.Option(None, "--traces", help="Show `umi run --trace` files of this folder."),
        model_id: str = typer.Option("alpha-umi", "--model-id", help="The model name /v1/models lists."),
        allow_commands: bool = typer.Option(
            False, "--allow-commands", help="Let POST /v1/runs start MCP servers from command lines."
        ),
        workers: int = typer.Option(2, "--workers", min=1, help="Server-side runs at a time."),
        constrain: bool = typer.Option(
            True, "--constrain/--no-constrain", help="Output grammars for every role (exact tool_choice calls)."
        ),
    ) -> None:
        """Serve α-UMi: OpenAI-compatible `/v1/chat/completions`, `/v1/runs`, and the trace viewer at `/`.

        Set UMI_API_KEY to require `Authorization: Bearer <key>` on every /v1/ request."""
        from umi.serve.agent_server import agent_supports, create_agent_app
        from umi.serve.run_store import RunStore

        if constrain and not agent_supports("constrain"):
            fail("--constrain: this umi build has no output grammars for the agent yet (issue #12)")
        sock = bind(host, port)
        if traces is not None and not traces.is_dir():
            fail(f"--traces {traces} is not a folder of trace files")
        bound = _roles(roles)
        try:
            store = RunStore(db)
        except Exception as exc:  # sqlite3 raises its own error types for unreadable files
            fail(f"--db {db}: cannot open the run store ({exc})")
        try:
            app = create_agent_app(
                bound,
                store=store,
                model_id=model_id,
                api_key=os.environ.get("UMI_API_KEY") or None,
                allow_commands=allow_commands,
                traces_dir=traces,
                run_workers=workers,
                agent_options={"constrain": True} if constrain else None,
            )
        except ValueError as exc:
            fail(f"--roles {roles or '(default)'}: {exc}")
        auth = "API key required" if os.environ.get("UMI_API_KEY") else "no API key"
        console.print(
            f"umi agent server listening on {_url(host, port)} (OpenAI base URL {_url(host, port)}/v1, "
            f"viewer at /; {auth}; runs in {db})",
            highlight=False,
        )
        serve(app, sock)
