"""Direct writes to rows with pending scheduled changes (balrog_app.admin.sc_merge;
scheduled-changes-and-agent.md §4.5), through HTTP with every admin family mounted, on memory://
and a SQLite file: a direct update of a permission is merged into its pending changes (columns
copied, ``base_data_version`` following the row, versions bumped on behalf of the scheduler, other
users' signoffs dropped), refused when it conflicts or when a change's time has passed; deleting
a permission or a shutoff with a pending change is refused.

(Rules do the same in balrog_app.admin.rules; the recorded transcript sc-rules-lifecycle covers
them.)"""
from __future__ import annotations

import json

import pytest
from falcon import testing

from balrog_app.admin import sc_merge
from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from tests.app.admin.conftest import ADMIN, ALICE, BACKENDS, BOB, DAVE, REGISTRY

AGENT = "balrogagent"
WHEN = 4102444800000  # 2100-01-01
FIREFOX = json.dumps({"products": ["Firefox"]})
BOTH = json.dumps({"products": ["Firefox", "Thunderbird"]})
THUNDERBIRD = json.dumps({"products": ["Thunderbird"]})


@pytest.fixture(params=BACKENDS)
def api(request, tmp_path):
    """``api(method, path, user, json=None, query=None)`` against a fresh database: alice schedules
    permission changes (and holds relman), bob holds qa, dave is the user whose permissions change,
    an admin enacts (the agent account may only enact changes that are due)."""
    storage = REGISTRY.storage_for(request.param.format(tmp=tmp_path))
    seed(storage, permissions=[
        {"username": ADMIN, "permission": "admin", "options": None},
        {"username": ALICE, "permission": "permission", "options": None},
        {"username": ALICE, "permission": "emergency_shutoff", "options": None},
        {"username": BOB, "permission": "rule", "options": None},
        {"username": DAVE, "permission": "rule", "options": {"products": ["Firefox"]}},
        {"username": DAVE, "permission": "release", "options": None},
        {"username": AGENT, "permission": "scheduled_change", "options": {"actions": ["enact"]}},
    ], roles=[{"username": ALICE, "role": "relman"}, {"username": BOB, "role": "qa"}])
    names = [ADMIN, ALICE, BOB, DAVE, AGENT]
    ctx = AdminContext(storage, REGISTRY, StaticTokens({f"t-{n}": n for n in names}),
                       system_accounts=frozenset({AGENT}))
    client = testing.TestClient(create_admin_app(ctx))

    def call(method, path, user=None, json=None, query=None):
        headers = {"Authorization": f"Bearer t-{user}"} if user else {}
        return client.simulate_request(method, path, headers=headers, json=json, query_string=query)

    yield call
    storage.close()


def schedule(api, change_type: str, permission: str, **fields) -> int:
    body = {"change_type": change_type, "when": WHEN, "permission": permission, "username": DAVE, **fields}
    answer = api("POST", "/scheduled_changes/permissions", ALICE, body)
    assert answer.status_code == 200, answer.json
    return answer.json["sc_id"]


def scheduled(api, sc_id: int) -> dict:
    """The change as the list shows it (permission changes have no single-change GET)."""
    listed = api("GET", "/scheduled_changes/permissions", query="all=1").json["scheduled_changes"]
    return next(sc for sc in listed if sc["sc_id"] == sc_id)


def permission_row(api, kind: str) -> dict:
    return api("GET", f"/users/{DAVE}/permissions/{kind}", ADMIN).json


def sign(api, sc_id: int, user: str, role: str) -> None:
    assert api("POST", f"/scheduled_changes/permissions/{sc_id}/signoffs", user, {"role": role}).json == {}


def test_an_update_is_merged_into_the_pending_change_on_behalf_of_its_scheduler(api):
    # dave's unrestricted ``release`` grant is scheduled for deletion; approvals come in.
    sc_id = schedule(api, "delete", "release", data_version=1)
    sign(api, sc_id, ALICE, "relman")
    sign(api, sc_id, BOB, "qa")
    # An admin restricts the grant directly in the meantime: the change does not touch ``options``,
    # so the edit is merged.
    answer = api("POST", f"/users/{DAVE}/permissions/release", ADMIN, {"options": FIREFOX, "data_version": 1})
    assert (answer.status_code, answer.json) == (200, {"new_data_version": 2})
    sc = scheduled(api, sc_id)
    assert sc["options"] == {"products": ["Firefox"]}  # the changed column, copied
    assert sc["data_version"] == 2  # base_data_version follows the row
    assert sc["sc_data_version"] == 2  # a regular edit of the change...
    assert sc["scheduled_by"] == ALICE  # ...made on behalf of its scheduler, who keeps it
    assert sc["signoffs"] == {ALICE: "relman"}  # everybody else's approval is gone
    revisions = api("GET", f"/scheduled_changes/permissions/{sc_id}/revisions").json
    assert revisions["count"] == 2
    assert (revisions["revisions"][0]["changed_by"], revisions["revisions"][0]["sc_data_version"]) == (ALICE, 2)
    # The change still applies to the row as it is now.
    assert api("POST", f"/scheduled_changes/permissions/{sc_id}/enact", ADMIN).json == {}
    assert api("GET", f"/users/{DAVE}/permissions/release", ADMIN).status_code == 404


