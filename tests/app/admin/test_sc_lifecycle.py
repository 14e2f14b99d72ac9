"""The scheduled-change and signoff lifecycle, through HTTP, for every kind of scheduled change
(rules, v1 releases, permissions, both required-signoff tables, emergency shutoffs, v2 releases),
on memory:// and on a SQLite file:

create -> the required signoffs are listed -> a signoff by a holder of the role is recorded (one
by a user without the role, or by a system account, is refused) -> an edit by someone else clears
the other users' signoffs -> enacting is refused while signoffs are missing -> enacting succeeds
-> history shows the change written by the scheduler (``scheduled_by``), not by the enacter.

Plus the agent's due check: with ``enact_due_only_for_system_accounts`` set on the context, a
system account may only enact changes whose ``when`` has come (a clear 400 and nothing written
otherwise), while people holding the ``enact`` permission enact whenever they like.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from falcon import testing

from balrog_app.admin import scheduled_changes
from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from tests.app.admin.conftest import BACKENDS, REGISTRY

ALICE = "alice@example.com"      # admin, holds no role: schedules and edits
ERIN = "erin@example.com"        # a person who may enact (scheduled_change/enact), no role
RM1, RM2 = "rm1@example.com", "rm2@example.com"  # relman
QA = "qa@example.com"            # holds qa, not relman
AGENT = "balrogagent"            # the agent: system account, may enact
USERS = (ALICE, ERIN, RM1, RM2, QA, AGENT)

WHEN = 4102444800000             # 2100-01-01
LATER = 4133980800000            # 2101-01-01
OLD, NEW = "Firefox-60.0-build1", "Firefox-61.0-build1"
V2 = "Firefox-80.0-build1"
LOCALE = ".platforms.WINNT_x86_64-msvc.locales.de"


def blob(name: str, version: str, locales=("en-US",)) -> dict:
    """A small valid app release (schema 9)."""
    return {
        "name": name, "schema_version": 9, "hashFunction": "sha512", "appVersion": version,
        "displayVersion": version,
        "updateLine": [{"for": {}, "fields": {"detailsURL": "https://www.mozilla.org/notes/", "type": "minor"}}],
        "platforms": {"WINNT_x86_64-msvc": {"locales": {
            locale: {"buildID": "20190901000000", "appVersion": version, "displayVersion": version,
                     "completes": [{"from": "*", "filesize": 50000000, "hashValue": "0" * 64,
                                    "fileUrl": f"https://archive.mozilla.org/{version}/{locale}.complete.mar"}]}
            for locale in locales}}},
    }


class Api:
    """The whole admin app over one fresh storage; ``call`` authenticates as ``user``."""

    def __init__(self, url: str, due_check: bool = True):
        self.storage = REGISTRY.storage_for(url)
        seed(self.storage, permissions=[
            {"username": ALICE, "permission": "admin", "options": None},
            {"username": ERIN, "permission": "scheduled_change", "options": {"actions": ["enact"]}},
            {"username": RM1, "permission": "rule", "options": {"products": ["Firefox"]}},
            {"username": RM2, "permission": "rule", "options": {"products": ["Firefox"]}},
            {"username": RM2, "permission": "emergency_shutoff", "options": {"products": ["Firefox"]}},
            {"username": QA, "permission": "rule", "options": {"products": ["Firefox"]}},
            {"username": AGENT, "permission": "scheduled_change", "options": {"actions": ["enact"]}},
        ], roles=[{"username": RM1, "role": "relman"}, {"username": RM2, "role": "relman"},
                  {"username": QA, "role": "qa"}, {"username": AGENT, "role": "relman"}])
        self.ctx = AdminContext(self.storage, REGISTRY, StaticTokens({f"t-{u}": u for u in USERS}),
                                system_accounts=frozenset({AGENT}),
                                allowlisted_domains={"archive.mozilla.org": ["Firefox"]})
        setattr(self.ctx, scheduled_changes.DUE_CHECK, due_check)
        self.client = testing.TestClient(create_admin_app(self.ctx))

    def call(self, method: str, path: str, user: str | None = None, body: Any = None, query: str | None = None):
        headers = {"Authorization": f"Bearer t-{user}"} if user else {}
        return self.client.simulate_request(method, path, headers=headers, json=body, query_string=query)

    def ok(self, method: str, path: str, user: str | None = None, body: Any = None, query: str | None = None):
        result = self.call(method, path, user, body, query)
        assert result.status_code in (200, 201), (method, path, result.status_code, result.text)
        return result

    def base_history(self, table: str, key: dict) -> list[dict]:
        """The target table's history, newest first (for tables the admin API has no view of)."""
        with self.storage.session() as s:
            return s.history(table, key, versions_only=False)


