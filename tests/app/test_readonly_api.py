"""The read-only /api/v1 views (public-api.md §6).

The recorded scenarios are replayed first (they are the truth); the other tests
cover what the recordings do not: HEAD/OPTIONS/405, rule revisions and paging,
parameter validation details and the routing corner cases.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import falcon.testing
import pytest

from balrog_app.public import create_app
from balrog_app.readonly_api import like_prefix, rule_id_from_text
from balrog_engine import Engine

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
BACKENDS = ("memory://", "sqlite://")


@lru_cache(maxsize=None)
def load_scenario(name: str) -> dict:
    return json.loads((CONFORMANCE / f"{name}.json").read_text())


def make_client(scenario: dict, url: str = "memory://") -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(Engine.from_dataset(scenario, url=url)).wsgi)


@pytest.fixture
def engine() -> Engine:
    """The rules-and-releases data plus the other scenario's pins and shutoffs, on memory
    storage, fresh per test (some tests replace storage methods; the views read storage on
    every request)."""
    extra = load_scenario("api-v1-shutoffs-and-pins")
    dataset = {**load_scenario("api-v1-rules-and-releases"), "pins": extra["pins"],
               "emergency_shutoffs": extra["emergency_shutoffs"]}
    return Engine.from_dataset(dataset)


@pytest.fixture
def client(engine) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(engine).wsgi)


NOT_FOUND_TEXT = ("The requested URL was not found on the server. If you entered the URL manually please check "
                  "your spelling and try again.")
API_SCENARIOS = ("api-v1-rules-and-releases", "api-v1-shutoffs-and-pins")
# Needs storage to list releases in load order (the reference lists them in table order).


def _cases():
    for name in API_SCENARIOS:
        for index, request in enumerate(load_scenario(name)["requests"]):
            for url in BACKENDS:
                yield pytest.param(name, index, url, id=f"{url.split(':')[0]}-{name}-{index}")


@pytest.fixture(scope="module")
def clients():
    built = {}

    def get(name, url):
        if (name, url) not in built:
            built[name, url] = make_client(load_scenario(name), url)
        return built[name, url]

    return get


@pytest.mark.parametrize("name,index,url", list(_cases()))
def test_recorded_request(clients, name, index, url):
    expected = load_scenario(name)["requests"][index]
    path, _, query = expected["path"].partition("?")
    got = clients(name, url).simulate_get(path, query_string=query, headers=expected.get("headers"))
    assert got.status_code == expected["status"]
    assert got.headers.get("Content-Type") == expected["content_type"]
    assert got.text == expected["body"]
    assert got.headers.get("X-Data-Version") == expected["response_headers"].get("X-Data-Version")
    for header in ("Cache-Control", "Content-Security-Policy", "Strict-Transport-Security"):
        assert got.headers.get(header) == expected["response_headers"][header]


# --- methods ---------------------------------------------------------------------------------

API_PATHS = ("/api/v1/rules", "/api/v1/rules/1", "/api/v1/rules/1/revisions", "/api/v1/releases",
             "/api/v1/releases/Firefox-70.0-build1", "/api/v1/releases/Firefox-70.0-build1/builds/WINNT_x86_64-msvc/de",
             "/api/v1/emergency_shutoff", "/api/v1/emergency_shutoff/Firefox/beta", "/api/v1/pins/Firefox/release/69.")


@pytest.mark.parametrize("path", API_PATHS)
def test_head_is_get_without_body(client, path):
    get, head = client.simulate_get(path), client.simulate_head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    for name in ("Content-Type", "X-Data-Version", "Cache-Control"):
        assert head.headers.get(name) == get.headers.get(name)


@pytest.mark.parametrize("path", API_PATHS)
def test_options(client, path):
    got = client.simulate_options(path)
    assert got.status_code == 200
    assert got.headers["Allow"] == "OPTIONS, HEAD, GET"
    assert got.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_problems(client, method):
    got = client.simulate_request(method, "/api/v1/rules/1")
    assert got.status_code == 405
    assert got.headers["Allow"] == "OPTIONS, HEAD, GET"
    assert got.headers["Content-Type"] == "application/problem+json"
    assert got.json["title"] == "Method Not Allowed"


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/api/v1/rules/", "/api/v1/rules/x/revisions", "/api/v1/pins/a//c"])
def test_methods_on_unrouted_paths_are_the_plain_404(client, method, path):
    got = client.simulate_request(method, path)
    assert (got.status_code, got.text) == (404, NOT_FOUND_TEXT)


# --- routing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/v1/rules/", "/api/v1/releases/", "/api/v1/releases//builds/a/b", "/api/v1/releases/x/builds/a/",
    "/api/v1/pins/Firefox//69.", "/api/v1/emergency_shutoff/Firefox/", "/api/v1/rules/1/revisions/",
    "/api/v1/rules/-1/revisions", "/api/v1/rules/1.0/revisions", "/api/v1/scheduled_changes/rules",
    "/api/v1/rules/1/extra",
])
def test_unrouted_paths_are_the_plain_404(client, path):
    got = client.simulate_get(path)
    assert got.status_code == 404
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.text == NOT_FOUND_TEXT


# --- rules -------------------------------------------------------------------------------------

def test_rule_ids_are_compared_like_the_reference_database(client):
    for text in ("01", "1.0", "+1", " 1"):
        got = client.simulate_get(f"/api/v1/rules/{text}")
        assert got.status_code == 200 and got.json["rule_id"] == 1, text


@pytest.mark.parametrize("text,expected", [
    ("1", 1), ("007", 7), ("1.", 1), (".1e1", 1), ("+01.00e+0", 1), ("1.5", None), ("0x1", None), ("1_2", None),
    ("\u0661", None), ("", None),
])
def test_rule_id_from_text(text, expected):
    assert rule_id_from_text(text) == expected


def test_alias_looking_values_are_never_ids(client):
    assert client.simulate_get("/api/v1/rules/e1").status_code == 404


def test_rule_list_with_empty_product_is_unfiltered(client):
    assert client.simulate_get("/api/v1/rules", query_string="product=").json["count"] == 5


# --- rule revisions ------------------------------------------------------------------------------

def _history_row(rule_id: int, change_id: int, timestamp: int, data_version: int | None, **values) -> dict:
    row = {"rule_id": rule_id, "alias": None, "priority": 100, "mapping": "Firefox-70.0-build1",
           "fallbackMapping": None, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
           "version": None, "channel": "release", "buildTarget": None, "buildID": None, "locale": None,
           "osVersion": None, "memory": None, "instructionSet": None, "jaws": None, "mig64": None,
           "distribution": None, "distVersion": None, "headerArchitecture": None, "comment": None,
           "data_version": data_version, "change_id": change_id, "changed_by": "alice", "timestamp": timestamp}
    row.update(values)
    return row


@pytest.fixture
def revisions(engine, client, monkeypatch):
    """Rule 1 with four revisions (data_version 1…4) and a creation placeholder, handed out
    oldest first so the view's own ordering is tested."""
    rows = [_history_row(1, 1, 1000, None)]
    rows += [_history_row(1, 1 + v, 1000 + v, v, backgroundRate=25 * v, mig64=bool(v % 2)) for v in range(1, 5)]
    monkeypatch.setattr(engine.storage, "rule_history",
                        lambda rule_id: [dict(row) for row in rows if row["rule_id"] == rule_id])
    return client


