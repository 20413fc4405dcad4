"""`umi serve` as an operator meets it: one clear line and a non-zero exit for a bad or busy port, a host that
is not here, or a bad role config; a real `umi serve agent` that logs its address, answers, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

UMI = [sys.executable, "-m", "umi.cli.main"]


def _umi(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    return subprocess.run([*UMI, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


@pytest.mark.parametrize("command", ["tools", "agent"])
def test_bad_ports_and_hosts_are_one_line(command: str, busy_port: tuple[socket.socket, int], tmp_path: Path) -> None:
    extra = (
        ["--roles", str(tmp_path / "missing.toml")] if command == "agent" else ["--cache", str(tmp_path / "c.jsonl")]
    )
    cases = [
        (["--port", "99999"], "--port 99999 is not a TCP port"),
        (["--port", "-1"], "is not a TCP port"),
        (["--port", str(busy_port[1])], f"port {busy_port[1]} on 127.0.0.1 is already in use"),
        (["--host", "192.0.2.1", "--port", "8123"], "cannot listen on 192.0.2.1:8123"),
    ]
    for args, message in cases:
        r = _umi("serve", command, *args, *extra)
        assert r.returncode != 0, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_bad_role_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "roles.toml"
    bad.write_text('[roles.planner]\nengine = "nowhere"\n', encoding="utf-8")
    for roles, message in ((str(tmp_path / "missing.toml"), "not found"), (str(bad), "'nowhere'")):
        r = _umi("serve", "agent", "--roles", roles, "--port", "8124", "--db", str(tmp_path / "r.sqlite"))
        assert r.returncode == 1 and "Traceback" not in r.stderr and message in r.stderr, r.stderr
    r = _umi("serve", "tools", "--simulator", str(tmp_path / "missing.toml"), "--cache", str(tmp_path / "c.jsonl"),
             "--port", "8125")  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr and "not found" in r.stderr, r.stderr


def test_serve_agent_logs_its_address_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    # a role config that builds instantly: every role on an OpenAI-compatible engine (never called here)
    roles = tmp_path / "roles.toml"
    roles.write_text(
        '[engines.remote]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        + "".join(f'[roles.{r}]\nengine = "remote"\n' for r in ("planner", "caller", "summarizer")),
        encoding="utf-8",
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "300", "UMI_API_KEY": "k-123"}
    proc = subprocess.Popen(
        [*UMI, "serve", "agent", "--roles", str(roles), "--port", str(port), "--db", str(tmp_path / "r.sqlite")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert f"umi agent server listening on http://127.0.0.1:{port}" in line and "API key required" in line
        assert "k-123" not in line
        deadline = time.time() + 20
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer k-123"})
                break
            except httpx.HTTPError:
                assert time.time() < deadline
                time.sleep(0.1)
        assert models.status_code == 200 and models.json()["data"][0]["id"] == "alpha-umi"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "k-123" not in proc.stderr.read()  # type: ignore[union-attr]
