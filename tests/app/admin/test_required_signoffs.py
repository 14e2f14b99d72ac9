"""Required signoffs (balrog_app.admin.required_signoffs): the recorded transcript
``required-signoffs-product`` replayed in process on memory:// and a SQLite file (steps 0 and 18–26
need the releases, rules and scheduled-change families), and the required-signoff steps of
``sc-permissions-and-required-signoffs`` with the scheduled changes those steps rely on written
directly into the storage, which exercises the scheduled-change half of the history views."""
from __future__ import annotations

from tests.app.admin.conftest import ADMIN, BOB

OTHER_FAMILIES = {0, 18, 19, 20, 21, 22, 23, 24, 25, 26}
WHEN = 4102444800000
ALICE = "alice@example.com"


def test_required_signoffs_product_transcript(replay):
    r = replay("required-signoffs-product")
    ran = r.run([i for i in range(len(r.transcript.steps)) if i not in OTHER_FAMILIES])
    assert len(ran) == 20


# --- sc-permissions-and-required-signoffs: what the scheduled-change family would have written ------------
def _schedule(s, table: str, change_type: str, **base) -> int:
    sc = s.insert(f"{table}_scheduled_changes", {"scheduled_by": ALICE, "complete": False, "change_type": change_type,
                                                 **{f"base_{k}": v for k, v in base.items()}})["sc_id"]
    s.insert(f"{table}_scheduled_changes_conditions", {"sc_id": sc, "when": WHEN})
    return sc


def _complete(s, table: str, sc: int, version: int) -> None:
    s.update(f"{table}_scheduled_changes", {"sc_id": sc}, {"complete": True}, version)
    s.update(f"{table}_scheduled_changes_conditions", {"sc_id": sc}, {}, version)


def permission_insert_enacted(r):  # steps 4–7
    with r.storage.session(ALICE) as s:
        sc = _schedule(s, "permissions", "insert", permission="release", username="dave@example.com",
                       options={"products": ["Firefox"]})
        s.insert("permissions", {"permission": "release", "username": "dave@example.com",
                                 "options": {"products": ["Firefox"]}})
        _complete(s, "permissions", sc, 1)


def requirement_update_enacted(r):  # steps 16–19
    key = {"product": "Firefox", "channel": "release", "role": "relman"}
    with r.storage.session(ALICE) as s:
        sc = _schedule(s, "product_req_signoffs", "update", **key, signoffs_required=2, data_version=1)
        s.update("product_req_signoffs", key, {"signoffs_required": 2}, 1)
        _complete(s, "product_req_signoffs", sc, 1)


def requirement_delete_enacted(r):  # steps 22–26
    key = {"product": "Firefox", "channel": "release", "role": "relman"}
    with r.storage.session(ALICE) as s:
        sc = _schedule(s, "product_req_signoffs", "delete", **key, data_version=2)
        s.delete("product_req_signoffs", key, 2)
        _complete(s, "product_req_signoffs", sc, 1)


def test_sc_permissions_and_required_signoffs_transcript_steps(replay):
    r = replay("sc-permissions-and-required-signoffs")
    r.run([0, 1, 2, 3, 8, 15, 20, 21, 27, 28],
          before={8: permission_insert_enacted, 20: requirement_update_enacted, 27: requirement_delete_enacted})


