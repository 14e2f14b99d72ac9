"""Plugin conditions of scheduled changes (``"conditions": {"<type>": {params}}``), through HTTP, on
memory:// and a SQLite file: checked with the condition types' schemas at create and edit (400s
naming ``conditions.<type>[.<field>]``), shown only when a change has some, composed with or
replacing ``when``, versioned with the change (revisions, revert), edits clear the signoffs, and
the agent may enact a change whose only conditions are ones it evaluates itself."""
from __future__ import annotations

import json
from typing import Any

import pytest
from falcon import testing

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from tests.app.admin.conftest import BACKENDS, REGISTRY

ALICE = "alice@example.com"      # admin, holds no role
RM1 = "rm1@example.com"          # relman
AGENT = "balrogagent"            # system account that may enact
USERS = (ALICE, RM1, AGENT)

WHEN = 4102444800000             # 2100-01-01
OLD, NEW = "Firefox-60.0-build1", "Firefox-61.0-build1"

UPTAKE = {"product": "Firefox", "channel": "release", "version": "60.0", "target": 60}
HALT = {"metric": "crash_rate", "threshold": 0.05, "product": "Firefox", "channel": "release"}
PROBLEM = "application/problem+json"


def blob(name: str, version: str) -> dict:
    return {
        "name": name, "schema_version": 9, "hashFunction": "sha512", "appVersion": version,
        "displayVersion": version,
        "updateLine": [{"for": {}, "fields": {"detailsURL": "https://www.mozilla.org/notes/", "type": "minor"}}],
        "platforms": {"WINNT_x86_64-msvc": {"locales": {"en-US": {
            "buildID": "20190901000000", "appVersion": version, "displayVersion": version,
            "completes": [{"from": "*", "filesize": 50000000, "hashValue": "0" * 64,
                           "fileUrl": f"https://archive.mozilla.org/{version}/en-US.complete.mar"}]}}}},
    }


class Api:
    """The whole admin app (the agent's due check on) over a fresh storage with two releases, a
    Firefox/release rule mapping the first, and one relman signoff required for Firefox/release."""

    def __init__(self, url: str):
        self.storage = REGISTRY.storage_for(url)
        seed(self.storage, permissions=[
            {"username": ALICE, "permission": "admin", "options": None},
            {"username": RM1, "permission": "rule", "options": {"products": ["Firefox"]}},
            {"username": AGENT, "permission": "scheduled_change", "options": {"actions": ["enact"]}},
        ], roles=[{"username": RM1, "role": "relman"}])
        ctx = AdminContext(self.storage, REGISTRY, StaticTokens({f"t-{u}": u for u in USERS}),
                           system_accounts=frozenset({AGENT}),
                           allowlisted_domains={"archive.mozilla.org": ["Firefox"]})
        self.client = testing.TestClient(create_admin_app(ctx))
        for name, version in ((OLD, "60.0"), (NEW, "61.0")):
            self.ok("POST", "/releases", ALICE, {"name": name, "product": "Firefox",
                                                 "blob": json.dumps(blob(name, version))})
        self.ok("POST", "/rules", ALICE, {"priority": 100, "backgroundRate": 100, "update_type": "minor",
                                          "product": "Firefox", "channel": "release", "mapping": OLD})
        self.ok("POST", "/required_signoffs/product", ALICE,
                {"product": "Firefox", "channel": "release", "role": "relman", "signoffs_required": 1})

    def call(self, method: str, path: str, user: str | None = None, body: Any = None):
        headers = {"Authorization": f"Bearer t-{user}"} if user else {}
        return self.client.simulate_request(method, path, headers=headers, json=body)

    def ok(self, method: str, path: str, user: str | None = None, body: Any = None):
        result = self.call(method, path, user, body)
        assert result.status_code in (200, 201), (method, path, result.status_code, result.text)
        return result.json

    def change(self, sc_id: int, segment: str = "rules") -> dict:
        return self.ok("GET", f"/scheduled_changes/{segment}/{sc_id}")["scheduled_change"]

    def schedule(self, **extra) -> int:
        """A scheduled update of rule 1 to the new release, by alice."""
        body = {"change_type": "update", "rule_id": 1, "data_version": 1, "mapping": NEW, "priority": 100,
                "backgroundRate": 100, "update_type": "minor", "product": "Firefox", "channel": "release", **extra}
        return self.ok("POST", "/scheduled_changes/rules", ALICE, body)["sc_id"]


@pytest.fixture(params=BACKENDS)
def api(request, tmp_path):
    api = Api(request.param.format(tmp=tmp_path))
    yield api
    api.storage.close()


