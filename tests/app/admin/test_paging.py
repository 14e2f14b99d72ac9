"""Opt-in paging of the admin API's whole lists (app/admin/requests.py ``list_page``): ``?page=``
and ``?limit=`` answer a slice and its total in ``X-Total-Count``; ``count`` members keep meaning
the total; without either parameter the whole list, exactly as the reference answers it (the
recorded transcripts: tests/admin_conformance). Memory and SQLite."""
from __future__ import annotations

import json

import pytest
from falcon import testing

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.requests import MAX_PAGE
from balrog_app.admin.testing import seed
from balrog_engine import load_plugins

REGISTRY = load_plugins()
ADMIN = "admin@example.com"


def _v1_blob(name: str) -> str:
    return json.dumps({"name": name, "schema_version": 1, "hashFunction": "sha512", "appv": "60.0", "extv": "60.0",
                       "platforms": {"WINNT_x86-msvc": {"buildID": "20180501120000", "locales": {}}}})


def _v2_blob(name: str) -> dict:
    return {"name": name, "schema_version": 9, "hashFunction": "sha512", "appVersion": "80.0",
            "displayVersion": "80.0"}


@pytest.fixture(scope="module", params=["memory://", "sqlite:///{tmp}/admin.db"], ids=["memory", "sqlite"])
def get(request, tmp_path_factory):
    """A database with 7 v1 releases (one of Thunderbird), 5 v2 releases, 7 rules, 6 users, 5
    shutoffs, a few signoff requirements and 3 scheduled rule changes, made through the API; ``get(path, query)`` as the admin."""
    storage = REGISTRY.storage_for(request.param.format(tmp=tmp_path_factory.mktemp("paging")))
    seed(storage, permissions=[{"username": ADMIN, "permission": "admin", "options": None}],
         roles=[{"username": ADMIN, "role": "relman"}, {"username": ADMIN, "role": "qa"}])
    client = testing.TestClient(create_admin_app(AdminContext(storage, REGISTRY, StaticTokens({"t": ADMIN}))))
    auth = {"Authorization": "Bearer t"}
    calls = []
    for i in range(7):
        name = f"Firefox-6{i}.0-build1"
        calls.append(("PUT", f"/releases/{name}", {"name": name, "product": "Thunderbird" if i == 3 else "Firefox",
                                                   "blob": _v1_blob(name)}))
        calls.append(("POST", "/rules", {"priority": 100 - i, "backgroundRate": 100, "update_type": "minor",
                                         "product": "Firefox", "channel": f"channel{i}", "mapping": name}))
    for i in range(5):
        name = f"Firefox-8{i}.0-build1"
        calls.append(("PUT", f"/v2/releases/{name}", {"product": "Firefox", "blob": _v2_blob(name)}))
        calls.append(("PUT", f"/users/user{i}@example.com/permissions/rule", {}))
        calls.append(("POST", "/emergency_shutoff", {"product": "Firefox", "channel": f"channel{i}"}))
    for product in ("Firefox", "Thunderbird", "Fennec"):
        calls.append(("POST", "/required_signoffs/product", {"product": product, "channel": "release",
                                                             "role": "relman", "signoffs_required": 1}))
        calls.append(("POST", "/required_signoffs/permissions", {"product": product, "role": "qa",
                                                                 "signoffs_required": 1}))
    for i in range(3):
        calls.append(("POST", "/scheduled_changes/rules", {
            "change_type": "insert", "when": 4102444800000 + i, "priority": 10 + i, "backgroundRate": 100,
            "update_type": "minor", "product": "Firefox", "channel": f"later{i}", "mapping": "Firefox-60.0-build1"}))
    for method, path, body in calls:
        assert client.simulate_request(method, path, json=body, headers=auth).status_code in (200, 201), path

    def call(path, query=None):
        return client.simulate_get(path, query_string=query, headers=auth)

    yield call
    storage.close()


def entries(body):
    """The list an answer holds (``/users``: its users, in order)."""
    if isinstance(body, list):
        return body
    for key in ("rules", "releases", "names", "shutoffs", "required_signoffs", "scheduled_changes"):
        if key in body:
            return body[key]
    return list(body.items())


