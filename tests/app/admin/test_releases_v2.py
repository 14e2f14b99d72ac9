"""Releases v2 (balrog_app.admin.releases_v2): the recorded transcripts replayed in process with
every admin family mounted (the default of ``create_admin_app``), on memory:// and a SQLite file;
then what they do not reach: scheduling (``when``), the automatic scheduling of a protected
unlock, signoff/enact of a release's pending changes, the cancellation rules and scheduled pins.
(The signoff lifecycle itself is in test_sc_lifecycle.py.)"""
from __future__ import annotations

import copy
import time

import pytest



@pytest.mark.parametrize("name", ["releases-v2-basic", "pins-v2"])
def test_transcript(full, name):
    r = full(name)
    assert len(r.run()) == len(r.transcript.steps)


# --- beyond the transcripts ------------------------------------------------------------------------------
NAME = "Firefox-80.0-build1"


def _call(r, method, path, user=None, json=None):
    token = r.tokens.get(user) if user else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return r.client.simulate_request(method, path, headers=headers, json=json)


def _created(full):
    """releases-v2-basic up to the creation of NAME (step 2)."""
    r = full("releases-v2-basic")
    r.run(range(3))
    return r


def test_put_replaces_and_reports_only_changed_parts(full):
    r = _created(full)
    blob = _call(r, "GET", f"/v2/releases/{NAME}").json["blob"]
    del blob["platforms"]["Linux_x86_64-gcc3"]["locales"]["de"]
    blob["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"]["buildID"] = "20200101000000"
    result = _call(r, "PUT", f"/v2/releases/{NAME}", "alice@example.com", {
        "blob": blob, "old_data_versions": {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}}})
    assert result.status_code == 200
    assert result.json == {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 2}}}}
    versions = _call(r, "GET", f"/v2/releases/{NAME}/data_versions").json["data_versions"]
    assert versions == {".": 1, "platforms": {"Linux_x86_64-gcc3": {"locales": {"en-US": 1}},
                                              "WINNT_x86_64-msvc": {"locales": {"de": 2, "en-US": 1}}}}
    # the v1 reads see the v2 release, locale included
    locale = _call(r, "GET", f"/releases/{NAME}/builds/WINNT_x86_64-msvc/de")
    assert locale.status_code == 200 and locale.json["buildID"] == "20200101000000"
    assert _call(r, "GET", f"/releases/{NAME}/builds/Linux_x86_64-gcc3/de").status_code == 404


def test_signoff_required_when_a_mapped_rule_requires_it(full):
    r = _created(full)
    with r.storage.session("admin@example.com") as s:
        s.insert("rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                           "channel": "release", "mapping": NAME})
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                          "signoffs_required": 1})
    result = _call(r, "POST", f"/v2/releases/{NAME}", "alice@example.com",
                   {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}})
    assert result.status_code == 400 and result.json["detail"] == "Signoff Required"
    listed = _call(r, "GET", "/v2/releases").json["releases"][0]
    assert listed["rule_info"] == {"1": {"product": "Firefox", "channel": "release"}}
    assert listed["required_signoffs"] == {"relman": 1} and listed["product_required_signoffs"] == {"relman": 1}
    result = _call(r, "DELETE", f"/v2/releases/{NAME}", "alice@example.com")
    assert result.status_code == 400 and result.json["detail"] == "Unknown error"


# --- scheduling (admin-api.md §3.3, scheduled-changes-and-agent.md §6) -----------------------------------
ALICE, ADMIN = "alice@example.com", "admin@example.com"
WHEN = 4102444800000
WINNT_DE = ".platforms.WINNT_x86_64-msvc.locales.de"


def _sc(sc_id, change_type, data_version=1, signoffs=None, when=WHEN):
    return {"sc_id": sc_id, "change_type": change_type, "data_version": data_version, "signoffs": signoffs or {},
            "when": when}


def _listed(r, name=NAME):
    return next(item for item in _call(r, "GET", "/v2/releases").json["releases"] if item["name"] == name)


def _protect(r, roles=("relman",), rule=True):
    """A rule mapping NAME on Firefox/release, which needs one relman signoff; admin holds relman."""
    with r.storage.session(ADMIN) as s:
        if rule:
            s.insert("rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                               "channel": "release", "mapping": NAME})
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                          "signoffs_required": 1})
        for role in roles:
            s.insert("user_roles", {"username": ADMIN, "role": role})


