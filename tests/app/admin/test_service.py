"""Dockerflow endpoints of the admin app (balrog_app.admin.service): the steps of the recorded
transcript ``misc-service-endpoints`` these families answer, replayed in process on memory:// and a
SQLite file, plus the version document, HEAD and the database-failure answer."""
from __future__ import annotations

from falcon import testing

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from tests.app.admin.conftest import FAMILIES, REGISTRY

#: 0–3 service endpoints, 26 the permission enum; 7–10 and 23–25 are unknown routes (the framework's
#: 404). 4–6 and 11–22 need the rules, releases, scheduled-change and v2 families.
MINE = [0, 1, 2, 3, 7, 8, 9, 10, 23, 24, 25, 26]


def test_misc_service_endpoints_transcript_steps(replay):
    replay("misc-service-endpoints").run(MINE)


def test_lbheartbeat_and_heartbeat_headers(app):
    lb = app("GET", "/__lbheartbeat__")
    assert (lb.text, lb.headers["cache-control"]) == ("OK!", "no-cache")
    first, second = app("GET", "/__heartbeat__"), app("GET", "/__heartbeat__")
    assert (first.text, second.text) == ("1", "2")
    assert first.headers["cache-control"] == "public, max-age=60"
    head = app("HEAD", "/__heartbeat__")
    assert head.status_code == 200 and head.text == ""


def test_version_document_when_configured(replay):
    r = replay("misc-service-endpoints", version={"source": "s", "version": "1.2", "commit": "abc", "build": "b"})
    answer = r.client.simulate_get("/__version__")
    assert answer.json == {"source": "s", "version": "1.2", "commit": "abc", "build": "b"}
    assert answer.headers["content-type"] == "application/json"
    assert r.client.simulate_head("/__version__").text == ""


class BrokenStorage:
    """A storage whose database is gone."""

    def session(self, changed_by=None):
        raise OSError("connection refused")

    heartbeat = session


def test_heartbeat_without_database_is_502():
    ctx = AdminContext(BrokenStorage(), REGISTRY, StaticTokens({}))
    client = testing.TestClient(create_admin_app(ctx, FAMILIES))
    answer = client.simulate_get("/__heartbeat__")
    assert (answer.status_code, answer.text) == (502, "Can't connect to the database.")
    assert client.simulate_get("/__lbheartbeat__").status_code == 200


def test_heartbeat_counter_is_shared_by_every_admin_process_and_is_not_data(tmp_path):
    """Two admin apps on one database count together, from where a restarted one left off; the
    heartbeat never moves the change counter (public servers would rebuild) nor enters dumps."""
    url = f"sqlite:///{tmp_path}/admin.db"
    first, second = (REGISTRY.storage_for(url) for _ in range(2))
    clients = [testing.TestClient(create_admin_app(AdminContext(s, REGISTRY, StaticTokens({})), FAMILIES))
               for s in (first, second)]
    counter = first.change_counter()
    answers = [clients[i % 2].simulate_get("/__heartbeat__").text for i in range(4)]
    assert answers == ["1", "2", "3", "4"]
    assert first.change_counter() == counter
    assert "dockerflow" not in first.dump()["tables"]
    first.close()
    restarted = REGISTRY.storage_for(url)
    client = testing.TestClient(create_admin_app(AdminContext(restarted, REGISTRY, StaticTokens({})), FAMILIES))
    assert client.simulate_get("/__heartbeat__").text == "5"
    for storage in (second, restarted):
        storage.close()
