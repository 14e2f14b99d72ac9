"""`balrog serve` as a user runs it: no arguments, demo data, the printed URL, live data changes, abuse."""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conformance.test_http_server import free_port, http_get, wait_until_up

BALROG = [sys.executable, "-m", "balrog_app.cli"]


@pytest.fixture
def served(tmp_path):
    """`balrog serve` started in an empty directory with only a port chosen (defaults for everything else)."""
    port = free_port()
    env = dict(os.environ, BALROG_PORT=str(port), BALROG_LOG_FORMAT="json")
    proc = subprocess.Popen(BALROG + ["serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(port, proc)
        yield port, proc, tmp_path, env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def read_until(proc, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"{pattern!r} not printed; got {''.join(seen)}")


def test_printed_sample_url_returns_an_update_and_changes_go_live(served):
    port, proc, cwd, env = served
    line = read_until(proc, r"try: curl")
    url = re.search(r"http://127\.0\.0\.1:\d+(/update/\S+)'", line).group(1)
    got = http_get(port, url, None)
    assert got.status == 200
    body = got.body.decode()
    assert '<patch type="complete"' in body and '<patch type="partial"' in body
    assert got.header("Rule-ID") == "5"
    assert (cwd / "balrog.db").exists()

    # Map the release rule somewhere else with `balrog db load`; the server notices within 5 s.
    demo = json.loads((Path(__file__).resolve().parents[2] / "app" / "static" / "demo-dataset.json").read_text())
    for rule in demo["rules"]:
        if rule["rule_id"] == 5:
            rule["mapping"] = None
    changed = cwd / "changed.json"
    changed.write_text(json.dumps(demo))
    subprocess.run(BALROG + ["db", "load", str(changed)], cwd=cwd, env=env, check=True, capture_output=True)
    start = time.monotonic()
    while time.monotonic() - start < 5:
        if http_get(port, url, None).body == b'<?xml version="1.0"?>\n<updates>\n</updates>':
            break
        time.sleep(0.1)
    else:
        raise AssertionError("rule change not visible within 5 s")

    # Access log lines are JSON.
    line = read_until(proc, r'"logger": "balrog.access"')
    entry = json.loads(line)
    assert entry["status"] == 200 and entry["product"] == "Firefox" and entry["outcome"] in ("update", "no_update")


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_abusive_requests_get_4xx_not_5xx_or_hangs(served):
    port = served[0]
    huge_url = "/update/6/" + "A" * 300_000 + "/update.xml"
    status = raw_request(port, f"GET {huge_url} HTTP/1.1\r\nHost: x\r\n\r\n".encode()).split(b" ", 2)[1]
    assert status.startswith(b"4")
    huge_header = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"j" * 300_000 + b"\r\n\r\n"
    assert raw_request(port, huge_header).split(b" ", 2)[1].startswith(b"4")
    for path in ("/update/6/%FF%FE/update.xml", "/../../etc/passwd", "/update/../../etc/passwd",
                 "/update/3/b/1.0/1/p/l/a/a/a/a/update.xml?%FF=1", "/json/1/%C3%28/1.0/p/c/update.json"):
        got = http_get(port, path, None)
        assert got.status < 500, (path, got.status)
    garbage = raw_request(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    assert not garbage or garbage.split(b" ", 2)[1].startswith(b"4")
