"""Releases, v1 API (admin-api.md §2): the six recorded release transcripts replayed in process
on memory:// and on a SQLite file, plus targeted tests (stale locale writes merged or refused,
the list computed without a query per release, malformed input never a 500, direct writes merged
into a pending scheduled change)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from falcon import testing

from balrog_app.admin import releases
from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from balrog_engine import load_plugins
from tests.admin_conformance import harness

REGISTRY = load_plugins()
TRANSCRIPTS_DIR = harness.SHARED_TRANSCRIPTS
TRANSCRIPTS = ("releases-v1-basic", "releases-v1-validation", "releases-v1-locales", "releases-v1-post-partial",
               "releases-v1-read-only", "releases-blob-types")

#: (transcript, step index) -> why the step is not replayed here (steps of other families).
SKIPPED: dict[tuple[str, int], str] = {}

pytestmark = pytest.mark.skipif(not TRANSCRIPTS_DIR.is_dir(), reason="shared transcripts not available")


def make_storage(backend: str, tmp_path: Path, name: str):
    if backend == "memory":
        return REGISTRY.storage_for("memory://")
    return REGISTRY.storage_for(f"sqlite:///{tmp_path}/{name}.db")


def make_client(storage, users, config, bootstrap):
    seed(storage, bootstrap.get("permissions", ()), bootstrap.get("roles", ()))
    tokens = harness.make_tokens(users)
    ctx = AdminContext(storage, REGISTRY, StaticTokens({token: user for user, token in tokens.items()}),
                       system_accounts=frozenset(config.get("system_accounts", ())),
                       allowlisted_domains=config.get("allowlisted_domains", {}))
    return ctx, testing.TestClient(create_admin_app(ctx, [releases.routes])), tokens


def send(client, method: str, target: str, headers=None, body: bytes | None = None):
    path, _, query = target.partition("?")
    return client.simulate_request(method, path, query_string=query or None, headers=headers or {}, body=body)


# --- transcript replay ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_transcript(name, backend, tmp_path):
    transcript = harness.load_transcript(TRANSCRIPTS_DIR / f"{name}.json")
    storage = make_storage(backend, tmp_path, name)
    try:
        _, client, tokens = make_client(storage, transcript.users, transcript.config, transcript.bootstrap)
        failures = []
        for step in transcript.steps:
            if (name, step.index) in SKIPPED:
                continue
            method, target, headers, body = harness.request_for(step, tokens)
            result = send(client, method, target, headers, body)
            problems = harness.compare(step, result.status_code, dict(result.headers), result.content)
            if problems:
                failures.append(f"step {step.index} {step.describe()}:\n    " + "\n    ".join(problems))
        assert not failures, f"{name}: {len(failures)}/{len(transcript.steps)} steps differ\n" + "\n".join(failures)
    finally:
        storage.close()


# --- targeted tests ------------------------------------------------------------------------------------
ADMIN = "admin@example.com"
CONFIG = {"allowlisted_domains": {"download.mozilla.org": ["Firefox"]}}
BOOTSTRAP = {"permissions": [{"username": ADMIN, "permission": "admin", "options": None}]}


def locale(size: int, lang: str) -> str:
    return json.dumps({"complete": {"filesize": size, "from": "*", "hashValue": f"{size:040x}",
                                    "fileUrl": f"http://download.mozilla.org/?product=firefox&lang={lang}"}})


@pytest.fixture(params=["memory", "sqlite"])
def admin(request, tmp_path):
    storage = make_storage(request.param, tmp_path, "targeted")
    ctx, client, tokens = make_client(storage, [ADMIN], CONFIG, BOOTSTRAP)
    auth = {"Authorization": f"Bearer {tokens[ADMIN]}"}

    def call(method, target, body=None, raw: bytes | None = None):
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = dict(auth, **({"Content-Type": "application/json"} if payload is not None else {}))
        return send(client, method, target, headers, payload)

    call.ctx = ctx
    yield call
    storage.close()


def put_locale(admin, lang: str, size: int, data_version: int | None):
    body = {"product": "Firefox", "schema_version": 1, "hashFunction": "sha512", "data": locale(size, lang)}
    if data_version is not None:
        body["data_version"] = data_version
    return admin("PUT", f"/releases/R/builds/WINNT_x86-msvc/{lang}", body)


def test_concurrent_locale_writes_from_one_version_both_succeed(admin):
    assert put_locale(admin, "en-US", 1, None).status_code == 201  # release created: version 2
    results = []
    barrier = threading.Barrier(2)

    def write(lang, size):
        barrier.wait()
        results.append(put_locale(admin, lang, size, 2))

    threads = [threading.Thread(target=write, args=args) for args in (("de", 2), ("fr", 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201, 201]
    assert sorted(r.json["new_data_version"] for r in results) == [3, 4]
    blob = admin("GET", "/releases/R").json
    assert set(blob["platforms"]["WINNT_x86-msvc"]["locales"]) == {"en-US", "de", "fr"}


def test_same_locale_from_one_version_conflicts(admin):
    assert put_locale(admin, "en-US", 1, None).status_code == 201
    first = put_locale(admin, "de", 2, 2)
    second = put_locale(admin, "de", 3, 2)
    assert first.status_code == 201
    assert second.status_code == 400
    assert second.json["detail"] == ("Couldn't update release: Failed to update row, old_data_version doesn't "
                                     "match current data_version")
    assert admin("GET", "/releases/R/builds/WINNT_x86-msvc/de").json["complete"]["filesize"] == 2


def test_stale_full_put_merges_disjoint_changes(admin):
    blob = {"name": "R", "schema_version": 1, "hashFunction": "sha512", "appv": "1", "extv": "1"}
    assert admin("PUT", "/releases/R", {"name": "R", "product": "Firefox", "blob": json.dumps(blob)}).status_code == 201
    assert put_locale(admin, "de", 2, 1).status_code == 201  # version 2
    changed = dict(blob, appv="2")
    merged = admin("PUT", "/releases/R", {"name": "R", "product": "Firefox", "blob": json.dumps(changed),
                                          "data_version": 1})
    assert (merged.status_code, merged.json) == (200, {"new_data_version": 3})
    stored = admin("GET", "/releases/R").json
    assert stored["appv"] == "2" and "de" in stored["platforms"]["WINNT_x86-msvc"]["locales"]
    newer = admin("PUT", "/releases/R", {"name": "R", "product": "Firefox", "blob": json.dumps(changed),
                                         "data_version": 9})
    assert newer.status_code == 400 and newer.json["detail"] == "OutdatedDataError"


def test_list_reports_rules_and_signoffs_in_one_pass(admin):
    assert put_locale(admin, "de", 2, None).status_code == 201
    assert put_locale(admin, "de", 2, None).status_code == 400  # exists: data_version needed
    storage = admin.ctx.storage
    with storage.session("setup") as s:
        s.insert("rules", {"priority": 1, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                           "channel": "release", "mapping": "R"})
        s.insert("rules", {"priority": 2, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                           "channel": "beta", "mapping": "Other", "fallbackMapping": "R"})
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                          "signoffs_required": 2})
    listed = admin("GET", "/releases").json["releases"]
    assert listed == [{"name": "R", "product": "Firefox", "data_version": 2, "read_only": False,
                       "rule_ids": [1, 2],
                       "rule_info": {"1": {"product": "Firefox", "channel": "release"},
                                     "2": {"product": "Firefox", "channel": "beta"}},
                       "required_signoffs": {"relman": 2}}]
    # a protected release: direct writes need signoffs, deletes are refused while mapped
    refused = put_locale(admin, "fr", 3, 2)
    assert (refused.status_code, refused.json["detail"]) == (400, "Signoff Required")
    mapped = admin("DELETE", "/releases/R?data_version=2")
    assert mapped.status_code == 400 and "has rules pointing to it" in mapped.json["exception"]
    # unlocking a protected read-only release needs signoffs
    assert admin("PUT", "/releases/R/read_only", {"read_only": True, "data_version": 2}).status_code == 201
    unlock = admin("PUT", "/releases/R/read_only", {"read_only": False, "data_version": 3})
    assert (unlock.status_code, unlock.json["detail"]) == (400, "Signoff Required")
    required = admin("GET", "/releases/R/read_only/product/required_signoffs").json
    assert required == {"required_signoffs": {"relman": 2}}


def test_list_does_not_query_per_release(admin, monkeypatch):
    for n in range(5):
        blob = {"name": f"R{n}", "schema_version": 1, "hashFunction": "sha512"}
        admin("PUT", f"/releases/R{n}", {"name": f"R{n}", "product": "Firefox", "blob": json.dumps(blob)})
    storage = admin.ctx.storage
    calls: dict[str, int] = {}
    for method in ("session", "rules", "release_summaries", "releases"):
        real = getattr(storage, method)

        def counting(*args, _real=real, _name=method, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(storage, method, counting)
    monkeypatch.setattr(releases.signoffs, "for_release", lambda *a: pytest.fail("a query per release"))
    assert len(admin("GET", "/releases").json["releases"]) == 5
    assert calls == {"session": 1, "rules": 1, "release_summaries": 1}  # blobs are never read


MALFORMED = [
    ("POST", "/releases", b"[]"),
    ("POST", "/releases", b'{"name": 1, "product": "Firefox", "blob": "{}"}'),
    ("POST", "/releases", b'{"name": "R", "product": "Firefox", "blob": "not json"}'),
    ("POST", "/releases", b'{"name": "R", "product": "Firefox", "blob": "[1, 2]"}'),
    ("POST", "/releases", b'{"name": "R", "product": "Firefox", "blob": "{\\"schema_version\\": true}"}'),
    ("POST", "/releases", b'{"name": "R", "product": "Firefox", "blob": "{\\"name\\": \\"R\\"}"}'),
    ("PUT", "/releases/R", b'{"name": "R", "product": null, "blob": "{}"}'),
    ("PUT", "/releases/R", b'{"name": "R", "product": "Firefox", "blob": "{\\"schema_version\\": \\"1\\"}"}'),
    ("POST", "/releases/R", b'{"product": "Firefox", "data": "[]", "schema_version": 1}'),
    ("POST", "/releases/R", b'{"product": "Firefox", "data": "{}", "schema_version": "x"}'),
    ("POST", "/releases/R", b'{"product": "Firefox", "data": "{}", "schema_version": 1, "copyTo": "{}"}'),
    ("POST", "/releases/R", b'{"product": "Firefox", "data": "{}", "schema_version": 1, "copyTo": 5}'),
    ("POST", "/releases/R", b'{"product": "Firefox", "data": "{}", "schema_version": 1, "hashFunction": 5}'),
    ("POST", "/releases/R", b'{"product": "Firefox", "data": "{\\"platforms\\": 7}", "schema_version": 1}'),
    ("PUT", "/releases/R/builds/p/l", b'{"product": "Firefox", "data": "7", "schema_version": 1}'),
    ("PUT", "/releases/R/builds/p/l", b'{"product": "Firefox", "data": "{}", "schema_version": 1, "alias": "[1]"}'),
    ("PUT", "/releases/R/read_only", b'{"read_only": [], "data_version": 1}'),
    ("PUT", "/releases/R/read_only", b'{"read_only": true, "data_version": "1"}'),
    ("DELETE", "/releases/R?data_version=x", None),
    ("DELETE", "/releases/R", None),
    ("GET", "/releases/R/builds/p/l", None),
    ("GET", "/releases/columns/data", None),
    ("GET", "/releases?bogus=1", None),
]


@pytest.mark.parametrize("method,target,raw", MALFORMED, ids=[f"{m} {t} {r!r}"[:60] for m, t, r in MALFORMED])
def test_malformed_input_is_a_4xx(admin, method, target, raw):
    result = admin(method, target, raw=raw)
    assert 400 <= result.status_code < 500, (result.status_code, result.text)


def test_partial_form_refusals_on_an_existing_release(admin):
    bad = {"name": "R", "schema_version": 1, "hashFunction": "sha512", "platforms": {"q": "not a platform"}}
    refused = admin("PUT", "/releases/R", {"name": "R", "product": "Firefox", "blob": json.dumps(bad)})
    assert (refused.status_code, refused.json["detail"]) == (400, "Couldn't update release")
    stub = {"name": "R", "schema_version": 1, "hashFunction": "sha512"}
    assert admin("PUT", "/releases/R", {"name": "R", "product": "Firefox", "blob": json.dumps(stub)}).status_code == 201
    written = admin("PUT", "/releases/R/builds/p/de", {"product": "Firefox", "data": locale(1, "de"),
                                                       "schema_version": 1, "data_version": 1,
                                                       "alias": json.dumps(["x"])})
    assert (written.status_code, written.json) == (201, {"new_data_version": 2})
    assert admin("GET", "/releases/R").json["platforms"]["x"] == {"alias": "p"}
    assert admin("GET", "/releases/R/builds/p/de").status_code == 200
    assert admin("GET", "/releases/R/builds/x/de").status_code == 404  # GET does not resolve aliases
    through_alias = admin("PUT", "/releases/R/builds/x/fr", {"product": "Firefox", "data": locale(2, "fr"),
                                                             "schema_version": 1, "data_version": 2})
    assert through_alias.status_code == 201
    assert admin("GET", "/releases/R/builds/p/fr").json["complete"]["filesize"] == 2
    unknown = admin("POST", "/releases/R", {"product": "Firefox", "data": json.dumps({"schema_version": 99}),
                                            "schema_version": 1, "data_version": 3})
    assert (unknown.status_code, unknown.json["detail"]) == (400, "Couldn't update release: schema_version is unknown")
    renamed = admin("POST", "/releases/R", {"product": "Firefox", "data": json.dumps({"name": "S"}),
                                            "schema_version": 1, "data_version": 3})
    assert renamed.status_code == 400
    assert renamed.json["exception"] == ["name in database (R) does not match name in blob (S)"]
    assert admin("GET", "/releases/R").headers["x-data-version"] == "3"


def test_direct_writes_follow_a_pending_scheduled_change(admin):
    """§4.5 for v1 releases: a direct update is merged into the release's pending scheduled change,
    unless that change changes the same column (then 400 UpdateMergeError, nothing written)."""
    client = testing.TestClient(create_admin_app(admin.ctx))  # every family: the scheduled changes too
    headers = {"Authorization": "Bearer " + harness.make_tokens([ADMIN])[ADMIN], "Content-Type": "application/json"}

    def call(method, target, body=None):
        return send(client, method, target, headers, None if body is None else json.dumps(body).encode())

    blob = {"name": "R", "schema_version": 1, "hashFunction": "sha512", "appv": "1", "extv": "1"}
    assert call("PUT", "/releases/R", {"name": "R", "product": "Firefox", "blob": json.dumps(blob)}).status_code == 201
    scheduled = call("POST", "/scheduled_changes/releases", {"change_type": "update", "name": "R", "data_version": 1,
                                                             "when": 4102444800000,
                                                             "data": json.dumps(dict(blob, appv="2"))})
    assert scheduled.json == {"sc_id": 1, "signoffs": {}}
    refused = put_locale(admin, "de", 2, 1)
    assert (refused.status_code, refused.json["detail"]) == (400, "UpdateMergeError")
    assert admin("GET", "/releases/R").headers["x-data-version"] == "1"
    # the read-only flag is not something the change changes: it follows the row
    assert admin("PUT", "/releases/R/read_only", {"read_only": True, "data_version": 1}).status_code == 201
    change = call("GET", "/scheduled_changes/releases/1").json["scheduled_change"]
    assert (change["read_only"], change["data_version"], change["sc_data_version"]) == (True, 2, 2)
    # a change that would alter a read-only release cannot be enacted
    refused = call("POST", "/scheduled_changes/releases/1/enact")
    assert (refused.status_code, refused.json["detail"]) == (400, "Read only")
    assert admin("PUT", "/releases/R/read_only", {"read_only": False, "data_version": 2}).status_code == 201
    assert call("POST", "/scheduled_changes/releases/1/enact").json == {}
    assert admin("GET", "/releases/R").json == dict(blob, appv="2")
    assert admin("GET", "/releases/R").headers["x-data-version"] == "4"
