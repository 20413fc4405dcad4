"""The α-UMi agent server: the OpenAI-compatible chat endpoint, server-side runs, and the trace viewer at `/`.

```python
app = create_agent_app(roles, store=RunStore("runs/umi-runs.sqlite"), api_key=os.environ.get("UMI_API_KEY"))
uvicorn.run(app, host="127.0.0.1", port=8000)
```

Every client mistake is a 400 (404 for an unknown run) with an OpenAI-style error object naming the field;
only the server's own failures are 500s. With an API key, every `/v1/` request needs
`Authorization: Bearer <key>` (401 otherwise); the viewer page itself holds no data and asks for the key.
The key is compared in constant time and never written to a log.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from umi.models.roles import Roles
from umi.serve.chat import StepFailed, chat_router
from umi.serve.protocol import ClientError, error_body, param_path
from umi.serve.run_store import RunStore
from umi.serve.runs import RunManager, import_traces, runs_router

log = logging.getLogger("umi.serve")
VIEWER = Path(str(resources.files("umi.serve").joinpath("viewer")))
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}


def _validation_message(err: dict[str, Any]) -> tuple[str, str]:
    if err.get("type") == "json_invalid":
        return "body", f"the request body is not valid JSON ({err.get('ctx', {}).get('error', err.get('msg'))})"
    param = param_path(err.get("loc", ()))
    return param, f"{param}: {err.get('msg', 'invalid value')}"


def served_model(roles: Roles, model_id: str) -> dict[str, Any]:
    """The `/v1/models` entry: the served role configuration, role by role."""
    bound = {
        role: {"engine": getattr(b.engine, "name", type(b.engine).__name__), "adapter": b.adapter, "label": b.label}
        for role, b in roles.bound().items()
    }
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "umi",
        "family": roles.family,
        "source": roles.source,
        "roles": bound,
    }


def agent_supports(option: str) -> bool:
    """Whether this umi's agent takes `option` (constrained decoding arrives with issue #12's grammars)."""
    import inspect

    from umi.agent import AgentBase

    return option in inspect.signature(AgentBase.__init__).parameters


def create_agent_app(
    roles: Roles,
    *,
    store: RunStore,
    model_id: str = "alpha-umi",
    api_key: str | None = None,
    allow_commands: bool = False,
    traces_dir: str | Path | None = None,
    run_workers: int = 2,
    chat_attempts: int = 3,
    agent_options: dict[str, Any] | None = None,
) -> FastAPI:
    """The app. `agent_options` go to every agent the server builds (chat steps and runs), e.g.
    `{"constrain": True}` for output grammars where the agent has them."""
    roles.get("planner"), roles.get("caller"), roles.get("summarizer")  # fail at start, naming an unbound role
    store.recover()
    if traces_dir is not None:
        import_traces(store, traces_dir)
    manager = RunManager(roles, store, allow_commands=allow_commands, workers=run_workers, agent_options=agent_options)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        manager.shutdown()

    app = FastAPI(title="umi agent server (OpenAI-compatible)", docs_url="/docs", redoc_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.manager = manager

    @app.middleware("http")
    async def bearer_auth(request: Request, call_next: Any) -> Response:
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
                body = error_body(
                    "missing or wrong API key: send `Authorization: Bearer <key>` (the key in UMI_API_KEY)",
                    code="invalid_api_key",
                )
                return JSONResponse(body, status_code=401)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        param, message = _validation_message(dict(errors[0])) if errors else ("body", "invalid request")
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        return JSONResponse(error_body(message, param=param), status_code=400)

    @app.exception_handler(ClientError)
    async def client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, param=exc.param, code=exc.code), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(StepFailed)
    async def step_failed(_: Request, exc: StepFailed) -> JSONResponse:
        log.error("a role failed: %s", exc)
        return JSONResponse(error_body(f"the agent could not run: {exc}", kind="server_error"), status_code=500)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected server error")
        return JSONResponse(error_body("internal server error (see the server log)", kind="server_error"), 500)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [served_model(roles, model_id)]}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "model": model_id}

    app.include_router(chat_router(roles, model_id, attempts=chat_attempts, agent_options=agent_options, log=log.error))
    app.include_router(runs_router(manager))

    @app.get("/", include_in_schema=False)
    def viewer() -> FileResponse:
        return FileResponse(VIEWER / "index.html", media_type="text/html")

    @app.get("/viewer/{name}", include_in_schema=False)
    def viewer_asset(name: str) -> FileResponse:
        if name not in _ASSETS:
            raise ClientError("name", f"no viewer asset {name!r}", status=404)
        return FileResponse(VIEWER / name, media_type=_ASSETS[name])

    return app
