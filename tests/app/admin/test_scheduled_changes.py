"""Scheduled changes (balrog_app.admin.scheduled_changes): the recorded transcripts that exercise
them replayed in process, with every admin family mounted, on memory:// and a SQLite file; and
the checks the transcripts do not reach (signoff rules, re-enacting, malformed input, v1 release
changes, the release diff, reverting a change). The whole lifecycle per kind: test_sc_lifecycle.py."""
from __future__ import annotations

import json

import pytest

WHEN = 4102444800000


@pytest.mark.parametrize("name", ["sc-rules-lifecycle", "sc-permissions-and-required-signoffs", "emergency-shutoff",
                                  "required-signoffs-product", "rules-history", "misc-service-endpoints"])
def test_transcript(full, name):
    r = full(name)
    # misc-service-endpoints step 22 is GET /v2/releases (the v2 releases family, not mounted here yet)
    skipped = {22} if name == "misc-service-endpoints" and not _has_route(r, "/v2/releases") else set()
    ran = r.run([i for i in range(len(r.transcript.steps)) if i not in skipped])
    assert len(ran) == len(r.transcript.steps) - len(skipped)


def _has_route(r, path):
    return r.client.simulate_get(path).status_code != 404


# --- beyond the transcripts ------------------------------------------------------------------------------
def _steps(r, upto):
    """Replay the first ``upto`` steps of the transcript (set-up)."""
    r.run(range(upto))


def _call(r, method, path, user=None, json=None, query=None, raw=None):
    token = r.tokens.get(user) if user else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return r.client.simulate_request(method, path, headers=headers, body=raw, query_string=query)
    return r.client.simulate_request(method, path, headers=headers, json=json, query_string=query)


BOB, CAROL, ALICE, ADMIN, AGENT = ("bob@example.com", "carol@example.com", "alice@example.com", "admin@example.com",
                                   "balrogagent")


def test_signoff_rules(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 7)  # sc 1 exists, no signoffs
    base = "/scheduled_changes/rules/1/signoffs"
    assert _call(r, "POST", base, BOB, {"role": "qa"}).status_code == 403
    assert _call(r, "POST", base, BOB, {"role": "relman", "username": CAROL}).json["exception"] == \
        "Cannot signoff on behalf of another user"
    assert _call(r, "POST", base, AGENT, {"role": "relman"}).json["exception"] == "System account cannot signoff"
    assert _call(r, "POST", base, ADMIN, {"role": "releng"}).status_code == 200
    assert _call(r, "POST", base, ADMIN, {"role": "releng"}).status_code == 200  # again: a no-op
    assert _call(r, "POST", base, BOB, {"role": "relman"}).status_code == 200
    # revocation: a holder of the role may revoke another holder's signoff; others may not
    assert _call(r, "DELETE", base, CAROL, query="username=bob@example.com").status_code == 200
    assert _call(r, "DELETE", base, BOB).json == {"error": "bob@example.com has no signoff to revoke"}
    assert _call(r, "DELETE", base, CAROL, query="username=admin@example.com").json["exception"] == \
        "Cannot revoke a signoff made by someone in a group you do not belong to"
    assert _call(r, "DELETE", base, AGENT, query="username=admin@example.com").status_code == 403
    assert _call(r, "DELETE", base, ADMIN).status_code == 200
    assert _call(r, "GET", "/scheduled_changes/rules/1").json["scheduled_change"]["signoffs"] == {}


def test_completed_change_is_not_enacted_again(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 32)  # sc 1 enacted at step 31
    result = _call(r, "POST", "/scheduled_changes/rules/1/enact", AGENT)
    assert result.status_code == 400
    assert result.json["exception"] == "Scheduled change already completed. Cannot enact now."
    assert _call(r, "POST", "/scheduled_changes/rules/99/enact", AGENT).status_code == 404