# --- rules the transcripts do not reach -------------------------------------------------------------------
def test_permissions_requirements(app):
    body = {"product": "Firefox", "role": "relman", "signoffs_required": 2}
    assert app("POST", "/required_signoffs/permissions", ADMIN, body).json == {"new_data_version": 1}
    again = app("POST", "/required_signoffs/permissions", ADMIN, body)
    assert again.json["exception"] == "Required Signoffs cannot be directly modified"
    other_role = app("POST", "/required_signoffs/permissions", ADMIN, {**body, "role": "qa", "signoffs_required": 1})
    assert other_role.json["exception"] == "No Signoffs given"
    too_many = app("POST", "/required_signoffs/permissions", ADMIN, {**body, "product": "Thunderbird",
                                                                     "signoffs_required": 3})
    assert too_many.json["detail"] == "('Cannot require 3 signoffs for Thunderbird - only 2 users hold the relman role',)"
    listed = app("GET", "/required_signoffs/permissions", query="product=Firefox").json
    assert listed == {"count": 1, "required_signoffs": [{"product": "Firefox", "role": "relman",
                                                         "signoffs_required": 2, "data_version": 1}]}
    revisions = app("GET", "/required_signoffs/permissions/revisions", query="product=Firefox&role=relman").json
    assert revisions["count"] == 1 and revisions["required_signoffs"][0]["change_id"] == 2
    missing = app("GET", "/required_signoffs/permissions/revisions", query="product=Firefox")
    assert missing.status_code == 400 and missing.headers["content-type"] == "application/problem+json"
    history = app("GET", "/required_signoffs/permissions/history", query="role=relman&product=Firefox").json
    assert history["Permissions Required Signoffs"]["count"] == 1
    assert history["Permissions Required Signoffs Scheduled Change"] == {"count": 0, "revisions": []}
    refused = app("DELETE", "/required_signoffs/permissions", query="anything=1")
    assert (refused.status_code, refused.json["exception"]) == (400, "Required Signoffs cannot be directly deleted.")


def test_product_restricted_permission_and_admin_cannot_create(app):
    answer = app("POST", "/required_signoffs/product", "restricted@example.com",
                 {"product": "Firefox", "channel": "beta", "role": "relman", "signoffs_required": 1})
    assert answer.status_code == 403
    assert answer.json["exception"] == "restricted@example.com is not allowed to create new Required Signoffs."
    assert app("POST", "/required_signoffs/product", None,
               {"product": "Firefox", "channel": "beta", "role": "relman", "signoffs_required": 1}).status_code == 401


def test_malformed_input_is_never_a_500(app):
    for body in ([], {"product": 1, "channel": "a", "role": "r", "signoffs_required": 1},
                 {"product": "F", "channel": "a", "role": "r", "signoffs_required": "two"},
                 {"product": "F", "channel": "a", "role": "r", "signoffs_required": True},
                 {"product": "F", "channel": "a", "role": "r" * 500, "signoffs_required": 1}):
        assert app("POST", "/required_signoffs/product", ADMIN, body).status_code == 400, body
    for query in ("page=x", "limit=0", "change_id=a", "timestamp_from=soon", "bogus=1"):
        assert app("GET", "/required_signoffs/product/history", query=query).status_code == 400, query
    assert app("GET", "/required_signoffs/product", query="role=relman").status_code == 400
    assert app("GET", "/required_signoffs/product/revisions", query="product=F&channel=c&role=r&page=0").status_code \
        == 400


def test_history_filters_and_paging(app):
    for channel in ("release", "beta", "aurora"):
        app("POST", "/required_signoffs/product", ADMIN,
            {"product": "Firefox", "channel": channel, "role": "relman", "signoffs_required": 1})
    page = app("GET", "/required_signoffs/product/history", query="limit=2&page=2").json
    assert page["Product Required Signoffs"]["count"] == 3
    assert [r["channel"] for r in page["Product Required Signoffs"]["required_signoffs"]] == ["release"]
    by_id = app("GET", "/required_signoffs/product/history", query="change_id=4").json
    assert [r["channel"] for r in by_id["Product Required Signoffs"]["required_signoffs"]] == ["beta"]
    stamp = by_id["Product Required Signoffs"]["required_signoffs"][0]["timestamp"]
    since = app("GET", "/required_signoffs/product/history", query=f"timestamp_from={stamp}").json
    assert {r["channel"] for r in since["Product Required Signoffs"]["required_signoffs"]} >= {"beta", "aurora"}
    nobody = app("GET", "/required_signoffs/product/history", query=f"changed_by={BOB}").json
    assert nobody["Product Required Signoffs"] == {"count": 0, "required_signoffs": []}