def refused(result, status: int = 400) -> str:
    """The detail of a schema refusal (problem+json)."""
    assert (result.status_code, result.headers["Content-Type"]) == (status, PROBLEM), result.text
    return result.json["detail"]


# --- create and show ----------------------------------------------------------------------------------
def test_conditions_are_stored_with_when_and_shown(api):
    sc_id = api.schedule(when=WHEN, conditions={"uptake": UPTAKE})
    change = api.change(sc_id)
    assert (change["when"], change["conditions"]) == (WHEN, {"uptake": UPTAKE})
    listed = api.ok("GET", "/scheduled_changes/rules")["scheduled_changes"]
    assert [(c["sc_id"], c.get("conditions")) for c in listed] == [(sc_id, {"uptake": UPTAKE})]


def test_conditions_are_absent_from_changes_without_any(api):
    sc_id = api.schedule(when=WHEN)
    assert "conditions" not in api.change(sc_id)
    assert "conditions" not in api.ok("GET", "/scheduled_changes/rules")["scheduled_changes"][0]
    assert all("conditions" not in revision
               for revision in api.ok("GET", f"/scheduled_changes/rules/{sc_id}/revisions")["revisions"])
    api.ok("POST", f"/scheduled_changes/rules/{sc_id}", ALICE, {"sc_data_version": 1, "data_version": 1,
                                                                  "conditions": {}})
    assert "conditions" not in api.change(sc_id)


def test_a_change_with_conditions_needs_no_when(api):
    sc_id = api.schedule(conditions={"error_rate": HALT})
    change = api.change(sc_id)
    assert (change["when"], change["conditions"]) == (None, {"error_rate": HALT})


def test_a_change_needs_when_or_a_condition(api):
    for extra in ({}, {"conditions": None}, {"conditions": {}}):
        result = api.call("POST", "/scheduled_changes/rules", ALICE, {
            "change_type": "update", "rule_id": 1, "data_version": 1, "mapping": NEW, "priority": 100,
            "backgroundRate": 100, "update_type": "minor", "product": "Firefox", **extra})
        assert (result.status_code, result.json["detail"]) == \
            (400, "'when' cannot be set to null when scheduling a new change for a Rule"), extra


def test_conditions_work_for_other_kinds(api):
    body = {"change_type": "insert", "permission": "release", "username": "dave@example.com",
            "options": json.dumps({"products": ["Firefox"]}), "conditions": {"uptake": UPTAKE}}
    sc_id = api.ok("POST", "/scheduled_changes/permissions", ALICE, body)["sc_id"]
    assert api.change(sc_id, "permissions")["conditions"] == {"uptake": UPTAKE}
    revisions = api.ok("GET", f"/scheduled_changes/permissions/{sc_id}/revisions")["revisions"]
    assert [revision["conditions"] for revision in revisions] == [{"uptake": UPTAKE}]


# --- refusals -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditions, message", [
    pytest.param([UPTAKE], "conditions: [", id="not-an-object"),
    pytest.param({"nosuch": {}}, "conditions.nosuch: unknown condition type (known: error_rate, uptake)",
                 id="unknown-type"),
    pytest.param({"time": {"when": WHEN}}, "conditions.time: the time condition is set with the top-level 'when'",
                 id="time"),
    pytest.param({"uptake": 60}, "conditions.uptake: 60 is not of type 'object'", id="params-not-an-object"),
    pytest.param({"uptake": {**UPTAKE, "target": 0}},
                 "conditions.uptake.target: Must be greater than 0 and less than or equal to 100.", id="out-of-range"),
    pytest.param({"uptake": {"channel": "release", "target": 5}},
                 "conditions.uptake.product: Missing data for required field.", id="missing-field"),
    pytest.param({"uptake": {**UPTAKE, "colour": "red"}}, "conditions.uptake.colour: Unknown field.",
                 id="unknown-field"),
    pytest.param({"error_rate": {**HALT, "labels": {"os": 10}}},
                 "conditions.error_rate.labels.os.value: Not a valid string.", id="nested-field"),
    pytest.param({"error_rate": {**HALT, "threshold": "high"}}, "conditions.error_rate.threshold: Not a valid number.",
                 id="wrong-type"),
    pytest.param({"error_rate": {**HALT, "labels": {f"l{i}": "v" * 100 for i in range(200)}}},
                 "bytes of JSON, more than the 16384 taken", id="too-large"),
])
def test_bad_conditions_are_refused_at_create_and_edit(api, conditions, message):
    result = api.call("POST", "/scheduled_changes/rules", ALICE, {
        "change_type": "update", "rule_id": 1, "data_version": 1, "mapping": NEW, "priority": 100,
        "backgroundRate": 100, "update_type": "minor", "product": "Firefox", "when": WHEN, "conditions": conditions})
    assert message in refused(result)
    assert api.ok("GET", "/scheduled_changes/rules")["count"] == 0  # nothing written

    sc_id = api.schedule(when=WHEN)
    result = api.call("POST", f"/scheduled_changes/rules/{sc_id}", ALICE,
                      {"sc_data_version": 1, "data_version": 1, "conditions": conditions})
    assert message in refused(result)
    assert api.change(sc_id)["sc_data_version"] == 1