@pytest.fixture(params=BACKENDS)
def api(request, tmp_path):
    opened = []

    def open_(due_check: bool = True) -> Api:
        opened.append(Api(request.param.format(tmp=tmp_path), due_check))
        return opened[-1]

    yield open_
    for a in opened:
        a.storage.close()


def protect(api: Api) -> None:
    """Two releases, a Firefox/release rule mapping the first, a shutoff, then the requirements:
    two relman signoffs for Firefox/release (rules, releases they map, shutoffs) and for Firefox
    permissions."""
    for name, version in ((OLD, "60.0"), (NEW, "61.0")):
        api.ok("POST", "/releases", ALICE, {"name": name, "product": "Firefox",
                                            "blob": json.dumps(blob(name, version))})
    api.ok("POST", "/rules", ALICE, {"priority": 100, "backgroundRate": 100, "update_type": "minor",
                                     "product": "Firefox", "channel": "release", "mapping": OLD})
    api.ok("POST", "/emergency_shutoff", ALICE, {"product": "Firefox", "channel": "release"})
    api.ok("POST", "/required_signoffs/product", ALICE,
           {"product": "Firefox", "channel": "release", "role": "relman", "signoffs_required": 2})
    api.ok("POST", "/required_signoffs/permissions", ALICE,
           {"product": "Firefox", "role": "relman", "signoffs_required": 2})


# --- one lifecycle, for every v1 kind ------------------------------------------------------------------
@dataclass
class Case:
    segment: str
    create: dict                          # the creation body (``when`` added)
    edit: dict                            # an edit's body (``sc_data_version`` added)
    enacted: Callable[[Api], None]        # asserts the change is visible
    written_by: Callable[[Api], str]      # who the target's history says wrote the change


def _rule_written_by(api: Api) -> str:
    return api.ok("GET", "/rules/1/revisions").json["rules"][0]["changed_by"]


def _rule_enacted(api: Api) -> None:
    rule = api.ok("GET", "/rules/1").json
    assert (rule["mapping"], rule["comment"], rule["data_version"]) == (NEW, "edited", 2)


def _release_enacted(api: Api) -> None:
    assert api.ok("GET", f"/releases/{OLD}").json["displayVersion"] == "60.0.1"


def _permission_enacted(api: Api) -> None:
    assert api.ok("GET", "/users/dave@example.com/permissions/release", ALICE).json["options"] == \
        {"products": ["Firefox"], "actions": ["modify"]}


def _permission_written_by(api: Api) -> str:
    return api.ok("GET", "/permissions/history", ALICE).json["Permissions"]["revisions"][0]["changed_by"]


def _requirement_enacted(segment: str) -> Callable[[Api], None]:
    def check(api: Api) -> None:
        rows = api.ok("GET", f"/required_signoffs/{segment}").json["required_signoffs"]
        assert [row["signoffs_required"] for row in rows] == [1]
    return check


def _requirement_written_by(segment: str, query: str) -> Callable[[Api], str]:
    def who(api: Api) -> str:
        return api.ok("GET", f"/required_signoffs/{segment}/revisions", query=query).json["required_signoffs"][0][
            "changed_by"]
    return who