def test_an_update_that_changes_nothing_still_resets_the_approvals(api):
    sc_id = schedule(api, "update", "rule", options=BOTH, data_version=1)
    sign(api, sc_id, BOB, "qa")
    answer = api("PUT", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": FIREFOX, "data_version": 1})
    assert answer.json == {"new_data_version": 2}
    sc = scheduled(api, sc_id)
    assert (sc["options"], sc["data_version"], sc["sc_data_version"], sc["signoffs"]) == \
        ({"products": ["Firefox", "Thunderbird"]}, 2, 2, {})


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_conflicting_update_is_refused_and_nothing_is_written(api, method):
    sc_id = schedule(api, "update", "rule", options=BOTH, data_version=1)
    sign(api, sc_id, BOB, "qa")
    answer = api(method, f"/users/{DAVE}/permissions/rule", ADMIN, {"options": THUNDERBIRD, "data_version": 1})
    assert answer.status_code == 400
    assert answer.json == {"type": "about:blank", "title": "Bad Request", "detail": "UpdateMergeError", "status": 400,
                           "exception": f"Couldn't perform the request {method} due to merge error. Is there a "
                                        "scheduled change that conflicts with yours?"}
    assert permission_row(api, "rule") == {"options": {"products": ["Firefox"]}, "data_version": 1}
    sc = scheduled(api, sc_id)
    assert (sc["sc_data_version"], sc["data_version"], sc["signoffs"]) == (1, 1, {BOB: "qa"})


def test_an_update_to_the_scheduled_value_is_not_a_conflict(api):
    sc_id = schedule(api, "update", "rule", options=BOTH, data_version=1)
    answer = api("POST", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": BOTH, "data_version": 1})
    assert answer.json == {"new_data_version": 2}
    sc = scheduled(api, sc_id)
    assert (sc["options"], sc["data_version"], sc["sc_data_version"]) == \
        ({"products": ["Firefox", "Thunderbird"]}, 2, 2)


def test_a_column_a_scheduled_deletion_leaves_unset_conflicts(api):
    # A scheduled deletion keeps only the key: the stored null ``options`` differ from dave's
    # restricted grant, so the change counts as changing them (as in the reference).
    schedule(api, "delete", "rule", data_version=1)
    answer = api("POST", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": BOTH, "data_version": 1})
    assert (answer.status_code, answer.json["detail"]) == (400, "UpdateMergeError")


def test_once_the_change_is_due_every_direct_update_fails_until_it_is_enacted(api, monkeypatch):
    sc_id = schedule(api, "update", "rule", options=BOTH, data_version=1)
    monkeypatch.setattr(sc_merge, "_now_ms", lambda: WHEN + 1)  # the agent has not come round yet
    answer = api("POST", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": FIREFOX, "data_version": 1})
    assert answer.status_code == 400
    assert answer.json == {"type": "about:blank", "title": "Bad Request", "detail": "Unknown error", "status": 400,
                           "exception": "Cannot schedule changes in the past"}
    assert permission_row(api, "rule")["data_version"] == 1
    assert api("POST", f"/scheduled_changes/permissions/{sc_id}/enact", ADMIN).json == {}
    answer = api("POST", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": FIREFOX, "data_version": 2})
    assert answer.json == {"new_data_version": 3}


def test_completed_changes_and_other_rows_changes_are_left_alone(api):
    done = schedule(api, "update", "rule", options=BOTH, data_version=1)
    assert api("POST", f"/scheduled_changes/permissions/{done}/enact", ADMIN).json == {}
    other = schedule(api, "update", "release", options=FIREFOX, data_version=1)
    assert api("POST", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": None, "data_version": 2}).json == \
        {"new_data_version": 3}
    completed = scheduled(api, done)
    assert (completed["complete"], completed["sc_data_version"], completed["data_version"]) == (True, 2, 1)
    assert scheduled(api, other)["sc_data_version"] == 1


def test_a_permission_with_a_pending_change_cannot_be_deleted(api):
    sc_id = schedule(api, "update", "rule", options=BOTH, data_version=1)
    answer = api("DELETE", f"/users/{DAVE}/permissions/rule", ADMIN, query="data_version=1")
    assert answer.status_code == 400
    assert answer.json == {"type": "about:blank", "title": "Bad Request", "detail": "ChangeScheduledError",
                           "status": 400, "exception": "Couldn't perform the request DELETE due a conflict with a "
                                                       "scheduled change. Cannot delete rows that have changes "
                                                       "scheduled."}
    # Once the change is cancelled the row can go.
    assert api("DELETE", f"/scheduled_changes/permissions/{sc_id}", ALICE, query="data_version=1").json == {}
    assert api("DELETE", f"/users/{DAVE}/permissions/rule", ADMIN, query="data_version=1").status_code == 200


def test_a_shutoff_with_a_pending_deletion_cannot_be_deleted_directly(api):
    assert api("POST", "/emergency_shutoff", ALICE, {"product": "Firefox", "channel": "beta"}).status_code == 201
    answer = api("POST", "/scheduled_changes/emergency_shutoff", ALICE,
                 {"change_type": "delete", "when": WHEN, "product": "Firefox", "channel": "beta", "data_version": 1})
    assert answer.json == {"sc_id": 1, "signoffs": {}}
    answer = api("DELETE", "/emergency_shutoff/Firefox/beta", ALICE, query="data_version=1")
    assert (answer.status_code, answer.json["detail"]) == (400, "ChangeScheduledError")
    assert api("DELETE", "/scheduled_changes/emergency_shutoff/1", ALICE, query="data_version=1").json == {}
    assert api("DELETE", "/emergency_shutoff/Firefox/beta", ALICE, query="data_version=1").status_code == 200
