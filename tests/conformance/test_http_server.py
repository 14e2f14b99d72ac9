"""The same recorded scenarios over real HTTP: `balrog db load` + `balrog serve` (waitress), one server per scenario."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import record
from .harness import WsgiResult, compare, load_divergences, scenario_files

BALROG = [sys.executable, "-m", "balrog_app.cli"]
SCENARIOS = {path.stem: path for path in scenario_files()}
DIVERGENCES = load_divergences()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server on port {port} did not start")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Start one `balrog serve` per scenario, all at once, and stop them at the end."""
    env = dict(os.environ, BALROG_ACCESS_LOG="false", BALROG_LOAD_DEMO_DATA="false", BALROG_LOG_FORMAT="text")
    running = {}
    try:
        for name, path in SCENARIOS.items():
            db = f"sqlite:///{tmp_path_factory.mktemp('http')}/{name}.db"
            subprocess.run(BALROG + ["db", "load", str(path), "--db", db], env=env, check=True,
                           capture_output=True)
            port = free_port()
            proc = subprocess.Popen(BALROG + ["serve", "--db", db, "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            running[name] = (port, proc)
        for port, proc in running.values():
            wait_until_up(port, proc)
        yield {name: port for name, (port, _) in running.items()}
    finally:
        for _, proc in running.values():
            proc.terminate()
        for _, proc in running.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def http_get(port: int, path: str, headers: dict | None) -> WsgiResult:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)  # the raw target, as recorded
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return WsgiResult(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


CASES = [pytest.param(name, i, id=f"http-{name}-{i}")
         for name, path in SCENARIOS.items() for i in range(len(json.loads(path.read_text())["requests"]))]
REQUESTS = {name: json.loads(path.read_text())["requests"] for name, path in SCENARIOS.items()}


@pytest.mark.parametrize("name,index", CASES)
def test_request_over_http(servers, name, index):
    request = REQUESTS[name][index]
    key = (name, index)
    record("http", key, "pending")
    got = http_get(servers[name], request["path"], request.get("headers"))
    outcome = compare(request, got)
    if not outcome.matched and (name, request["path"]) in DIVERGENCES:
        record("http", key, "divergent")
        return
    if outcome.matched:
        record("http", key, "ok")
    assert outcome.matched, f"{name} #{index} {request['path']}\n" + "\n".join(outcome.problems)