def _shutoff_enacted(api: Api) -> None:
    assert api.call("GET", "/emergency_shutoff/Firefox/release").status_code == 404


def _release_edit() -> dict:
    edited = blob(OLD, "60.0")
    edited["displayVersion"] = "60.0.1"
    return {"data": json.dumps(edited), "data_version": 1}


CASES = [
    Case("rules",
         {"change_type": "update", "rule_id": 1, "data_version": 1, "mapping": NEW, "priority": 100,
          "backgroundRate": 100, "update_type": "minor", "product": "Firefox", "channel": "release"},
         {"data_version": 1, "comment": "edited", "when": LATER},
         _rule_enacted, _rule_written_by),
    Case("releases",
         {"change_type": "update", "name": OLD, "data_version": 1,
          "data": json.dumps({**blob(OLD, "60.0"), "displayVersion": "60.0b"})},
         _release_edit(),
         _release_enacted, lambda api: api.base_history("releases", {"name": OLD})[0]["changed_by"]),
    Case("permissions",
         {"change_type": "insert", "permission": "release", "username": "dave@example.com",
          "options": json.dumps({"products": ["Firefox"]})},
         {"options": json.dumps({"products": ["Firefox"], "actions": ["modify"]})},
         _permission_enacted, _permission_written_by),
    Case("required_signoffs/product",
         {"change_type": "update", "product": "Firefox", "channel": "release", "role": "relman",
          "signoffs_required": 1, "data_version": 1},
         {"data_version": 1, "when": LATER},
         _requirement_enacted("product"),
         _requirement_written_by("product", "product=Firefox&channel=release&role=relman")),
    Case("required_signoffs/permissions",
         {"change_type": "update", "product": "Firefox", "role": "relman", "signoffs_required": 1,
          "data_version": 1},
         {"data_version": 1, "when": LATER},
         _requirement_enacted("permissions"),
         _requirement_written_by("permissions", "product=Firefox&role=relman")),
    Case("emergency_shutoff",
         {"change_type": "delete", "product": "Firefox", "channel": "release", "data_version": 1},
         {"when": LATER},
         _shutoff_enacted,
         lambda api: api.base_history("emergency_shutoffs", {"product": "Firefox", "channel": "release"})[0][
             "changed_by"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.segment for c in CASES])
def test_lifecycle(api, case):
    api = api()
    protect(api)
    base = f"/scheduled_changes/{case.segment}"

    created = api.ok("POST", base, ALICE, {**case.create, "when": WHEN}).json
    sc_id = created["sc_id"]
    assert created["signoffs"] == {}  # alice holds no role: no automatic signoff
    one = f"{base}/{sc_id}"

    def listed() -> dict:
        return next(c for c in api.ok("GET", base, query="all").json["scheduled_changes"] if c["sc_id"] == sc_id)

    assert listed()["required_signoffs"] == {"relman": 2}

    # signing off: only for a holder of the role, never for a system account
    refused = api.call("POST", f"{one}/signoffs", QA, {"role": "relman"})
    assert (refused.status_code, refused.json["exception"]) == (403, f"{QA} cannot signoff with role 'relman'")
    refused = api.call("POST", f"{one}/signoffs", AGENT, {"role": "relman"})
    assert (refused.status_code, refused.json["exception"]) == (403, "System account cannot signoff")
    api.ok("POST", f"{one}/signoffs", RM1, {"role": "relman"})
    assert listed()["signoffs"] == {RM1: "relman"}

    # an edit by someone else clears the other users' signoffs
    edited = api.ok("POST", one, ALICE, {**case.edit, "sc_data_version": 1}).json
    assert edited == {"new_data_version": 2, "signoffs": {}}
    assert listed()["signoffs"] == {}

    # enacting needs every signoff
    refused = api.call("POST", f"{one}/enact", ERIN)
    assert (refused.status_code, refused.json["detail"], refused.json["exception"]) == \
        (400, "Signoff Required", "No Signoffs given")
    api.ok("POST", f"{one}/signoffs", RM1, {"role": "relman"})
    refused = api.call("POST", f"{one}/enact", ERIN)
    assert refused.json["exception"] == "Not enough signoffs for role 'relman'"
    api.ok("POST", f"{one}/signoffs", RM2, {"role": "relman"})
    assert listed()["signoffs"] == {RM1: "relman", RM2: "relman"}

    # the agent waits for the change's time; a person with the enact permission need not
    refused = api.call("POST", f"{one}/enact", AGENT)
    assert (refused.status_code, refused.json["detail"]) == (400, "Not due yet")
    assert listed()["sc_data_version"] == 2 and not listed()["complete"]
    assert api.ok("POST", f"{one}/enact", ERIN).json == {}
    done = listed()
    assert done["complete"] and done["required_signoffs"] == {} and done["scheduled_by"] == ALICE
    assert api.call("GET", base).json["scheduled_changes"] == []  # no longer pending
    case.enacted(api)

    # written as the scheduler, not as the enacter
    assert case.written_by(api) == ALICE
    if case.segment != "emergency_shutoff":  # (no revisions view for shutoff changes)
        revisions = api.ok("GET", f"{one}/revisions").json["revisions"]
        assert [(r["sc_data_version"], r["complete"], r["changed_by"]) for r in revisions] == \
            [(3, True, ALICE), (2, False, ALICE), (1, False, ALICE)]
    refused = api.call("POST", f"{one}/enact", ERIN)
    assert refused.json["exception"] == "Scheduled change already completed. Cannot enact now."


def test_an_editor_holding_the_role_keeps_their_own_signoff(api):
    api = api()
    protect(api)
    sc_id = api.ok("POST", "/scheduled_changes/emergency_shutoff", ALICE,
                   {"change_type": "delete", "product": "Firefox", "channel": "release", "data_version": 1,
                    "when": WHEN}).json["sc_id"]
    one = f"/scheduled_changes/emergency_shutoff/{sc_id}"
    api.ok("POST", f"{one}/signoffs", RM1, {"role": "relman"})
    # rm2 may delete Firefox shutoffs: editing makes them the scheduler, signed off automatically
    edited = api.ok("POST", one, RM2, {"sc_data_version": 1, "when": LATER}).json
    assert edited == {"new_data_version": 2, "signoffs": {RM2: "relman"}}
    change = api.ok("GET", "/scheduled_changes/emergency_shutoff").json["scheduled_changes"][0]
    assert (change["scheduled_by"], change["signoffs"]) == (RM2, {RM2: "relman"})


# --- v2 releases ------------------------------------------------------------------------------------------
def protect_v2(api: Api) -> None:
    """A v2 release mapped by the protected Firefox/release rule. (The rule is written through the
    storage: POST /rules only accepts mappings to v1 releases.)"""
    api.ok("PUT", f"/v2/releases/{V2}", ALICE, {"blob": blob(V2, "80.0", ("en-US", "de")), "product": "Firefox"})
    with api.storage.session(ALICE) as s:
        s.insert("rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                           "channel": "release", "mapping": V2})
    api.ok("POST", "/required_signoffs/product", ALICE,
           {"product": "Firefox", "channel": "release", "role": "relman", "signoffs_required": 2})


def _v2_listed(api: Api) -> dict:
    return next(r for r in api.ok("GET", "/v2/releases").json["releases"] if r["name"] == V2)


def test_v2_lifecycle(api):
    api = api()
    protect_v2(api)
    release = f"/v2/releases/{V2}"
    locale = {"buildID": "20200101000000", "appVersion": "80.0", "displayVersion": "80.0",
              "completes": [{"from": "*", "filesize": 1, "hashValue": "1" * 64,
                             "fileUrl": "https://archive.mozilla.org/80.0/de.complete.mar"}]}
    partial = {"blob": {"displayVersion": "80.0.1",
                        "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": locale}}}},
               "old_data_versions": {".": 1, "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}}}
    # without a time, the protected release cannot be changed
    refused = api.call("POST", release, ALICE, partial)
    assert (refused.status_code, refused.json["detail"]) == (400, "Signoff Required")

    scheduled = api.ok("POST", release, ALICE, {**partial, "when": WHEN}).json
    assert scheduled == {
        ".": {"sc_id": 1, "change_type": "update", "data_version": 1, "signoffs": {}, "when": WHEN},
        "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": {
            "sc_id": 1, "change_type": "update", "data_version": 1, "signoffs": {}, "when": WHEN}}}}}
    listed = _v2_listed(api)
    assert listed["required_signoffs"] == {"relman": 2}
    assert [(c.get("path"), c["sc_id"], c["change_type"], c["scheduled_by"]) for c in listed["scheduled_changes"]] \
        == [(None, 1, "update", ALICE), (LOCALE, 1, "update", ALICE)]
    assert all("data" not in c for c in listed["scheduled_changes"])
    shown = api.ok("GET", release).json
    assert shown["blob"]["displayVersion"] == "80.0" and shown["sc_blob"]["displayVersion"] == "80.0.1"
    assert shown["sc_data_versions"] == {".": 1, "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}}

    refused = api.call("PUT", f"{release}/signoff", QA, {"role": "relman"})
    assert (refused.status_code, refused.json["exception"]) == (403, f"{QA} cannot signoff with role 'relman'")
    refused = api.call("PUT", f"{release}/signoff", AGENT, {"role": "relman"})
    assert (refused.status_code, refused.json["exception"]) == (403, "System account cannot signoff")
    api.ok("PUT", f"{release}/signoff", RM1, {"role": "relman"})
    assert [c["signoffs"] for c in _v2_listed(api)["scheduled_changes"]] == [{RM1: "relman"}] * 2

    # scheduling the release again replaces the pending changes: an edit, so approvals reset
    again = api.ok("POST", release, ALICE, {**partial, "when": LATER}).json
    assert again["."] == {"sc_id": 1, "change_type": "update", "data_version": 2, "signoffs": {}, "when": LATER}
    assert [c["signoffs"] for c in _v2_listed(api)["scheduled_changes"]] == [{}, {}]

    refused = api.call("POST", f"{release}/enact", ERIN)
    assert (refused.status_code, refused.json["exception"]) == (400, "No Signoffs given")
    api.ok("PUT", f"{release}/signoff", RM1, {"role": "relman"})
    assert api.call("POST", f"{release}/enact", ERIN).json["exception"] == "Not enough signoffs for role 'relman'"
    api.ok("PUT", f"{release}/signoff", RM2, {"role": "relman"})
    refused = api.call("POST", f"{release}/enact", AGENT)
    assert (refused.status_code, refused.json["detail"]) == (400, "Not due yet")
    assert api.ok("GET", release).json["blob"]["displayVersion"] == "80.0"  # nothing written

    enacted = api.ok("POST", f"{release}/enact", ERIN)
    assert enacted.json is None
    shown = api.ok("GET", release).json
    assert shown["blob"]["displayVersion"] == "80.0.1"
    assert shown["blob"]["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"]["buildID"] == "20200101000000"
    assert shown["data_versions"] == {".": 2, "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 2, "en-US": 1}}}}
    assert (shown["sc_blob"], shown["sc_data_versions"]) == ({}, {})
    assert _v2_listed(api)["scheduled_changes"] == []
    assert api.base_history("releases_json", {"name": V2})[0]["changed_by"] == ALICE
    assert api.base_history("release_assets", {"name": V2, "path": LOCALE})[0]["changed_by"] == ALICE
    assert api.call("POST", f"{release}/enact", ERIN).status_code == 404  # nothing pending any more


# --- the agent's due check ------------------------------------------------------------------------------
def _due_soon() -> int:
    return int(time.time() * 1000) + 1500


def _wait_until(when: int) -> None:
    time.sleep(max(0.0, (when - time.time() * 1000) / 1000) + 0.05)


def test_agent_enacts_only_due_changes(api):
    api = api()
    protect(api)
    due = _due_soon()
    body = {"change_type": "update", "rule_id": 1, "data_version": 1, "mapping": NEW, "priority": 100,
            "backgroundRate": 100, "update_type": "minor", "product": "Firefox", "channel": "release"}
    sc_id = api.ok("POST", "/scheduled_changes/rules", ALICE, {**body, "when": due}).json["sc_id"]
    for signer in (RM1, RM2):
        api.ok("POST", f"/scheduled_changes/rules/{sc_id}/signoffs", signer, {"role": "relman"})
    before = api.ok("GET", f"/scheduled_changes/rules/{sc_id}").json["scheduled_change"]

    refused = api.call("POST", f"/scheduled_changes/rules/{sc_id}/enact", AGENT)
    assert refused.status_code == 400 and refused.headers["Content-Type"] == "application/json"
    assert refused.json["detail"] == "Not due yet"
    assert str(due) in refused.json["exception"] and AGENT in refused.json["exception"]
    # nothing written: neither the change nor the rule
    assert api.ok("GET", f"/scheduled_changes/rules/{sc_id}").json["scheduled_change"] == before
    assert api.ok("GET", "/rules/1").json["mapping"] == OLD
    assert api.ok("GET", f"/scheduled_changes/rules/{sc_id}/revisions").json["count"] == 1

    _wait_until(due)
    assert api.ok("POST", f"/scheduled_changes/rules/{sc_id}/enact", AGENT).json == {}
    assert api.ok("GET", "/rules/1").json["mapping"] == NEW
    assert api.ok("GET", "/rules/1/revisions").json["rules"][0]["changed_by"] == ALICE


def test_agent_due_check_for_v2_releases(api):
    api = api()
    protect_v2(api)
    due = _due_soon()
    api.ok("POST", f"/v2/releases/{V2}", ALICE,
           {"blob": {"displayVersion": "80.0.1"}, "old_data_versions": {".": 1}, "when": due})
    for signer in (RM1, RM2):
        api.ok("PUT", f"/v2/releases/{V2}/signoff", signer, {"role": "relman"})
    refused = api.call("POST", f"/v2/releases/{V2}/enact", AGENT)
    assert (refused.status_code, refused.json["detail"]) == (400, "Not due yet")
    assert str(due) in refused.json["exception"]
    assert _v2_listed(api)["scheduled_changes"][0]["sc_data_version"] == 1
    _wait_until(due)
    assert api.ok("POST", f"/v2/releases/{V2}/enact", AGENT).json is None
    assert api.ok("GET", f"/v2/releases/{V2}").json["blob"]["displayVersion"] == "80.0.1"


def test_people_with_the_enact_permission_need_not_wait(api):
    api = api()
    protect(api)
    sc_id = api.ok("POST", "/scheduled_changes/emergency_shutoff", ALICE,
                   {"change_type": "delete", "product": "Firefox", "channel": "release", "data_version": 1,
                    "when": WHEN}).json["sc_id"]
    for signer in (RM1, RM2):
        api.ok("POST", f"/scheduled_changes/emergency_shutoff/{sc_id}/signoffs", signer, {"role": "relman"})
    assert api.call("POST", f"/scheduled_changes/emergency_shutoff/{sc_id}/enact", AGENT).status_code == 400
    assert api.ok("POST", f"/scheduled_changes/emergency_shutoff/{sc_id}/enact", ERIN).json == {}


def test_without_the_setting_the_agent_enacts_early_as_the_reference(api):
    api = api(due_check=False)
    protect(api)
    sc_id = api.ok("POST", "/scheduled_changes/emergency_shutoff", ALICE,
                   {"change_type": "delete", "product": "Firefox", "channel": "release", "data_version": 1,
                    "when": WHEN}).json["sc_id"]
    for signer in (RM1, RM2):
        api.ok("POST", f"/scheduled_changes/emergency_shutoff/{sc_id}/signoffs", signer, {"role": "relman"})
    assert api.ok("POST", f"/scheduled_changes/emergency_shutoff/{sc_id}/enact", AGENT).json == {}


# --- who enacted a change ------------------------------------------------------------------------------------
def test_the_enactment_records_who_enacted_it(api):
    """The rule's history says the scheduler wrote the change (as the reference); the enactment
    says who enacted it. A refused enact records nothing."""
    api = api(due_check=False)
    protect(api)
    sc_id = api.ok("POST", "/scheduled_changes/rules", ALICE, {**CASES[0].create, "when": WHEN}).json["sc_id"]
    one = f"/scheduled_changes/rules/{sc_id}"
    api.ok("POST", f"{one}/signoffs", RM1, {"role": "relman"})

    missing = api.call("GET", f"{one}/enactment")  # pending
    assert (missing.status_code, missing.headers["Content-Type"], missing.json["detail"]) == \
        (404, "application/json", "Scheduled change was not enacted")
    refused = api.call("POST", f"{one}/enact", AGENT)
    assert refused.json["exception"] == "Not enough signoffs for role 'relman'"
    assert api.call("GET", f"{one}/enactment").status_code == 404
    with api.storage.session() as s:
        assert s.rows(scheduled_changes.ENACTMENTS) == []

    api.ok("POST", f"{one}/signoffs", RM2, {"role": "relman"})
    before = int(time.time() * 1000)
    assert api.ok("POST", f"{one}/enact", AGENT).json == {}
    after = int(time.time() * 1000)
    enactment = api.ok("GET", f"{one}/enactment").json  # no credentials needed, like the other reads
    assert {k: v for k, v in enactment.items() if k != "timestamp"} == \
        {"sc_id": sc_id, "segment": "rules", "enacted_by": AGENT}
    assert before <= enactment["timestamp"] <= after
    assert _rule_written_by(api) == ALICE
    with api.storage.session() as s:  # the enactment row itself is written by the enacter
        assert [c.changed_by for c in s.changes(scheduled_changes.ENACTMENTS, {"segment": "rules", "sc_id": sc_id})] \
            == [AGENT, AGENT]

    # unknown changes, ids of other kinds, ids that are not ids
    for path in ("/scheduled_changes/rules/999/enactment", f"/scheduled_changes/emergency_shutoff/{sc_id}/enactment",
                 "/scheduled_changes/rules/abc/enactment", "/scheduled_changes/rules/99999999999/enactment"):
        assert api.call("GET", path).status_code == 404, path
    assert api.call("GET", f"{one}/enactment", query="x=1").status_code == 400


def test_v2_enactments_are_recorded_per_change(api):
    """A v2 release's enact records each of its changes (base and locale: separate numbering)."""
    api = api(due_check=False)
    protect_v2(api)
    api.ok("POST", f"/v2/releases/{V2}", ALICE,
           {"blob": {"displayVersion": "80.0.1", "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": {
               "buildID": "20200101000000", "appVersion": "80.0", "displayVersion": "80.0"}}}}},
            "old_data_versions": {".": 1, "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}},
            "when": WHEN})
    api.ok("PUT", f"/v2/releases/{V2}/signoff", RM1, {"role": "relman"})
    assert api.call("POST", f"/v2/releases/{V2}/enact", ERIN).status_code == 400
    with api.storage.session() as s:
        assert s.rows(scheduled_changes.ENACTMENTS) == []
    api.ok("PUT", f"/v2/releases/{V2}/signoff", RM2, {"role": "relman"})
    api.ok("POST", f"/v2/releases/{V2}/enact", ERIN)
    with api.storage.session() as s:
        rows = s.rows(scheduled_changes.ENACTMENTS, order_by=("segment",))
    assert [(r["segment"], r["sc_id"], r["enacted_by"]) for r in rows] == \
        [("v2/releases", 1, ERIN), ("v2/releases/assets", 1, ERIN)]
    assert api.base_history("releases_json", {"name": V2})[0]["changed_by"] == ALICE