def test_when_is_validated(full):
    r = _created(full)
    post = {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}}
    result = _call(r, "POST", f"/v2/releases/{NAME}", ALICE, {**post, "when": 1000000000000})
    assert (result.status_code, result.json["exception"]) == (400, "Cannot schedule changes in the past")
    result = _call(r, "POST", f"/v2/releases/{NAME}", ALICE, {**post, "when": "soon"})
    assert result.status_code == 400 and result.headers["Content-Type"] == "application/problem+json"
    result = _call(r, "POST", f"/v2/releases/{NAME}", ALICE, {**post, "when": None})
    assert result.status_code == 200 and result.json == {".": 2}  # null: written now


def test_scheduling_a_new_release(full):
    r = full("releases-v2-basic")
    blob = copy.deepcopy(r.transcript.steps[2].json["blob"])
    result = _call(r, "PUT", f"/v2/releases/{NAME}", ALICE, {"blob": blob, "product": "Firefox", "when": WHEN})
    assert result.status_code == 200
    assert result.json == {".": _sc(1, "insert"), "platforms": {
        "WINNT_x86_64-msvc": {"locales": {"en-US": _sc(1, "insert"), "de": _sc(2, "insert")}},
        "Linux_x86_64-gcc3": {"locales": {"en-US": _sc(3, "insert"), "de": _sc(4, "insert")}}}}
    # not there yet, but listed with its pending changes (and what it will be)
    assert _call(r, "GET", f"/v2/releases/{NAME}/data_versions").status_code == 404
    listed = _listed(r)
    assert {k: listed[k] for k in ("product", "data_version", "read_only", "rule_info")} == \
        {"product": None, "data_version": None, "read_only": None, "rule_info": {}}
    assert "required_signoffs" not in listed and len(listed["scheduled_changes"]) == 5
    assert _call(r, "GET", "/v2/releases?names_only=1").json == [NAME]
    shown = _call(r, "GET", f"/v2/releases/{NAME}").json
    assert (shown["blob"], shown["data_versions"]) == ({}, {}) and shown["sc_blob"] == blob
    # alice may create releases but not enact: the admin enacts, the release is alice's
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ALICE).status_code == 403
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ADMIN).status_code == 200
    shown = _call(r, "GET", f"/v2/releases/{NAME}").json
    assert shown["blob"] == blob and shown["sc_blob"] == {}
    assert _listed(r)["scheduled_changes"] == [] and _listed(r)["data_version"] == 1
    with r.storage.session() as s:
        assert s.history("releases_json", {"name": NAME})[0]["changed_by"] == ALICE


def test_scheduled_full_replacement_and_cancellation(full):
    r = _created(full)
    blob = _call(r, "GET", f"/v2/releases/{NAME}").json["blob"]
    changed = copy.deepcopy(blob)
    changed["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"]["buildID"] = "20200101000000"
    del changed["platforms"]["Linux_x86_64-gcc3"]["locales"]["de"]
    changed["platforms"]["Linux_x86_64-gcc3"]["locales"]["fr"] = blob["platforms"]["Linux_x86_64-gcc3"]["locales"]["de"]
    versions = {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}}
    result = _call(r, "PUT", f"/v2/releases/{NAME}", ALICE,
                   {"blob": changed, "old_data_versions": versions, "when": WHEN})
    assert result.json == {"platforms": {
        "WINNT_x86_64-msvc": {"locales": {"de": _sc(1, "update")}},
        "Linux_x86_64-gcc3": {"locales": {"fr": _sc(2, "insert"), "de": _sc(3, "delete")}}}}
    assert _call(r, "GET", f"/v2/releases/{NAME}").json["blob"] == blob  # nothing written yet
    sc_blob = _call(r, "GET", f"/v2/releases/{NAME}").json["sc_blob"]
    assert sc_blob == changed
    # a stale version is refused, a missing one too
    stale = {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 7}}}}
    assert _call(r, "PUT", f"/v2/releases/{NAME}", ALICE,
                 {"blob": changed, "old_data_versions": stale, "when": WHEN}).json["detail"] == "OutdatedDataError"
    # a full replacement that leaves a part as it is cancels that part's pending change
    partly = copy.deepcopy(changed)
    partly["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"] = blob["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"]
    result = _call(r, "PUT", f"/v2/releases/{NAME}", ALICE,
                   {"blob": partly, "old_data_versions": {}, "when": WHEN})
    assert result.status_code == 200
    assert result.json == {"platforms": {"Linux_x86_64-gcc3": {"locales": {
        "fr": _sc(2, "insert", data_version=2), "de": _sc(3, "delete", data_version=2)}}}}
    paths = [c.get("path") for c in _listed(r)["scheduled_changes"]]
    assert sorted(paths) == [".platforms.Linux_x86_64-gcc3.locales.de", ".platforms.Linux_x86_64-gcc3.locales.fr"]
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ADMIN).json is None
    assert _call(r, "GET", f"/v2/releases/{NAME}").json["blob"] == partly


