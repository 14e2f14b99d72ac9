"""``balrog admin``: refuses to start without a way to log in; serves the admin API over HTTP
with the configured tokens."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refuses_to_start_without_authentication(tmp_path):
    result = subprocess.run([sys.executable, "-m", "balrog_app.cli", "admin", "--db", f"sqlite:///{tmp_path}/a.db"],
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "refusing to start" in result.stderr


def test_serves_with_static_development_tokens(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"t-alice": "alice@example.com"}))
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "BALROG_ADMIN_TOKENS_FILE": str(tokens)}
    server = subprocess.Popen([sys.executable, "-m", "balrog_app.cli", "admin", "--db", f"sqlite:///{tmp_path}/a.db",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/no-such-endpoint")
                response = conn.getresponse()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "balrog admin did not start"
                time.sleep(0.2)
        assert response.status == 404 and response.getheader("Content-Type") == "application/problem+json"
        assert response.getheader("X-Frame-Options") == "DENY"
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    assert f"admin API on http://127.0.0.1:{port}" in out and "static development tokens" in out


def test_admin_settings_from_the_environment():
    """What ``balrog admin`` hands the app: client-id logins, the agent's due-only rule."""
    from balrog_engine.config import load_settings

    settings = load_settings(env={"BALROG_AUTH_M2M_ACCOUNTS": '{"automation-client": "balrog-ffxbld"}',
                                  "BALROG_SYSTEM_ACCOUNTS": "balrogagent,balrog-ffxbld"})
    assert settings.auth_m2m_accounts == {"automation-client": "balrog-ffxbld"}
    assert settings.system_accounts == ("balrogagent", "balrog-ffxbld")
    assert settings.enact_due_only_for_system_accounts is True
    assert load_settings(env={"BALROG_ENACT_DUE_ONLY_FOR_SYSTEM_ACCOUNTS": "false"}) \
        .enact_due_only_for_system_accounts is False
