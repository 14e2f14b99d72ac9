"""The agent's configuration: a TOML/JSON file, the environment over it, every problem reported
with its path — including those found by the plugins' own schemas."""
from __future__ import annotations

import json

import pytest

from balrog_app.agent.config import ConfigError, build_plugins, load_agent_config
from balrog_engine import load_plugins

REGISTRY = load_plugins()

TOML = """
api_root = "https://admin.example.com/api"
interval = 10
grace_seconds = 120
metrics_file = "/tmp/agent.prom"

[auth]
token = "dev-token"

[metrics_sources.telemetry]
type = "http_json"
url = "https://metrics.example.com/{metric}"

[metrics_sources.health]
type = "sql_table"
url = "sqlite://"
table = "health"

[[notifiers]]
type = "smtp"
host = "smtp.example.com"
from_addr = "agent@example.com"
to_addrs = ["releng@example.com"]

[[notifiers]]
type = "webhook"
url = "https://hooks.example.com/balrog"
"""


def test_toml_file(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(TOML)
    config = load_agent_config(path)
    assert (config.api_root, config.interval, config.grace_seconds, config.retries) == \
        ("https://admin.example.com/api", 10.0, 120.0, 3)
    assert config.auth == {"token": "dev-token"}
    sources, notifiers = build_plugins(config, REGISTRY)
    assert {name: source.name for name, source in sources.items()} == {"telemetry": "http_json", "health": "sql_table"}
    assert [n.name for n in notifiers] == ["smtp", "webhook"]
    assert notifiers[0].config["to_addrs"] == ["releng@example.com"]
    for source in sources.values():
        source.close()


def test_json_file_and_agent_table_of_a_shared_file(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"api_root": "http://127.0.0.1:9011", "auth": {"token": "t"}}))
    assert load_agent_config(path).api_root == "http://127.0.0.1:9011"
    shared = tmp_path / "balrog.toml"
    shared.write_text('[balrog]\nadmin_port = 9011\n\n[agent]\napi_root = "http://127.0.0.1:9011"\n'
                      '[agent.auth]\ntoken = "t"\n')
    assert load_agent_config(None, {}, shared_path=shared).auth == {"token": "t"}


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(TOML)
    reference = {"BALROG_API_ROOT": "https://other.example.com/api", "AUTH0_DOMAIN": "auth.example.com",
                 "AUTH0_AUDIENCE": "balrog", "AUTH0_M2M_CLIENT_ID": "cid", "AUTH0_M2M_CLIENT_SECRET": "secret"}
    config = load_agent_config(path, reference)
    assert config.api_root == "https://other.example.com/api"
    # The reference agent's credentials replace the file's static token as a whole.
    assert config.auth == {"domain": "auth.example.com", "audience": "balrog", "client_id": "cid",
                           "client_secret": "secret"}
    ours = {**reference, "BALROG_AGENT_TOKEN": "env-token", "BALROG_AGENT_GRACE_SECONDS": "0",
            "BALROG_AGENT_METRICS_FILE": "", "BALROG_AGENT_NOTIFIERS": "[]",
            "BALROG_AGENT_API_ROOT": "http://127.0.0.1:1"}
    config = load_agent_config(path, ours)
    assert (config.auth, config.grace_seconds, config.metrics_file, config.notifiers, config.api_root) == \
        ({"token": "env-token"}, 0.0, None, (), "http://127.0.0.1:1")


@pytest.mark.parametrize("values, problem", [
    ({"auth": {"token": "t"}}, "api_root: Missing data for required field."),
    ({"api_root": "admin.example.com", "auth": {"token": "t"}}, "api_root: must be an http:// or https:// URL"),
    ({"api_root": "http://a"}, "auth: Missing data for required field."),
    ({"api_root": "http://a", "auth": {"client_id": "c"}}, "auth: give either token, or domain (or token_url), "
                                                           "audience, client_id and client_secret (missing: domain, "
                                                           "audience, client_secret)"),
    ({"api_root": "http://a", "auth": {"token": "t", "client_id": "c"}},
     "auth: a static token excludes client credentials (client_id)"),
    ({"api_root": "http://a", "auth": {"token": "t"}, "interval": 0}, "interval: Must be greater than or equal to"),
    ({"api_root": "http://a", "auth": {"token": "t"}, "grace": 5}, "grace: Unknown field."),
    ({"api_root": "http://a", "auth": {"token": "t"}, "notifiers": [{"host": "x"}]},
     "notifiers[0].type: Missing data for required field."),
])
def test_refusals_name_the_field(tmp_path, values, problem):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(values))
    with pytest.raises(ConfigError) as refused:
        load_agent_config(path)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


def test_plugin_schemas_check_their_part(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({
        "api_root": "http://a", "auth": {"token": "t"},
        "metrics_sources": {"fleet": {"type": "prometheus"}, "web": {"type": "http_json", "url": "ftp://x"}},
        "notifiers": [{"type": "smtp", "host": "h", "from_addr": "a@example.com"}]}))
    with pytest.raises(ConfigError) as refused:
        build_plugins(load_agent_config(path), REGISTRY)
    assert refused.value.problems == [
        "metrics_sources.fleet.type: unknown metrics source type 'prometheus' (known: http_json, sql_table)",
        "metrics_sources.web.url: must be an http:// or https:// URL",
        "notifiers[0].to_addrs: Missing data for required field.",
    ]


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_agent_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("api_root = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_agent_config(bad)
