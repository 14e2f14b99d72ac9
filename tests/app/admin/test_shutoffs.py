"""Emergency shutoff (balrog_app.admin.shutoffs): the recorded transcript ``emergency-shutoff``
replayed in process on memory:// and a SQLite file. Steps 22–27 and 29 go through the scheduled
changes (another family): the deletion the agent enacts there is made directly in the storage."""
from __future__ import annotations

from tests.app.admin.conftest import ADMIN

SCHEDULED = {22, 23, 24, 25, 26, 27, 29}


def enacted_deletion(r):
    """What steps 22–27 leave behind: Firefox/release deleted by its scheduler (alice)."""
    with r.storage.session("alice@example.com") as s:
        s.delete("emergency_shutoffs", {"product": "Firefox", "channel": "release"}, 1)


def test_emergency_shutoff_transcript(replay):
    r = replay("emergency-shutoff")
    ran = r.run([i for i in range(len(r.transcript.steps)) if i not in SCHEDULED], before={28: enacted_deletion})
    assert len(ran) == 25


def test_listing_is_in_creation_order_and_head_has_no_body(app):
    for channel in ("release", "beta", "aurora"):
        assert app("POST", "/emergency_shutoff", ADMIN, {"product": "Firefox", "channel": channel}).status_code == 201
    listed = app("GET", "/emergency_shutoff").json
    assert [s["channel"] for s in listed["shutoffs"]] == ["release", "beta", "aurora"]
    assert app("DELETE", "/emergency_shutoff/Firefox/release", ADMIN, query="data_version=1").status_code == 200
    assert app("POST", "/emergency_shutoff", ADMIN, {"product": "Firefox", "channel": "release"}).status_code == 201
    assert [s["channel"] for s in app("GET", "/emergency_shutoff").json["shutoffs"]] == ["beta", "aurora", "release"]
    head = app("HEAD", "/emergency_shutoff")
    assert head.status_code == 200 and head.text == ""


def test_signoff_requirements_follow_the_channel_glob(app):
    app("POST", "/required_signoffs/product", ADMIN,
        {"product": "Firefox", "channel": "release-cck", "role": "relman", "signoffs_required": 1})
    for channel in ("release*", "beta"):
        app("POST", "/emergency_shutoff", ADMIN, {"product": "Firefox", "channel": channel})
    refused = app("DELETE", "/emergency_shutoff/Firefox/release*", ADMIN, query="data_version=1")
    assert (refused.status_code, refused.json["exception"]) == (400, "No Signoffs given")
    assert app("DELETE", "/emergency_shutoff/Firefox/beta", ADMIN, query="data_version=1").status_code == 200


def test_a_pending_scheduled_deletion_blocks_the_direct_one(app):
    app("POST", "/emergency_shutoff", ADMIN, {"product": "Firefox", "channel": "beta"})
    with app.storage.session(ADMIN) as s:
        s.insert("emergency_shutoffs_scheduled_changes", {
            "scheduled_by": ADMIN, "complete": False, "change_type": "delete", "base_product": "Firefox",
            "base_channel": "beta", "base_data_version": 1})
    refused = app("DELETE", "/emergency_shutoff/Firefox/beta", ADMIN, query="data_version=1")
    assert refused.status_code == 400 and refused.json["detail"] == "ChangeScheduledError"


def test_malformed_input_is_never_a_500(app):
    for body in ([], "x", {"product": None, "channel": "a"}, {"product": "F", "channel": "a", "comment": 5},
                 {"product": "F" * 1000, "channel": "a"}, '{"product": "\\ud800", "channel": "a"}'):
        answer = app("POST", "/emergency_shutoff", ADMIN, body)
        assert answer.status_code == 400, body
    assert app("DELETE", "/emergency_shutoff/Firefox/beta", ADMIN, query="data_version=one").status_code == 400
    assert app("GET", "/emergency_shutoff", query="product=Firefox").status_code == 400