def test_deleting_a_release_cancels_its_pending_changes(full):
    r = _created(full)
    _call(r, "POST", f"/v2/releases/{NAME}", ALICE,
          {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}, "when": WHEN})
    assert _call(r, "DELETE", f"/v2/releases/{NAME}", ALICE).status_code == 200
    assert _call(r, "GET", f"/v2/releases/{NAME}").status_code == 404
    assert _call(r, "GET", "/v2/releases").json == {"releases": []}
    # a release that is only a scheduled creation can be deleted (its changes are)
    blob = r.transcript.steps[2].json["blob"]
    _call(r, "PUT", f"/v2/releases/{NAME}", ALICE, {"blob": blob, "product": "Firefox", "when": WHEN})
    assert _call(r, "DELETE", f"/v2/releases/{NAME}", ALICE).status_code == 200
    assert _call(r, "GET", "/v2/releases").json == {"releases": []}
    assert _call(r, "DELETE", f"/v2/releases/{NAME}", ALICE).status_code == 404


def test_direct_writes_merge_into_pending_changes(full):
    r = _created(full)
    _call(r, "POST", f"/v2/releases/{NAME}", ALICE,
          {"blob": {"displayVersion": "scheduled"}, "old_data_versions": {".": 1}, "when": WHEN})
    # the base's pending change changes the same value: refused
    result = _call(r, "POST", f"/v2/releases/{NAME}", ALICE,
                   {"blob": {"displayVersion": "direct"}, "old_data_versions": {".": 1}})
    assert (result.status_code, result.json["detail"]) == (400, "UpdateMergeError")
    # a locale without pending change is written directly
    de = {"buildID": "20200101000000"}
    result = _call(r, "POST", f"/v2/releases/{NAME}", ALICE, {
        "blob": {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": de}}}},
        "old_data_versions": {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}}})
    assert result.json == {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 2}}}}
    # a direct read-only change is merged into the base's pending change (which follows the row)
    assert _call(r, "PUT", f"/v2/releases/{NAME}/read_only", ALICE,
                 {"read_only": True, "old_data_version": 1}).json == {".": 2}
    change = _listed(r)["scheduled_changes"][0]
    assert (change["read_only"], change["data_version"], change["sc_data_version"]) == (True, 2, 2)


def test_unlocking_a_protected_release_is_scheduled(full):
    r = _created(full)
    _protect(r)
    assert _call(r, "PUT", f"/v2/releases/{NAME}/read_only", ALICE,
                 {"read_only": True, "old_data_version": 1}).json == {".": 2}
    before = int(time.time() * 1000)
    result = _call(r, "PUT", f"/v2/releases/{NAME}/read_only", ALICE, {"read_only": False, "old_data_version": 2})
    assert result.status_code == 200
    scheduled = result.json["."]
    assert {k: scheduled[k] for k in ("sc_id", "change_type", "data_version", "signoffs")} == \
        {"sc_id": 1, "change_type": "update", "data_version": 1, "signoffs": {}}
    assert before + 29_000 <= scheduled["when"] <= int(time.time() * 1000) + 31_000
    listed = _listed(r)
    assert listed["read_only"] is True and listed["scheduled_changes"][0]["read_only"] is False
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ADMIN).json["exception"] == "No Signoffs given"
    assert _call(r, "PUT", f"/v2/releases/{NAME}/signoff", ADMIN, {"role": "relman"}).status_code == 200
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ADMIN).status_code == 200
    assert _listed(r)["read_only"] is False


def test_unlocking_needs_the_products_signoffs_when_no_rule_protects(full):
    r = _created(full)
    _protect(r, rule=False)
    _call(r, "PUT", f"/v2/releases/{NAME}/read_only", ALICE, {"read_only": True, "old_data_version": 1})
    scheduled = _call(r, "PUT", f"/v2/releases/{NAME}/read_only", ALICE,
                      {"read_only": False, "old_data_version": 2}).json["."]
    assert scheduled["change_type"] == "update"
    # (the reference would enact this after 30 s without signoffs; the listing tells the agent to wait)
    assert _listed(r)["required_signoffs"] == {"relman": 1}
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ADMIN).json["detail"] == "Signoff Required"
    _call(r, "PUT", f"/v2/releases/{NAME}/signoff", ADMIN, {"role": "relman"})
    assert _call(r, "POST", f"/v2/releases/{NAME}/enact", ADMIN).status_code == 200