def test_create_checks(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 7)
    post = lambda body, user=ALICE: _call(r, "POST", "/scheduled_changes/rules", user, body)  # noqa: E731
    update = {"change_type": "update", "rule_id": 1, "data_version": 1, "when": WHEN, "mapping": "Firefox-61.0-build1",
              "priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox"}
    assert post({**update, "when": None}).status_code == 400
    assert post({**update, "when": 1000000000000}).json["exception"] == "Cannot schedule changes in the past"
    assert post({**update, "sc_id": 4}).json["detail"] == "sc_id cannot be set when scheduling a new change"
    assert post({**update, "change_type": "bogus"}).json["detail"] == "Invalid or missing change_type"
    assert post({k: v for k, v in update.items() if k != "data_version"}).json["exception"] == "data_version is missing"
    assert post({**update, "data_version": 7}).json["detail"] == "OutdatedDataError"
    assert post(update).json["detail"] == "ChangeScheduledError"
    assert post({**update, "rule_id": 2}, "dave@example.com").status_code == 403
    assert post({**update, "rule_id": 2, "mapping": "nope"}).status_code == 400
    for raw in ("[", "[]", '{"change_type": 5}', '{"when": "soon", "change_type": "insert"}'):
        result = _call(r, "POST", "/scheduled_changes/rules", ALICE, raw=raw)
        assert result.status_code == 400, raw
    assert _call(r, "POST", "/scheduled_changes/rules/1", ALICE, {"when": WHEN}).status_code == 400
    assert _call(r, "POST", "/scheduled_changes/rules/x", ALICE, {"sc_data_version": 1}).status_code == 404
    assert _call(r, "DELETE", "/scheduled_changes/rules/1", ALICE).status_code == 400
    assert _call(r, "GET", "/scheduled_changes/rules", query="rule_id=x").status_code == 400
    assert _call(r, "GET", "/scheduled_changes/rules", query="rule_id=99999999999999999999").status_code == 400
    assert _call(r, "GET", "/scheduled_changes/rules/99999999999").status_code == 404


def test_delete_and_insert_of_rules(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 5)
    result = _call(r, "POST", "/scheduled_changes/rules", ALICE,
                   {"change_type": "delete", "rule_id": 2, "data_version": 1, "when": WHEN})
    assert result.json == {"sc_id": 1, "signoffs": {}}
    sc = _call(r, "GET", "/scheduled_changes/rules/1").json["scheduled_change"]
    # a scheduled delete keeps only the key and the version it was made against
    assert (sc["change_type"], sc["rule_id"], sc["channel"], sc["data_version"]) == ("delete", 2, None, 1)
    assert _call(r, "POST", "/scheduled_changes/rules/1/enact", AGENT).json == {}
    assert _call(r, "GET", "/rules/2").status_code == 404
    result = _call(r, "POST", "/scheduled_changes/rules", BOB,
                   {"change_type": "insert", "when": WHEN, "priority": 5, "backgroundRate": 0, "update_type": "minor",
                    "product": "Firefox", "channel": "release", "mapping": "Firefox-60.0-build1"})
    assert result.json == {"sc_id": 2, "signoffs": {BOB: "relman"}}
    assert _call(r, "DELETE", "/scheduled_changes/rules/2", CAROL, query="data_version=1").status_code == 200
    assert _call(r, "GET", "/scheduled_changes/rules/2").status_code == 404


def test_empty_listings_and_pins(full):
    r = full("misc-service-endpoints")
    for segment in ("releases", "pinnable_releases", "required_signoffs/permissions"):
        result = _call(r, "GET", f"/scheduled_changes/{segment}", query="all=")
        assert result.json == {"count": 0, "scheduled_changes": []}
    assert _call(r, "POST", "/scheduled_changes/pinnable_releases", ADMIN, {}).status_code == 405
    assert _call(r, "GET", "/scheduled_changes/releases/1").status_code == 404
    assert _call(r, "GET", "/scheduled_change/diff/release/1").status_code == 404


