"""Replaying recorded reference scenarios against our public WSGI app.

A scenario (shared/conformance/README.md) is loaded through the storage API of
a backend, served by the real falcon app, and every request is sent as raw
WSGI — the path exactly as it went on the wire — then compared with what the
reference answered.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

SHARED_CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
DIVERGENCES_FILE = Path(__file__).with_name("divergences.json")


def scenario_files() -> list[Path]:
    dirs = [SHARED_CONFORMANCE]
    dirs += [Path(d) for d in os.environ.get("BALROG_CONFORMANCE_DIRS", "").split(os.pathsep) if d]
    files: list[Path] = []
    for d in dirs:
        if d.is_dir():
            files.extend(sorted(p for p in d.glob("*.json")))
    return files


def load_divergences() -> dict[tuple[str, str], str]:
    """Intended divergences: (scenario name, request path) -> why we answer differently."""
    entries = json.loads(DIVERGENCES_FILE.read_text())
    return {(e["scenario"], e["path"]): e["reason"] for e in entries}


@dataclass
class WsgiResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def call_wsgi(app, path: str, headers: dict | None = None, method: str = "GET") -> WsgiResult:
    """Send a raw request target to a WSGI app the way waitress would build the environ."""
    raw_path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": __import__("io").BytesIO(b""),
        "wsgi.errors": __import__("sys").stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    captured = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = response_headers

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return WsgiResult(captured["status"], captured["headers"], body)


@dataclass
class Outcome:
    matched: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compare(expected: dict, got: WsgiResult) -> Outcome:
    problems: list[str] = []
    notes: list[str] = []
    if got.status != expected["status"]:
        problems.append(f"status: expected {expected['status']}, got {got.status}")
    content_type = got.header("Content-Type")
    if content_type != expected.get("content_type"):
        problems.append(f"content type: expected {expected.get('content_type')!r}, got {content_type!r}")
    for name, value in (expected.get("response_headers") or {}).items():
        if got.header(name) != value:
            problems.append(f"header {name}: expected {value!r}, got {got.header(name)!r}")
    body = got.body.decode("utf-8", "replace")
    if body != expected["body"]:
        diff = "\n".join(difflib.unified_diff(expected["body"].splitlines(), body.splitlines(), "expected", "got",
                                              lineterm=""))
        if 200 <= expected["status"] < 300:
            problems.append(f"body differs:\n{diff or repr((expected['body'], body))}")
        else:
            notes.append(f"error text differs (informational):\n{diff or repr((expected['body'], body))}")
    return Outcome(not problems, problems, notes)
