"""Every request body goes through its wire schema (app/admin/schemas.py ``load``) after the
family's own checks: what those checks let through — wrong nested types, strings longer than
their columns, JSON text of the wrong shape — is a 400 ``application/problem+json`` naming the
member, and nothing is written (the storage dump is the same before and after), on memory and
SQLite. (The bodies the recorded reference refuses keep their recorded texts:
tests/admin_conformance.)"""
from __future__ import annotations

import json

import pytest
from falcon import testing

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from balrog_engine import load_plugins

REGISTRY = load_plugins()
ADMIN = "admin@example.com"
V1 = "Firefox-60.0-build1"
V2 = "Firefox-80.0-build1"
LONG = "x" * 101  # longer than any name, product or channel column


def _v1_blob(name: str) -> str:
    return json.dumps({"name": name, "schema_version": 1, "hashFunction": "sha512", "appv": "60.0", "extv": "60.0",
                       "platforms": {"WINNT_x86-msvc": {"buildID": "20180501120000", "locales": {}}}})


V2_BLOB = {"name": V2, "schema_version": 9, "hashFunction": "sha512", "appVersion": "80.0", "displayVersion": "80.0"}


@pytest.fixture(params=["memory://", "sqlite:///{tmp}/admin.db"], ids=["memory", "sqlite"])
def api(request, tmp_path):
    """The whole admin app over a database with a v1 and a v2 release, a rule, a shutoff and a
    signoff requirement, made through the API; ``api(method, path, body)`` as the admin."""
    storage = REGISTRY.storage_for(request.param.format(tmp=tmp_path))
    seed(storage, permissions=[{"username": ADMIN, "permission": "admin", "options": None}],
         roles=[{"username": ADMIN, "role": "relman"}])
    client = testing.TestClient(create_admin_app(AdminContext(storage, REGISTRY, StaticTokens({"t": ADMIN}))))

    def call(method, path, body=None):
        # json.dumps escapes what falcon's ``json=`` cannot encode (unpaired surrogates)
        return client.simulate_request(method, path, body=None if body is None else json.dumps(body),
                                       headers={"Authorization": "Bearer t", "Content-Type": "application/json"})

    for method, path, body in [
            ("PUT", f"/releases/{V1}", {"name": V1, "product": "Firefox", "blob": _v1_blob(V1)}),
            ("PUT", f"/v2/releases/{V2}", {"product": "Firefox", "blob": V2_BLOB}),
            ("POST", "/rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                                "channel": "release", "mapping": V1}),
            ("POST", "/emergency_shutoff", {"product": "Firefox", "channel": "nightly"}),
            ("POST", "/required_signoffs/product", {"product": "Firefox", "channel": "beta", "role": "relman",
                                                    "signoffs_required": 1})]:
        assert call(method, path, body).status_code in (200, 201), (method, path)
    call.storage = storage
    yield call
    storage.close()


RULE = {"priority": 90, "backgroundRate": 100, "update_type": "minor", "product": "Firefox", "channel": "beta",
        "mapping": V1}
FORM = {"product": "Firefox", "data": json.dumps({"appv": "60.0.1"}), "schema_version": 1, "data_version": 1}
LOCALE = {"product": "Firefox", "schema_version": 1, "data_version": 1,
          "data": json.dumps({"complete": {"filesize": 1, "from": "*", "hashValue": "00" * 20,
                                           "fileUrl": "http://download.mozilla.org/?product=x&os=win&lang=de"}})}

#: (method, path, body, the member the 400 names): bodies the families' own checks let through.
CASES = [
    # rules: numbers beyond their columns
    ("POST", "/rules", {**RULE, "priority": 2**40}, "priority"),
    ("POST", "/rules/1", {"data_version": 1, "priority": 2**40}, "priority"),
    ("PUT", "/rules/1", {"data_version": 2**40, "comment": "x"}, "data_version"),
    # releases, v1: JSON text of the wrong shape, too-long strings, wrong types of optional members
    ("POST", "/releases", {"name": "Firefox-61.0-build1", "product": "Firefox", "blob": "[1, 2]"}, "blob"),
    ("POST", "/releases", {"name": LONG, "product": "Firefox", "blob": _v1_blob(LONG)}, "name"),
    ("POST", "/releases", {"name": "Firefox-61.0-build1", "product": "Firefox",
                           "blob": _v1_blob("Firefox-61.0-build1"), "data_version": "one"}, "data_version"),
    ("PUT", f"/releases/{V1}", {"name": V1, "product": LONG, "blob": _v1_blob(V1), "data_version": 1}, "product"),
    ("PUT", "/releases/Firefox-61.0-build1", {"name": "Firefox-61.0-build1", "product": "Firefox",
                                              "blob": "\"a string\""}, "blob"),
    ("POST", f"/releases/{V1}", {**FORM, "name": 5}, "name"),
    ("POST", f"/releases/{V1}", {**FORM, "alias": "not json"}, "alias"),
    ("POST", f"/releases/{V1}", {**FORM, "product": LONG}, "product"),
    ("PUT", f"/releases/{V1}/builds/WINNT_x86-msvc/de", {**LOCALE, "name": ["x"]}, "name"),
    ("PUT", f"/releases/{V1}/builds/WINNT_x86-msvc/de", {**LOCALE, "copyTo": "{\"a\": 1}"}, "copyTo"),
    # releases, v2: wrong nested types the views used to write or crash on
    ("PUT", f"/v2/releases/{V2}", {"product": 5, "blob": V2_BLOB, "old_data_versions": {".": 1}}, "product"),
    ("PUT", "/v2/releases/Firefox-81.0-build1",
     {"product": "Firefox", "blob": {**V2_BLOB, "name": "Firefox-81.0-build1"}, "old_data_versions": [1]},
     "old_data_versions"),
    ("PUT", "/v2/releases/Firefox-81.0-build1", {"product": LONG, "blob": {**V2_BLOB, "name": "Firefox-81.0-build1"}},
     "product"),
    ("POST", f"/v2/releases/{V2}", {"blob": {"displayVersion": "81"}, "old_data_versions": 5}, "old_data_versions"),
    ("PUT", f"/v2/releases/{V2}/read_only", {"read_only": True, "old_data_version": "1"}, "old_data_version"),
    ("PUT", f"/v2/releases/{V2}/pinnable", {"product": "Firefox", "channel": ["release"], "version": "80."},
     "channel"),
    ("PUT", f"/v2/releases/{V2}/pinnable", {"product": 5, "channel": "release", "version": "80."}, "product"),
    ("PUT", f"/v2/releases/{V2}/pinnable", {"product": "Firefox", "channel": "release", "version": "8" * 76},
     "version"),
    ("PUT", f"/v2/releases/{V2}/signoff", {"role": "r" * 51}, "role"),
    # emergency shutoffs and required signoffs: strings longer than their columns, numbers beyond
    ("POST", "/emergency_shutoff", {"product": LONG, "channel": "beta"}, "product"),
    ("POST", "/emergency_shutoff", {"product": "Firefox", "channel": "c" * 76}, "channel"),
    ("POST", "/emergency_shutoff", {"product": "Firefox", "channel": "beta", "comment": "c" * 501}, "comment"),
    ("POST", "/required_signoffs/product", {"product": "Firefox", "channel": "release", "role": "r" * 51,
                                            "signoffs_required": 1}, "role"),
    ("POST", "/required_signoffs/product", {"product": "Firefox", "channel": "release", "role": "relman",
                                            "signoffs_required": 2**40}, "signoffs_required"),
    ("POST", "/required_signoffs/permissions", {"product": LONG, "role": "relman", "signoffs_required": 1},
     "product"),
    # an unpaired surrogate (valid JSON, not storable text)
    ("PUT", f"/v2/releases/{V2}/pinnable", {"product": "Firefox\ud800", "channel": "release", "version": "80."},
     "product"),
]


@pytest.mark.parametrize("method, path, body, member", CASES,
                         ids=[f"{m} {p} {n}" for m, p, _, n in CASES])
def test_what_the_hand_checks_miss_is_a_400_naming_the_member_and_writes_nothing(api, method, path, body, member):
    before = api.storage.dump()
    answer = api(method, path, body)
    assert (answer.status_code, answer.headers["content-type"]) == (400, "application/problem+json"), answer.text
    detail = answer.json["detail"]
    assert detail.split(":")[0] == member, detail
    assert api.storage.dump() == before


@pytest.mark.parametrize("method, path, body, detail", [
    # The family's own check comes first and keeps the reference's text (recorded transcripts).
    ("POST", "/rules", {**RULE, "mapping": ""}, "mapping value cannot be set to null/empty"),
    ("POST", "/rules/1", {"data_version": 1, "mapping": None}, "mapping value cannot be set to null/empty"),
    ("POST", "/emergency_shutoff", {"product": "Firefox", "channel": 5}, "channel: 5 is not of type 'string'"),
    ("POST", f"/releases/{V1}", {**FORM, "data": {"a": 1}}, "data: {'a': 1} is not of type 'string'"),
    ("PUT", f"/users/{ADMIN}/permissions/release", {"options": {"products": ["Firefox"]}},
     "options: {'products': ['Firefox']} is not of type 'string', 'null'"),
])
def test_the_families_own_texts_come_first(api, method, path, body, detail):
    before = api.storage.dump()
    answer = api(method, path, body)
    assert answer.status_code == 400 and answer.json["detail"] == detail
    assert api.storage.dump() == before


@pytest.mark.parametrize("method, path, body", [
    # What the reference takes, the schemas take too: blank JSON-text members mean none, the v1
    # read-only flag is a boolean or a string, permission options may be empty documents.
    ("POST", f"/releases/{V1}", {**FORM, "copyTo": "", "alias": ""}),
    ("PUT", f"/releases/{V1}/read_only", {"read_only": "", "data_version": 1}),
    ("PUT", "/users/bob@example.com/permissions/rule", {"options": "[]"}),
    ("PUT", "/users/carol@example.com/permissions/rule", {"options": ""}),
    ("PUT", "/users/dave@example.com/permissions/rule", {"options": "null"}),
])
def test_what_the_reference_accepts_the_schemas_accept(api, method, path, body):
    answer = api(method, path, body)
    assert answer.status_code in (200, 201), answer.text


def test_a_refused_body_written_nowhere_even_after_earlier_work_in_the_same_request(api):
    """The v1 form with ``copyTo`` creates releases before it writes the named one: a body the
    schema refuses is refused before any of it."""
    before = api.storage.dump()
    answer = api("POST", f"/releases/{V1}", {**FORM, "copyTo": json.dumps(["Firefox-62.0-build1"]),
                                             "hashFunction": "sha512", "name": {"not": "a string"}})
    assert answer.status_code == 400 and answer.json["detail"].startswith("name:")
    assert api.storage.dump() == before
    assert api("GET", "/releases/Firefox-62.0-build1").status_code == 404