def test_signoffs_belong_to_an_existing_change(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 7)  # sc 1 exists
    result = _call(r, "POST", "/scheduled_changes/rules/2/signoffs", BOB, {"role": "relman"})
    assert (result.status_code, result.json["detail"]) == (404, "Scheduled change does not exist")
    assert _call(r, "POST", "/scheduled_changes/rules/1/signoffs", BOB, {"role": "relman"}).status_code == 200
    assert _call(r, "DELETE", "/scheduled_changes/rules/1", ALICE, query="data_version=1").status_code == 200
    # the cancelled change's signoffs went with it: a new change (whatever its id) starts with none
    update = {"change_type": "update", "rule_id": 1, "data_version": 1, "when": WHEN, "mapping": "Firefox-61.0-build1",
              "priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox"}
    created = _call(r, "POST", "/scheduled_changes/rules", ALICE, update).json
    assert created["signoffs"] == {}
    assert _call(r, "GET", f"/scheduled_changes/rules/{created['sc_id']}").json["scheduled_change"]["signoffs"] == {}


# --- v1 release changes ---------------------------------------------------------------------------------
DAVE = "dave@example.com"  # release permission for Firefox, role qa
R60, R61, R62 = "Firefox-60.0-build1", "Firefox-61.0-build1", "Firefox-62.0-build1"


def _release_world(full):
    """sc-rules-lifecycle up to step 5: R60 mapped by Firefox/release (2 relman signoffs) and
    Firefox/beta rules, R61 mapped by none; bob and carol hold relman."""
    r = full("sc-rules-lifecycle")
    _steps(r, 5)
    return r


def _blob(r, name=R61, **changes):
    return {**json.loads(r.transcript.steps[1].json["blob"]), "name": name, **changes}


def _schedule_release(r, body, user=DAVE):
    return _call(r, "POST", "/scheduled_changes/releases", user, body)


def test_release_changes_are_validated(full):
    r = _release_world(full)
    update = {"change_type": "update", "name": R61, "data_version": 1, "when": WHEN,
              "data": json.dumps(_blob(r, extv="61.0.1"))}
    insert = {"change_type": "insert", "name": R62, "product": "Firefox", "when": WHEN,
              "data": json.dumps(_blob(r, R62))}
    assert _schedule_release(r, {**update, "when": None}).json["detail"] == \
        "'when' cannot be set to null when scheduling a new change for a Release"
    assert _schedule_release(r, {k: v for k, v in insert.items() if k != "product"}).json["exception"] == \
        "product is missing"
    assert _schedule_release(r, {k: v for k, v in insert.items() if k != "data"}).json["exception"] == \
        "Missing blob 'data' value"
    assert _schedule_release(r, {k: v for k, v in insert.items() if k != "name"}).json["exception"] == \
        "name is missing"
    for data in ({"name": R62}, "{", "[1]", 5):
        result = _schedule_release(r, {**insert, "data": data})
        assert (result.status_code, result.headers["Content-Type"]) == (400, "application/problem+json"), data
    invalid_blob = _schedule_release(r, {**insert, "data": json.dumps(_blob(r, R62, platforms=5))})
    assert (invalid_blob.status_code, invalid_blob.json["detail"]) == (400, "Invalid Blob")
    assert isinstance(invalid_blob.json["exception"], list)
    mismatch = _schedule_release(r, {**insert, "data": json.dumps(_blob(r, R61))})
    assert mismatch.json["exception"] == [f"name in database ({R62}) does not match name in blob ({R61})"]
    assert _schedule_release(r, {**insert, "name": R61, "data": json.dumps(_blob(r))}).json["exception"] == \
        "Cannot schedule change for duplicate PK"
    assert _schedule_release(r, {k: v for k, v in update.items() if k != "data_version"}).json["exception"] == \
        "data_version is missing"
    assert _schedule_release(r, {**update, "data_version": 5}).json["detail"] == "OutdatedDataError"
    assert _schedule_release(r, {**insert, "product": "Thunderbird"}).status_code == 403
    assert _schedule_release(r, insert, ALICE).json["exception"] == \
        f"{ALICE} is not allowed to create releases for product Firefox"
    assert _schedule_release(r, update).json == {"sc_id": 1, "signoffs": {}}
    assert _schedule_release(r, update).json["detail"] == "ChangeScheduledError"
    # edits of an update need the release's version; only the blob (and when) are taken
    edit = {"sc_data_version": 1, "data": json.dumps(_blob(r, extv="61.0.2")), "product": "Thunderbird"}
    assert _call(r, "POST", "/scheduled_changes/releases/1", DAVE, edit).json["exception"] == "data_version is missing"
    assert _call(r, "POST", "/scheduled_changes/releases/1", DAVE, {**edit, "data_version": 1}).json == \
        {"new_data_version": 2, "signoffs": {}}
    change = _call(r, "GET", "/scheduled_changes/releases/1").json["scheduled_change"]
    assert (change["product"], change["data"]["extv"], change["read_only"], change["required_signoffs"]) == \
        ("Firefox", "61.0.2", False, {})
    assert [c["sc_id"] for c in _call(r, "GET", "/scheduled_changes/releases", query=f"name={R61}").json[
        "scheduled_changes"]] == [1]