#: (path, query without paging, the total): every list endpoint whose reference answer is whole.
LISTS = [
    ("/rules", None, 7), ("/rules", "product=Firefox", 7),
    ("/releases", None, 7), ("/releases", "names_only", 7), ("/releases", "product=Firefox", 6),
    ("/v2/releases", None, 5), ("/v2/releases", "names_only", 5),
    ("/users", None, 6),
    ("/emergency_shutoff", None, 5),
    ("/required_signoffs/product", None, 3), ("/required_signoffs/permissions", "product=Fennec", 1),
    ("/required_signoffs/permissions", None, 3),
    ("/scheduled_changes/rules", None, 3), ("/scheduled_changes/rules", "all=1", 3),
]


def _query(base: str | None, paging: str) -> str:
    return f"{base}&{paging}" if base else paging


@pytest.mark.parametrize("path, base, total", LISTS, ids=[f"{p}?{q or ''}" for p, q, _ in LISTS])
def test_pages_are_slices_of_the_whole_list_with_its_total(get, path, base, total):
    whole = get(path, base)
    assert whole.status_code == 200 and "X-Total-Count" not in whole.headers
    assert len(entries(whole.json)) == total
    if isinstance(whole.json, dict) and "count" in whole.json:
        assert whole.json["count"] == total
    collected = []
    for page in range(1, total // 2 + 3):  # past the end too
        answer = get(path, _query(base, f"page={page}&limit=2"))
        assert answer.status_code == 200 and answer.headers["X-Total-Count"] == str(total)
        part = entries(answer.json)
        assert len(part) == max(0, min(2, total - 2 * (page - 1)))
        if isinstance(answer.json, dict) and "count" in answer.json:
            assert answer.json["count"] == total  # the total, not the page's length
        collected += part
    assert collected == entries(whole.json)


@pytest.mark.parametrize("path", ["/rules", "/releases", "/v2/releases", "/users", "/emergency_shutoff",
                                  "/required_signoffs/product"])
def test_either_parameter_alone_pages(get, path):
    whole = entries(get(path).json)
    limited = get(path, "limit=3")
    assert entries(limited.json) == whole[:3] and limited.headers["X-Total-Count"] == str(len(whole))
    first = get(path, "page=1")  # the default page size (100) holds these small lists whole
    assert entries(first.json) == whole and first.headers["X-Total-Count"] == str(len(whole))
    assert entries(get(path, "page=2").json) == []


def test_pages_keep_the_shape_of_the_answer(get):
    users = get("/users", "page=2&limit=4").json
    assert isinstance(users, dict) and len(users) == 2 and all("permissions" in u for u in users.values())
    assert get("/v2/releases", "names_only&limit=2").json == ["Firefox-80.0-build1", "Firefox-81.0-build1"]
    assert get("/releases", "names_only&page=4&limit=2").json == {"names": ["Firefox-66.0-build1"]}
    rules = get("/rules", "limit=1").json
    assert rules["count"] == 7 and [r["priority"] for r in rules["rules"]] == [94]


@pytest.mark.parametrize("query", ["page=0", "page=-1", "limit=0", f"limit={MAX_PAGE + 1}", "page=x", "limit=1.5",
                                   "limit=", f"page={2**31}"])
@pytest.mark.parametrize("path", ["/rules", "/releases", "/v2/releases", "/users", "/emergency_shutoff",
                                  "/required_signoffs/permissions"])
def test_out_of_range_pages_and_limits_are_400s(get, path, query):
    answer = get(path, query)
    assert (answer.status_code, answer.headers["content-type"]) == (400, "application/problem+json"), answer.text
    assert answer.json["status"] == 400


def test_the_largest_limit_is_taken(get):
    answer = get("/rules", f"limit={MAX_PAGE}")
    assert answer.status_code == 200 and len(answer.json["rules"]) == 7


def test_the_document_describes_the_paging(get):
    document = get("/openapi.json").json
    for path in ("/rules", "/releases", "/v2/releases", "/users", "/emergency_shutoff", "/required_signoffs/product",
                 "/required_signoffs/permissions"):
        operation = document["paths"][path]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["page"]["schema"]["minimum"] == 1 and not parameters["page"]["required"]
        assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
        assert "X-Total-Count" in operation["responses"]["200"]["headers"]