def test_signoff_and_enact_of_a_release_without_pending_changes(full):
    r = _created(full)
    _protect(r)
    for method, path, body in (("PUT", "signoff", {"role": "relman"}), ("DELETE", "signoff", None),
                               ("POST", "enact", None)):
        result = _call(r, method, f"/v2/releases/{NAME}/{path}", ADMIN, body)
        assert (result.status_code, result.json["detail"]) == (404, "Release has no scheduled changes"), path
    _call(r, "POST", f"/v2/releases/{NAME}", ALICE,
          {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}, "when": WHEN})
    assert _call(r, "PUT", f"/v2/releases/{NAME}/signoff", ALICE, {"role": "relman"}).status_code == 403
    assert _call(r, "PUT", f"/v2/releases/{NAME}/signoff", ADMIN, {}).status_code == 400
    assert _call(r, "PUT", f"/v2/releases/{NAME}/signoff", ADMIN, {"role": "relman"}).json is None
    assert _listed(r)["scheduled_changes"][0]["signoffs"] == {ADMIN: "relman"}
    assert _call(r, "DELETE", f"/v2/releases/{NAME}/signoff", ADMIN).status_code == 200
    assert _listed(r)["scheduled_changes"][0]["signoffs"] == {}


def test_scheduled_pins(full):
    r = full("pins-v2")
    r.run(range(2))  # Firefox-80.0-build1 and Firefox-81.0-build1 in v2 storage
    pin = {"product": "Firefox", "channel": "release", "version": "80."}
    result = _call(r, "PUT", "/v2/releases/Firefox-80.0-build1/pinnable", ALICE, {**pin, "when": WHEN})
    assert result.json == {".": _sc(1, "insert")}
    assert _call(r, "GET", "/v2/pins/Firefox/release/80.").status_code == 404
    listed = _call(r, "GET", "/scheduled_changes/pinnable_releases").json["scheduled_changes"]
    assert [(c["mapping"], c["required_signoffs"], c["scheduled_by"]) for c in listed] == \
        [("Firefox-80.0-build1", {}, ALICE)]
    # one pending change per pin
    result = _call(r, "PUT", "/v2/releases/Firefox-81.0-build1/pinnable", ALICE, {**pin, "when": WHEN})
    assert result.json["detail"] == "ChangeScheduledError"
    assert _call(r, "POST", "/scheduled_changes/pinnable_releases/1/enact", ADMIN).json == {}
    assert _call(r, "GET", "/v2/pins/Firefox/release/80.").json["mapping"] == "Firefox-80.0-build1"
    # moving it later: an update, reported with the version the pin will have
    result = _call(r, "PUT", "/v2/releases/Firefox-81.0-build1/pinnable", ALICE, {**pin, "when": WHEN})
    assert result.json == {".": _sc(2, "update", data_version=2)}
    assert _call(r, "PUT", "/v2/releases/Firefox-81.0-build1/pinnable", "bob@example.com",
                 {**pin, "when": WHEN}).status_code == 403
    assert _call(r, "POST", "/scheduled_changes/pinnable_releases/2/enact", ADMIN).json == {}
    assert _call(r, "GET", "/v2/pins/Firefox/release/80.").json == {**pin, "mapping": "Firefox-81.0-build1",
                                                                   "data_version": 2}


def test_scheduling_builds_on_what_is_already_scheduled(full):
    r = _created(full)
    _call(r, "POST", f"/v2/releases/{NAME}", ALICE,
          {"blob": {"displayVersion": "80.0.1"}, "old_data_versions": {".": 1}, "when": WHEN})
    result = _call(r, "POST", f"/v2/releases/{NAME}", ALICE,
                   {"blob": {"appVersion": "80.0.1"}, "old_data_versions": {".": 1}, "when": WHEN})
    assert result.json == {".": _sc(1, "update", data_version=2)}
    sc_blob = _call(r, "GET", f"/v2/releases/{NAME}").json["sc_blob"]
    assert (sc_blob["displayVersion"], sc_blob["appVersion"]) == ("80.0.1", "80.0.1")
    # a full replacement states the whole release: the base it leaves as it is loses its pending
    # change, and a scheduled locale it does not have is dropped
    blob = _call(r, "GET", f"/v2/releases/{NAME}").json["blob"]
    added = copy.deepcopy(blob)
    added["platforms"]["WINNT_x86_64-msvc"]["locales"]["fr"] = blob["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"]
    _call(r, "PUT", f"/v2/releases/{NAME}", ALICE, {"blob": added, "old_data_versions": {}, "when": WHEN})
    assert [c.get("path") for c in _listed(r)["scheduled_changes"]] == [".platforms.WINNT_x86_64-msvc.locales.fr"]
    assert _call(r, "PUT", f"/v2/releases/{NAME}", ALICE,
                 {"blob": blob, "old_data_versions": {}, "when": WHEN}).json == {}
    assert _listed(r)["scheduled_changes"] == []