def test_revisions_newest_first_without_placeholders(revisions):
    got = revisions.simulate_get("/api/v1/rules/1/revisions")
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/json"
    assert got.text.endswith("}\n") and ": " not in got.text  # compact style
    body = got.json
    assert body["count"] == 4
    assert [r["data_version"] for r in body["rules"]] == [4, 3, 2, 1]
    newest = body["rules"][0]
    assert newest["change_id"] == 5 and newest["changed_by"] == "alice" and newest["timestamp"] == 1004
    assert newest["mig64"] is False and newest["backgroundRate"] == 100
    assert list(newest) == sorted(newest)


@pytest.mark.parametrize("query,versions", [
    ("limit=3", [4, 3, 2]), ("page=2&limit=3", [1]), ("page=3&limit=3", []), ("page=2", []),
    ("page=null", None),
])
def test_revisions_paging(revisions, query, versions):
    got = revisions.simulate_get("/api/v1/rules/1/revisions", query_string=query)
    if versions is None:  # "null" passes validation, then the view's int() refuses it
        assert got.status_code == 400
        assert got.json["detail"] == "invalid literal for int() with base 10: 'null'"
        return
    assert got.status_code == 200
    assert got.json["count"] == 4
    assert [r["data_version"] for r in got.json["rules"]] == versions


@pytest.mark.parametrize("query,detail_start", [
    ("page=0", "0 is less than the minimum of 1\n\nFailed validating 'minimum' in schema:\n    {'name': 'page',"),
    ("limit=0", "0 is less than the minimum of 1\n\nFailed validating 'minimum' in schema:\n    {'name': 'limit',"),
    ("page=abc", "Wrong type, expected 'integer' for query parameter 'page'"),
    ("page=1.5", "Wrong type, expected 'integer' for query parameter 'page'"),
    ("page=1&bogus=2", "Extra query parameter(s) bogus not in spec"),
])
def test_revisions_bad_paging(revisions, query, detail_start):
    got = revisions.simulate_get("/api/v1/rules/1/revisions", query_string=query)
    assert got.status_code == 400
    assert got.headers["Content-Type"] == "application/problem+json"
    assert got.json["detail"].startswith(detail_start)