def test_release_insert_and_delete(full):
    r = _release_world(full)
    created = _schedule_release(r, {"change_type": "insert", "name": R62, "product": "Firefox", "when": WHEN,
                                    "data": json.dumps(_blob(r, R62))}).json
    assert _call(r, "POST", f"/scheduled_changes/releases/{created['sc_id']}/enact", AGENT).json == {}
    assert _call(r, "GET", f"/releases/{R62}").json == _blob(r, R62)
    # a release that rules map: its deletion needs their signoffs, and is refused while they map it
    deletion = _schedule_release(r, {"change_type": "delete", "name": R60, "data_version": 1, "when": WHEN}).json
    one = f"/scheduled_changes/releases/{deletion['sc_id']}"
    assert _call(r, "GET", one).json["scheduled_change"]["required_signoffs"] == {"relman": 2}
    for signer in (BOB, CAROL):
        _call(r, "POST", f"{one}/signoffs", signer, {"role": "relman"})
    refused = _call(r, "POST", f"{one}/enact", AGENT)
    assert refused.json["exception"] == f"{R60} has rules pointing to it. Hence it cannot be deleted."
    assert _call(r, "GET", one).json["scheduled_change"]["complete"] is False
    assert _call(r, "DELETE", one, DAVE, query="data_version=1").status_code == 200
    deletion = _schedule_release(r, {"change_type": "delete", "name": R62, "data_version": 1, "when": WHEN}).json
    assert _call(r, "POST", f"/scheduled_changes/releases/{deletion['sc_id']}/enact", AGENT).json == {}
    assert _call(r, "GET", f"/releases/{R62}").status_code == 404


def test_unlocking_a_read_only_release_is_scheduled(full):
    r = _release_world(full)
    assert _call(r, "PUT", f"/releases/{R61}/read_only", ADMIN, {"read_only": True, "data_version": 1}).status_code \
        == 201
    refused = _call(r, "PUT", f"/releases/{R61}/read_only", ADMIN, {"read_only": False, "data_version": 2})
    assert (refused.status_code, refused.json["detail"]) == (400, "Signoff Required")
    # the blob of a read-only release cannot be changed, not even later
    changed = _schedule_release(r, {"change_type": "update", "name": R61, "data_version": 2, "when": WHEN,
                                    "data": json.dumps(_blob(r, extv="61.0.1"))})
    assert (changed.status_code, changed.json["detail"]) == \
        (400, f"Failed to schedule change - Release '{R61}' is read only")
    unlock = {"change_type": "update", "name": R61, "data_version": 2, "read_only": False, "when": WHEN}
    assert _schedule_release(r, unlock).json["exception"] == \
        f"{DAVE} is not allowed to unset read_only for product Firefox"
    sc_id = _schedule_release(r, unlock, ADMIN).json["sc_id"]
    change = _call(r, "GET", f"/scheduled_changes/releases/{sc_id}").json["scheduled_change"]
    # the current blob is kept; no rule maps the release, so its product's requirements apply
    assert (change["read_only"], change["data"], change["required_signoffs"]) == (False, _blob(r), {"relman": 2})
    assert _call(r, "POST", f"/scheduled_changes/releases/{sc_id}/enact", AGENT).json["exception"] == \
        "No Signoffs given"
    for signer in (BOB, CAROL):
        _call(r, "POST", f"/scheduled_changes/releases/{sc_id}/signoffs", signer, {"role": "relman"})
    assert _call(r, "POST", f"/scheduled_changes/releases/{sc_id}/enact", AGENT).json == {}
    assert _call(r, "GET", f"/releases/{R61}/read_only").json == {"read_only": False}


