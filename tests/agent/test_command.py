"""``balrog agent`` as a real process against the admin API over HTTP: one cycle with
``--once``, JSON log lines, the metrics file and port, refused configurations, SIGTERM."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

from tests.agent.servers import AGENT, TOKENS, admin_api, call, firefox, now_ms, schedule

ENV = {"PATH": "/usr/bin:/bin"}


def agent(config_path, *args, **kwargs):
    return [sys.executable, "-m", "balrog_app.cli", "agent", "--agent-config", str(config_path), *args]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_once_enacts_what_is_due_logs_json_and_writes_metrics(tmp_path):
    with admin_api() as (base_url, _):
        firefox(base_url)
        sc_id = schedule(base_url, 2, now_ms(0.3), backgroundRate=5)
        time.sleep(0.4)
        config = tmp_path / "agent.toml"
        config.write_text(f'api_root = "{base_url}"\ngrace_seconds = 0\nmetrics_file = "{tmp_path}/agent.prom"\n'
                          f'[auth]\ntoken = "{TOKENS[AGENT]}"\n')
        result = subprocess.run(agent(config, "--once"), capture_output=True, text=True, timeout=60, env=ENV)
        assert result.returncode == 0, result.stderr
        assert call(base_url, "GET", f"/scheduled_changes/rules/{sc_id}")[1]["scheduled_change"]["complete"]
    lines = json_lines(result.stdout)
    assert lines[0]["event"] == "started" and lines[-1]["event"] == "stopped"
    decisions = [(line["change"], line["decision"]) for line in lines if line.get("event") == "decision"]
    assert decisions == [(f"rules/{sc_id}", "heads_up"), (f"rules/{sc_id}", "enacted")]
    enacted = lines[-2]
    assert (enacted["level"], enacted["logger"], enacted["segment"], enacted["scheduled_by"]) == \
        ("INFO", "balrog.agent", "rules", "alice@example.com")
    metrics = (tmp_path / "agent.prom").read_text()
    assert 'balrog_agent_decisions_total{decision="enacted",segment="rules"} 1.0' in metrics
    assert 'balrog_agent_cycles_total{outcome="ok"} 1.0' in metrics


def test_once_exits_1_when_the_cycle_failed(tmp_path):
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"api_root": "http://127.0.0.1:9", "auth": {"token": "t"}, "retries": 0}))
    result = subprocess.run(agent(config, "--once"), capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 1
    failures = [line for line in json_lines(result.stdout) if line.get("event") == "listing_failed"]
    assert [line["segment"] for line in failures][:2] == ["rules", "releases"] and len(failures) == 8


def test_refused_configuration_exits_2_naming_each_problem(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('api_root = "admin"\n[auth]\nclient_id = "x"\n[[notifiers]]\ntype = "pager"\n')
    result = subprocess.run(agent(config), capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 2
    assert "balrog agent: refusing this configuration:" in result.stderr
    assert "  api_root: must be an http:// or https:// URL" in result.stderr
    assert "  auth: give either token" in result.stderr


def test_sigterm_finishes_cleanly_and_metrics_are_served(tmp_path):
    with admin_api() as (base_url, _):
        config = tmp_path / "agent.json"
        config.write_text(json.dumps({"api_root": base_url, "auth": {"token": TOKENS[AGENT]}, "interval": 0.2,
                                      "metrics_port": 0}))
        process = subprocess.Popen(agent(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        try:
            port = None
            deadline = time.monotonic() + 30
            while port is None:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                line = process.stdout.readline()
                if line.startswith("{") and json.loads(line).get("event") == "metrics_http":
                    port = json.loads(line)["port"]
            time.sleep(0.5)  # a few cycles
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                exposed = response.read().decode()
            assert "balrog_agent_cycles_total" in exposed and "balrog_agent_decisions_total" in exposed
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    events = [line["event"] for line in json_lines(out)]
    assert events[-2:] == ["stopping", "stopped"]
