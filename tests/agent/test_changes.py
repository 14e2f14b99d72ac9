"""Reading the admin API's JSON (scheduled-changes-and-agent.md §8.2, §8.4): conditions,
signoffs still missing, the reference's processing order, v2 releases as one change."""
from __future__ import annotations

import pytest

from balrog_app.agent.changes import MalformedChange, missing_signoffs, ordered, v1_change, v2_change


def test_missing_signoffs_counts_signoffs_per_role():
    assert missing_signoffs({"relman": 2, "qa": 1}, {"bob": "relman", "dave": "qa"}) == {"relman": 1}
    assert missing_signoffs({"relman": 2}, {"bob": "relman", "carol": "relman", "dave": "qa"}) == {}
    assert missing_signoffs(None, None) == {}  # missing keys are empty (§8.2)
    with pytest.raises(MalformedChange):
        missing_signoffs({"relman": "two"}, {})


def test_v1_change_conditions_all_of():
    change = v1_change("rules", {
        "sc_id": 4, "sc_data_version": 3, "when": 1000, "change_type": "update", "scheduled_by": "alice",
        "telemetry_product": None, "telemetry_channel": None, "telemetry_uptake": None,
        "conditions": {"uptake": {"product": "Firefox", "channel": "release", "target": 60},
                       "error_rate": {"metric": "crash_rate", "threshold": 1}},
        "signoffs": {"bob": "relman"}, "required_signoffs": {"relman": 1}})
    assert change.key == "rules/4" and change.version == 3
    assert change.conditions == (("time", {"when": 1000}),
                                 ("uptake", {"product": "Firefox", "channel": "release", "target": 60}),
                                 ("error_rate", {"metric": "crash_rate", "threshold": 1}))
    assert change.missing_signoffs == {}


def test_reference_telemetry_columns_are_the_uptake_condition():
    change = v1_change("rules", {"sc_id": 1, "when": None, "telemetry_product": "Firefox",
                                 "telemetry_channel": "release", "telemetry_uptake": 50000})
    assert change.conditions == (("uptake", {"product": "Firefox", "channel": "release", "target": 50000}),)


def test_no_conditions_at_all():
    assert v1_change("permissions", {"sc_id": 1, "when": None}).conditions == ()


@pytest.mark.parametrize("item", [{"when": 1}, {"sc_id": "1"}, {"sc_id": 1, "conditions": ["uptake"]},
                                  {"sc_id": 1, "conditions": {"uptake": 50}}, "not an object"])
def test_malformed_items_are_refused(item):
    with pytest.raises(MalformedChange):
        v1_change("rules", item)


def test_release_blobs_are_not_carried_into_heads_ups():
    change = v1_change("releases", {"sc_id": 2, "when": 1, "name": "Firefox-61.0", "data": {"platforms": {}}})
    assert change.details == {"sc_id": 2, "when": 1, "name": "Firefox-61.0"}


def test_rules_are_processed_latest_when_first_then_highest_priority():
    items = [{"sc_id": 1, "when": 10, "priority": 5}, {"sc_id": 2, "when": 20, "priority": 1},
             {"sc_id": 3, "when": 10, "priority": 50}, {"sc_id": 4, "when": 10, "priority": None},
             {"sc_id": 5, "when": None, "priority": 1}]
    assert [i["sc_id"] for i in ordered("rules", items)] == [2, 3, 1, 4, 5]
    assert [i["sc_id"] for i in ordered("permissions", items)] == [1, 2, 3, 4, 5]


def test_v2_release_is_one_change_over_all_its_pending_changes():
    release = {"name": "Firefox-61.0-build1", "required_signoffs": {"relman": 2},
               "scheduled_changes": [
                   {"sc_id": 7, "sc_data_version": 1, "when": 100, "change_type": "update", "scheduled_by": "alice",
                    "signoffs": {"bob": "relman", "carol": "relman"}},
                   {"sc_id": 3, "sc_data_version": 2, "path": "WINNT/de", "when": 200, "change_type": "insert",
                    "scheduled_by": "alice", "signoffs": {"bob": "relman"}}]}
    change = v2_change(release)
    assert change.key == "v2/releases/Firefox-61.0-build1"
    assert change.conditions == (("time", {"when": 100}), ("time", {"when": 200}))
    assert change.missing_signoffs == {"relman": 1}  # every pending change must be signed off
    assert change.version == ((7, 1, None), (3, 2, "WINNT/de"))
    assert v2_change({"name": "idle", "scheduled_changes": []}) is None