def test_release_diff(full):
    r = _release_world(full)
    _schedule_release(r, {"change_type": "update", "name": R61, "data_version": 1, "when": WHEN,
                          "data": json.dumps(_blob(r, extv="61.0.1"))})
    _schedule_release(r, {"change_type": "insert", "name": R62, "product": "Firefox", "when": WHEN,
                          "data": json.dumps(_blob(r, R62))})
    diff = _call(r, "GET", "/scheduled_change/diff/release/1")
    assert (diff.status_code, diff.headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    lines = diff.text.splitlines()
    assert lines[:2] == ["--- Current Version (Data Version 1)", "+++ Scheduled Update (sc_id 1)"]
    assert [line for line in lines[2:] if line[:1] in "+-"] == ['-    "extv": "61.0",', '+    "extv": "61.0.1",']
    created = _call(r, "GET", "/scheduled_change/diff/release/2").text.splitlines()
    assert created[0] == "--- Current Version (Data Version None)"
    assert all(line.startswith("+") for line in created[3:]) and f'+    "name": "{R62}",' in created


# --- reverting a change (scheduled-changes-and-agent.md §7) -----------------------------------------------
def test_revert_a_rule_change(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 7)  # sc 1 by alice (sc_data_version 1)
    assert _call(r, "POST", "/scheduled_changes/rules/1", ALICE,
                 {"sc_data_version": 1, "data_version": 1, "comment": "edited", "when": WHEN + 1}).status_code == 200
    _call(r, "POST", "/scheduled_changes/rules/1/signoffs", BOB, {"role": "relman"})
    revisions = _call(r, "GET", "/scheduled_changes/rules/1/revisions").json["revisions"]
    first = revisions[-1]
    assert (first["sc_data_version"], first["comment"]) == (1, None)
    reverted = _call(r, "POST", "/scheduled_changes/rules/1/revisions", CAROL, {"change_id": first["change_id"]})
    assert (reverted.status_code, reverted.text) == (200, "Success")
    change = _call(r, "GET", "/scheduled_changes/rules/1").json["scheduled_change"]
    assert (change["comment"], change["when"], change["sc_data_version"], change["scheduled_by"]) == \
        (None, WHEN, 3, CAROL)
    assert change["signoffs"] == {CAROL: "relman"}  # like an edit: bob's went, carol signed off herself
    assert _call(r, "GET", "/scheduled_changes/rules/1/revisions").json["revisions"][0]["changed_by"] == CAROL

    revert = lambda body, sc=1, user=CAROL: _call(r, "POST", f"/scheduled_changes/rules/{sc}/revisions",  # noqa
                                                  user, body)
    assert revert({"change_id": 1}, sc=9).json["detail"] == "given sc_id was not found in the database"
    assert revert({}).json["detail"] == "No change_id passed in the request body"
    assert revert({"change_id": 999}).json["detail"] == "Invalid change_id : 999 passed in the request body"
    assert revert({"change_id": "x"}).status_code == 400
    assert revert({"change_id": [1]}).status_code == 400
    placeholder = first["change_id"] - 1
    assert revert({"change_id": placeholder}).json["detail"] == \
        f"Invalid change_id : {placeholder} passed in the request body"
    assert revert({"change_id": first["change_id"]}, user="dave@example.com").status_code == 403
    other = _call(r, "POST", "/scheduled_changes/rules", ALICE,
                  {"change_type": "update", "rule_id": 2, "data_version": 1, "when": WHEN,
                   "mapping": "Firefox-61.0-build1", "priority": 90, "backgroundRate": 100, "update_type": "minor",
                   "product": "Firefox"}).json["sc_id"]
    assert revert({"change_id": first["change_id"]}, sc=other).json["detail"] == "Bad sc_id passed in the request"
    _call(r, "POST", "/scheduled_changes/rules/1/signoffs", BOB, {"role": "relman"})
    assert _call(r, "POST", "/scheduled_changes/rules/1/enact", AGENT).json == {}
    assert revert({"change_id": first["change_id"]}).json["exception"] == \
        "Scheduled change already completed. Cannot update now."


def test_revert_a_release_change(full):
    r = _release_world(full)
    _schedule_release(r, {"change_type": "update", "name": R61, "data_version": 1, "when": WHEN,
                          "data": json.dumps(_blob(r, extv="61.0.1"))})
    _call(r, "POST", "/scheduled_changes/releases/1", DAVE,
          {"sc_data_version": 1, "data_version": 1, "data": json.dumps(_blob(r, extv="61.0.2"))})
    first = _call(r, "GET", "/scheduled_changes/releases/1/revisions").json["revisions"][-1]
    assert first["data"]["extv"] == "61.0.1"
    assert _call(r, "POST", "/scheduled_changes/releases/1/revisions", ADMIN,
                 {"change_id": first["change_id"]}).text == "Success"
    change = _call(r, "GET", "/scheduled_changes/releases/1").json["scheduled_change"]
    assert (change["data"]["extv"], change["scheduled_by"], change["sc_data_version"]) == ("61.0.1", ADMIN, 3)


# --- ids are never handed out twice ------------------------------------------------------------------------
def test_the_id_of_a_cancelled_newest_change_is_not_reused(full):
    """SQLite gives a new row the highest id in use plus one unless the table says AUTOINCREMENT:
    the next change would get the cancelled one's id and show its history as its own."""
    r = full("sc-rules-lifecycle")
    _steps(r, 5)  # rules 1 (Firefox/release) and 2 (Firefox/beta), no change yet
    update = {"change_type": "update", "rule_id": 2, "data_version": 1, "when": WHEN, "mapping": "Firefox-61.0-build1",
              "priority": 90, "backgroundRate": 100, "update_type": "minor", "product": "Firefox"}
    assert _call(r, "POST", "/scheduled_changes/rules", ALICE, update).json["sc_id"] == 1
    assert _call(r, "POST", "/scheduled_changes/rules", ALICE,
                 {**update, "rule_id": 1, "channel": "release"}).json["sc_id"] == 2
    assert _call(r, "POST", "/scheduled_changes/rules/2", ALICE,
                 {"sc_data_version": 1, "data_version": 1, "comment": "edited"}).status_code == 200
    assert _call(r, "DELETE", "/scheduled_changes/rules/2", ALICE, query="data_version=2").status_code == 200

    created = _call(r, "POST", "/scheduled_changes/rules", CAROL, {**update, "rule_id": 1, "channel": "release"}).json
    assert created["sc_id"] == 3
    revisions = _call(r, "GET", "/scheduled_changes/rules/3/revisions").json
    assert revisions["count"] == 1
    assert [(rev["sc_id"], rev["changed_by"], rev["comment"]) for rev in revisions["revisions"]] == [(3, CAROL, None)]
    assert _call(r, "GET", "/scheduled_changes/rules/2").status_code == 404


def test_the_id_of_a_deleted_newest_rule_is_not_reused(full):
    r = full("sc-rules-lifecycle")
    _steps(r, 5)
    assert _call(r, "DELETE", "/rules/2", ALICE, query="data_version=1").status_code == 200
    created = _call(r, "POST", "/rules", ALICE, {"priority": 10, "backgroundRate": 0, "update_type": "minor",
                                                 "product": "Firefox", "channel": "aurora",
                                                 "mapping": "Firefox-60.0-build1"})
    assert created.status_code == 200 and created.text == "3"
    revisions = _call(r, "GET", "/rules/3/revisions").json
    assert (revisions["count"], [rule["rule_id"] for rule in revisions["rules"]]) == (1, [3])
