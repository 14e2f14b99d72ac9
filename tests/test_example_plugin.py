"""The plugin guide's example package, pip-installed for real and served over the public app."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from balrog_engine.testing import json_url, make_engine

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "balrog-squirrel"

DATASET = {
    "config": {"allowlisted_domains": {"downloads.example.com": ["Chat"]}},
    "rules": [{"rule_id": 7, "priority": 10, "mapping": "Chat-2.1.0", "backgroundRate": 100,
               "update_type": "minor", "product": "Chat", "channel": "stable"}],
    "releases": [{"name": "Chat-2.1.0", "product": "Chat", "data": {
        "name": "Chat-2.1.0", "schema_version": 20000, "version": "2.1.0", "notes": "Faster.",
        "pub_date": "2026-11-01T00:00:00Z",
        "platforms": {"darwin-x64": {"url": "https://downloads.example.com/chat-2.1.0-mac.zip"}}}}],
}


@pytest.fixture(scope="module")
def installed():
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(EXAMPLE)],
                   check=True)
    importlib.invalidate_caches()
    yield
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "balrog-squirrel"], check=True)


def test_installed_plugin_is_discovered_and_served(installed):
    engine = make_engine(DATASET)
    assert 20000 in engine.registry.blob_types
    response = engine.get(json_url("Chat", "2.0.0", "darwin-x64", "stable"))
    assert response.status == 200
    assert json.loads(response.body) == {"url": "https://downloads.example.com/chat-2.1.0-mac.zip",
                                         "name": "2.1.0", "notes": "Faster.", "pub_date": "2026-11-01T00:00:00Z"}
    assert response.header("Rule-ID") == "7"
    assert engine.get(json_url("Chat", "2.1.0", "darwin-x64", "stable")).status == 404
    assert engine.get(json_url("Chat", "2.0.0", "win32-x64", "stable")).status == 404


def test_installed_plugin_validates_its_blobs(installed):
    bad = json.loads(json.dumps(DATASET))
    del bad["releases"][0]["data"]["pub_date"]
    with pytest.raises(ValueError, match="pub_date"):
        make_engine(bad)


def test_installed_plugin_can_be_blocked(installed):
    from balrog_engine import load_plugins

    assert 20000 not in load_plugins(blocked=["squirrel"]).blob_types