def test_revisions_of_missing_rule_is_html_404_even_with_history(revisions):
    got = revisions.simulate_get("/api/v1/rules/999/revisions")
    assert (got.status_code, got.headers["Content-Type"], got.text) == (
        404, "text/html; charset=utf-8", "Requested rule does not exist")


def test_revisions_from_loaded_storage(client):
    """Whatever the backend recorded at load time is served as one revision per rule."""
    got = client.simulate_get("/api/v1/rules/2/revisions")
    assert got.status_code == 200
    assert got.json["count"] == 1
    (row,) = got.json["rules"]
    assert row["rule_id"] == 2 and row["jaws"] is False and row["mig64"] is True
    assert {"change_id", "changed_by", "timestamp"} <= set(row)


# --- releases ----------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix,names", [
    ("firefox-7", ["Firefox-70.0-build1"]),       # SQLite LIKE: ASCII case-insensitive
    ("F_refox-69", ["Firefox-69.0-build1"]),      # "_" is a single-character wildcard
    ("%superblob", ["GMP-superblob"]),             # "%" is any run
    ("Nope", []),
])
def test_name_prefix_is_a_like_pattern(client, prefix, names):
    got = client.simulate_get("/api/v1/releases", query_string=f"names_only=1&name_prefix={prefix.replace('%', '%25')}")
    assert got.json == {"names": names}


def test_like_prefix_anchors_at_start_only():
    matches = like_prefix("Fire")
    assert matches("Firefox") and matches("FIRE") and not matches("xFire")


def test_names_only_empty_value_lists_full_records(client):
    got = client.simulate_get("/api/v1/releases", query_string="names_only=&product=GMP")
    assert got.json["releases"][0]["name"] == "GMP-superblob"


def test_release_list_never_loads_blobs(engine, client, monkeypatch):
    def refuse(names):
        raise AssertionError("blob loaded")

    monkeypatch.setattr(engine.storage, "releases", refuse)
    assert client.simulate_get("/api/v1/releases").status_code == 200


def test_non_ascii_release_name_is_a_format_problem(client):
    got = client.simulate_get("/api/v1/releases/%C3%A9")
    assert got.status_code == 400
    assert got.headers["Content-Type"] == "application/problem+json"
    assert got.json["title"] == "Bad Request"
    assert got.json["detail"].startswith("'é' is not a 'ascii'\n\nFailed validating 'format' in schema:\n")
    assert "\\u00e9" in got.text  # ASCII-only JSON, like the reference


def test_release_name_of_100_characters_is_looked_up(client):
    got = client.simulate_get("/api/v1/releases/" + "X" * 100)
    assert got.status_code == 404
    assert got.json["detail"] == f"Release name: {'X' * 100} not found"


def test_pretty_needs_a_value(client):
    got = client.simulate_get("/api/v1/releases/GMP-superblob", query_string="pretty=")
    assert got.text == '{"name": "GMP-superblob", "products": ["OpenH264"], "schema_version": 4000}'


@pytest.mark.parametrize("path", [
    "/api/v1/releases/Firefox-70.0-build1/builds/Nope/de",
    "/api/v1/releases/OpenH264-1.8/builds/WINNT_x86_64-msvc/en-US",   # GMP blobs have no "platforms"
    "/api/v1/releases/Thunderbird-70.0-build1/builds/WINNT_x86-msvc/buildID",
])
def test_missing_locale_sections(client, path):
    got = client.simulate_get(path)
    assert got.status_code == 404
    release, _, rest = path.removeprefix("/api/v1/releases/").partition("/builds/")
    platform, _, locale = rest.partition("/")
    expected = json.dumps([f"Couldn't find locale identified by: {release}, {platform}, {locale}"])
    assert got.json == {"detail": expected, "status": 404, "title": "Not Found", "type": "about:blank"}


def test_unknown_query_parameters_everywhere(client):
    for path in API_PATHS:
        got = client.simulate_get(path, query_string="b=1&a=2")
        assert got.status_code == 400, path
        assert got.json == {"detail": "Extra query parameter(s) a, b not in spec", "status": 400, "title": None,
                            "type": "about:blank"}
        assert got.text.endswith("\n")