def test_every_field_error_is_named(api):
    result = api.call("POST", "/scheduled_changes/rules", ALICE, {
        "change_type": "update", "rule_id": 1, "data_version": 1, "mapping": NEW, "priority": 100,
        "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
        "conditions": {"uptake": {"product": "Firefox", "target": 500}}})
    detail = refused(result)
    assert "conditions.uptake.channel: Missing data for required field." in detail
    assert "conditions.uptake.target: Must be greater than 0 and less than or equal to 100." in detail


# --- edits, revisions, revert ------------------------------------------------------------------------------
def test_editing_conditions_clears_the_signoffs_and_is_versioned(api):
    sc_id = api.schedule(when=WHEN, conditions={"uptake": UPTAKE})
    one = f"/scheduled_changes/rules/{sc_id}"
    api.ok("POST", f"{one}/signoffs", RM1, {"role": "relman"})
    assert api.change(sc_id)["signoffs"] == {RM1: "relman"}

    halted = {"error_rate": HALT}
    edited = api.ok("POST", one, ALICE, {"sc_data_version": 1, "data_version": 1, "conditions": halted})
    assert edited == {"new_data_version": 2, "signoffs": {}}
    change = api.change(sc_id)
    assert (change["when"], change["conditions"], change["signoffs"]) == (WHEN, halted, {})

    # an edit that leaves the conditions out keeps them; one that drops `when` keeps the conditions alone
    api.ok("POST", one, ALICE, {"sc_data_version": 2, "data_version": 1, "when": None})
    change = api.change(sc_id)
    assert (change["when"], change["conditions"]) == (None, halted)
    # and with neither left, the edit is the reference's refusal
    result = api.call("POST", one, ALICE, {"sc_data_version": 3, "data_version": 1, "conditions": None})
    assert (result.status_code, result.json["exception"]) == (400, "No conditions found")

    revisions = api.ok("GET", f"{one}/revisions")["revisions"]
    assert [(r["sc_data_version"], r["when"], r.get("conditions")) for r in revisions] == [
        (3, None, halted), (2, WHEN, halted), (1, WHEN, {"uptake": UPTAKE})]

    # reverting to the first version brings its conditions back
    first = revisions[-1]["change_id"]
    result = api.client.simulate_post(f"{one}/revisions", headers={"Authorization": f"Bearer t-{ALICE}"},
                                      json={"change_id": first})
    assert (result.status_code, result.text) == (200, "Success")
    change = api.change(sc_id)
    assert (change["sc_data_version"], change["when"], change["conditions"]) == (4, WHEN, {"uptake": UPTAKE})


# --- enacting --------------------------------------------------------------------------------------
def test_the_agent_enacts_a_change_without_when(api):
    sc_id = api.schedule(conditions={"error_rate": HALT})
    api.ok("POST", f"/scheduled_changes/rules/{sc_id}/signoffs", RM1, {"role": "relman"})
    assert api.ok("POST", f"/scheduled_changes/rules/{sc_id}/enact", AGENT) == {}
    assert api.ok("GET", "/rules/1")["mapping"] == NEW
    assert api.change(sc_id)["complete"] is True
    revision = api.ok("GET", f"/scheduled_changes/rules/{sc_id}/revisions")["revisions"][0]
    assert (revision["complete"], revision["conditions"]) == (True, {"error_rate": HALT})


def test_the_agent_still_waits_for_when(api):
    sc_id = api.schedule(when=WHEN, conditions={"uptake": UPTAKE})
    api.ok("POST", f"/scheduled_changes/rules/{sc_id}/signoffs", RM1, {"role": "relman"})
    result = api.call("POST", f"/scheduled_changes/rules/{sc_id}/enact", AGENT)
    assert (result.status_code, result.json["detail"]) == (400, "Not due yet")
    assert api.ok("GET", "/rules/1")["mapping"] == OLD


def test_conditions_do_not_replace_the_signoffs(api):
    sc_id = api.schedule(conditions={"error_rate": HALT})
    result = api.call("POST", f"/scheduled_changes/rules/{sc_id}/enact", AGENT)
    assert (result.status_code, result.json["detail"]) == (400, "Signoff Required")
    assert api.ok("GET", "/rules/1")["mapping"] == OLD
