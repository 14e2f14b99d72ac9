"""Explain and simulate (balrog_engine.explain): the reasons given per column, the answers and their
shares, preview before/after, the lint's proofs (true positives, and no report for rules that only
partly overlap), and — the point of reusing the server's code — that what an explanation says is
served is exactly what the public server answers, for every request of every conformance scenario."""
from __future__ import annotations

import json

import pytest

from balrog_app.public import create_app
from balrog_engine import (
    ChangeError, Engine, ExplainInputError, ServerState, UnparsableRequest, explain, lint, load_plugins, parse_change,
    preview,
)
from balrog_engine.explain import MAX_PREVIEW_URLS, covers
from balrog_engine.query import UpdateQuery
from balrog_engine.rules import RuleError, RuleIndex
from balrog_engine.storage import normalise_rule
from balrog_engine.testing import update_url
from tests.conformance.harness import call_wsgi, scenario_files

REGISTRY = load_plugins()
HOST = "http://download.example.com"
CONFIG = {"allowlisted_domains": {"download.example.com": ["Firefox"]}}


def release(name: str, version: str = "60.0", build_id: str = "20180101000000", product: str = "Firefox") -> dict:
    """A schema-1 release for WINNT_x86_64-msvc / en-US."""
    return {"name": name, "product": product, "data": {
        "name": name, "schema_version": 1, "appv": version, "extv": version, "hashFunction": "sha512",
        "platforms": {"WINNT_x86_64-msvc": {"buildID": build_id, "locales": {"en-US": {"complete": {
            "filesize": "5", "from": "*", "hashValue": "5", "fileUrl": f"{HOST}/{name}.mar"}}}}}}}


def rule(rule_id: int, priority: int = 100, mapping: str | None = "Firefox-60.0", **columns) -> dict:
    row = {"rule_id": rule_id, "priority": priority, "mapping": mapping, "backgroundRate": 100,
           "update_type": "minor", "product": "Firefox", "data_version": 1}
    row.update(columns)
    return row


RELEASES = [release("Firefox-60.0"), release("Firefox-61.0", "61.0", "20180601000000"),
            release("Firefox-59.0", "59.0", "20171201000000")]


def state_of(rules, releases=RELEASES, **extra) -> ServerState:
    engine = Engine.from_dataset({"rules": rules, "releases": releases, "config": CONFIG, **extra}, REGISTRY)
    return ServerState.from_storage(engine.storage, engine.registry)


URL = update_url(version="50.0")  # Firefox 50.0, release, WINNT_x86_64-msvc, en-US, ISET:SSE4_2,MEM:16384


# --- the parsed query ---------------------------------------------------------------------------------
def test_the_query_is_what_the_server_parses():
    url = update_url(version="50.0", channel="release-cck-partner", system_capabilities="ISET:SSE3,MEM:4096,JAWS:1",
                     force="-1", mig64="1")
    query = explain(state_of([rule(1)]), url).to_json()["query"]
    assert query["kind"] == "xml" and query["protocol"] == "6"
    assert (query["product"], query["version"], query["channel"], query["fallbackChannel"]) == \
        ("Firefox", "50.0", "release-cck-partner", "release")
    assert (query["instructionSet"], query["memory"], query["jaws"], query["mig64"], query["force"]) == \
        ("SSE3", 4096, True, True, "-1")
    assert query["osVersion"] == "Windows_NT 10.0" and query["headerArchitecture"] == "Intel"


def test_a_full_url_and_the_user_agent_are_taken_as_the_server_takes_them():
    url = "https://aus5.example.com" + update_url(version="50.0", build_target="Darwin_x86_64-gcc3")
    explanation = explain(state_of([rule(1, headerArchitecture="PPC")]), url, user_agent="Firefox (PPC Mac)")
    assert explanation.request.query.headerArchitecture == "PPC"
    assert explanation.matched_rule == 1


# --- the reason for each column ------------------------------------------------------------------------
# (column, rule value that the default request fails, the request's value)
FAILING = [
    ("product", "Thunderbird", "Firefox"),
    ("buildTarget", "Darwin_x86_64-gcc3", "WINNT_x86_64-msvc"),
    ("headerArchitecture", "PPC", "Intel"),
    ("distVersion", "partner-1", "default"),
    ("channel", "beta", "release"),
    ("version", ">=60.0", "50.0"),
    ("buildID", "<20100101000000", "20200101000000"),
    ("memory", "<=8000", 16384),
    ("osVersion", "Darwin,Windows_NT 6", "Windows_NT 10.0"),
    ("instructionSet", "SSE2,SSE3", "SSE4_2"),
    ("distribution", "partner", "default"),
    ("locale", "de,fr", "en-US"),
    ("mig64", True, None),
    ("jaws", False, None),
]


@pytest.mark.parametrize("column,value,got", FAILING, ids=[c for c, _, _ in FAILING])
def test_each_column_gives_its_reason(column, value, got):
    state = state_of([rule(1, 100, **{column: value}), rule(2, 10, mapping="Firefox-61.0")])
    explanation = explain(state, URL)
    first, second = explanation.rules
    assert (first.rule_id, first.status) == (1, "no match")
    reason = first.reason
    assert (reason.field, reason.rule_value, reason.request_value) == (column, value, got)
    assert reason.text.startswith(f"{column}:")
    shown = str(value).lower() if isinstance(value, bool) else value
    assert str(shown).split(",")[0] in reason.text
    assert (second.rule_id, second.status, second.reason) == (2, "selected", None)
    assert explanation.matched_rule == 2
    # The same rule matches once the request has what it asks for: the reason named the only obstacle.
    assert explain(state_of([rule(1, 100)]), URL).rules[0].status == "selected"


def test_the_first_failing_column_in_the_servers_order_is_named():
    state = state_of([rule(1, locale="de", channel="beta", version=">=60.0")])
    assert explain(state, URL).rules[0].reason.field == "channel"
    state = state_of([rule(1, locale="de", version=">=60.0", buildTarget="Linux_x86_64-gcc3")])
    assert explain(state, URL).rules[0].reason.field == "buildTarget"


def test_reasons_say_when_the_request_has_no_value():
    json_url = "/json/1/Firefox/50.0/WINNT_x86_64-msvc/release/update.json"
    state = state_of([rule(1, locale="en-US"), rule(2, 50, headerArchitecture="Intel")])
    first, second = explain(state, json_url).rules
    assert first.reason.request_value is None and "JSON requests carry no locale" in first.reason.text
    assert "JSON requests carry no architecture" in second.reason.text
    v2 = "/update/2/Firefox/50.0/20200101000000/WINNT_x86_64-msvc/en-US/release/Windows_NT%2010.0/update.xml"
    assert "only /update protocols 3 to 6" in explain(state_of([rule(1, distVersion="d")]), v2).rules[0].reason.text


def test_evaluation_order_and_statuses():
    state = state_of([rule(5, 100), rule(3, 100, mapping="Firefox-61.0"), rule(9, 200, channel="beta"),
                      rule(1, 50)])
    explanation = explain(state, URL)
    assert [(v.rule_id, v.status) for v in explanation.rules] == [
        (9, "no match"), (3, "selected"), (5, "matched"), (1, "matched")]
    assert explanation.matched_rule == 3 and explanation.answer.outcomes[0].release == "Firefox-61.0"


def test_a_failing_version_check_fails_the_request_and_is_shown_as_the_error():
    state = state_of([rule(1, 100), rule(2, 10, version="<60.0")])
    explanation = explain(state, update_url(version="60.0b3"))
    assert [v.status for v in explanation.rules] == ["matched", "error"]
    assert "Version number 60.0b3 is invalid." in explanation.rules[1].reason.text
    answer = explanation.answer
    assert answer.rule_id is None and answer.error == "Version number 60.0b3 is invalid."
    assert [(o.status, o.body) for o in answer.outcomes] == [(400, "Version number 60.0b3 is invalid.")]


# --- what is served ------------------------------------------------------------------------------------
def throttled(**columns) -> ServerState:
    return state_of([rule(1, mapping="Firefox-61.0", backgroundRate=25, **columns)])


def test_a_throttled_rule_shows_both_answers_with_their_shares():
    answer = explain(throttled(fallbackMapping="Firefox-60.0"), URL).answer
    assert answer.random and answer.rule_id == 1
    assert "mapping 'Firefox-61.0' to 25% of requests, fallback 'Firefox-60.0' otherwise" in answer.summary
    main, fallback = answer.outcomes
    assert (main.share, main.roll, main.branch, main.release) == (25, 0, "mapping", "Firefox-61.0")
    assert (fallback.share, fallback.roll, fallback.branch, fallback.release) == (75, 99, "fallback", "Firefox-60.0")
    assert f"{HOST}/Firefox-61.0.mar" in main.body and f"{HOST}/Firefox-60.0.mar" in fallback.body
    assert main.headers == {"Rule-ID": "1", "Rule-Data-Version": "1"}


def test_without_fallback_the_losers_get_nothing():
    main, fallback = explain(throttled(), URL).answer.outcomes
    assert main.release == "Firefox-61.0" and fallback.release is None
    assert "no fallbackMapping" in fallback.note and "<update " not in fallback.body


@pytest.mark.parametrize("force,release,words", [
    ("1", "Firefox-61.0", "force=1 takes mapping"),
    ("-1", "Firefox-60.0", "force=-1 takes the losing branch"),
])
def test_force_makes_the_answer_certain(force, release, words):
    answer = explain(throttled(fallbackMapping="Firefox-60.0"), update_url(version="50.0", force=force)).answer
    assert not answer.random and words in answer.summary
    assert [(o.share, o.roll, o.release) for o in answer.outcomes] == [(100, None, release)]


def test_rate_zero_needs_no_dice():
    answer = explain(state_of([rule(1, backgroundRate=0)]), URL).answer
    assert not answer.random and "backgroundRate 0%: every request gets nothing" in answer.summary
    assert answer.outcomes[0].release is None


def test_a_shutoff_serves_nothing_whatever_the_rules():
    state = state_of([rule(1)], emergency_shutoffs=[{"product": "Firefox", "channel": "release"}])
    answer = explain(state, update_url(version="50.0", channel="release-cck-x")).answer
    assert answer.shutoff == ("Firefox", "release") and answer.rule_id is None
    assert "emergency shutoff for Firefox/release" in answer.summary
    assert answer.outcomes[0].headers == {"Rule-ID": "unknown", "Rule-Data-Version": "unknown"}


@pytest.mark.parametrize("rules,url,words", [
    ([rule(1, channel="beta")], URL, "no rule matches"),
    ([rule(1, mapping=None)], URL, "rule 1 has no mapping"),
    ([rule(1, mapping="Firefox-99.0")], URL, "release 'Firefox-99.0' does not exist"),
    ([rule(1)], update_url(version="70.0"), "release 'Firefox-60.0' declines the request"),
    ([rule(1)], update_url(version="50.0"), "serves release 'Firefox-60.0'"),
])
def test_why_nothing_or_something_is_served(rules, url, words):
    answer = explain(state_of(rules), url).answer
    assert words in answer.summary and words in answer.outcomes[0].note


def test_a_pin_that_swaps_the_release_is_named():
    state = state_of([rule(1, mapping="Firefox-61.0")],
                     pins=[{"product": "Firefox", "channel": "release", "version": "60.", "mapping": "Firefox-60.0"}])
    outcome = explain(state, update_url(version="50.0", pin="60.")).answer.outcomes[0]
    assert outcome.release == "Firefox-60.0"
    assert "newer than the client's pin '60.'" in outcome.note and "serves 'Firefox-60.0'" in outcome.note


def test_the_text_report_lists_the_reachable_rules():
    state = state_of([rule(1, channel="beta"), rule(2, product="Thunderbird"), rule(3, 50, locale="de"),
                      rule(4, 10)])
    text = explain(state, URL).text()
    assert "rule 3 priority 50: no match: locale: 'en-US' is not one of 'de'." in text
    assert "=> rule 4 priority 10: selected" in text
    assert "2 more rule(s) for other products or channels" in text and "rule 1 " not in text
    assert "rule 1 priority 100: no match: channel" in explain(state, URL).text(all_rules=True)


# --- URLs that are no update query ---------------------------------------------------------------------
@pytest.mark.parametrize("url,words,status", [
    ("", "must be a non-empty string", None),
    ("update/6/x/update.xml", "is not a URL path", None),
    ("/api/v1/rules", "must start with /update/ or /json/", 404),
    ("/updates/6/x/update.xml", "must start with /update/<protocol>/", 200),
    ("/update/9/a/b/update.xml", "unknown protocol '9'", 200),
    ("/update/6/Firefox/50.0/update.xml", "takes 10 segments", 200),
    ("/update/6/Firefox/50.0/1/t/l/c/o/caps/d/dv/update.json", "must end with /update.xml", 200),
    ("/update/3/Firefox/50.0/1/t/l//o/d/dv/update.xml", "segment channel is empty", 200),
    ("/json/1/Firefox/50.0/t/update.json", "takes 4 segments", 404),
    (URL + "?bogus=1", "Extra query parameter(s) bogus not in spec", 400),
    ("/update/3/Firefox/50.0/1/t/l/c/o/d/dv/update.xml?pin=", "non-empty", 400),
    ("/update/3/Firefox/%ff/1/t/l/c/o/d/dv/update.xml", "not UTF-8", 400),
    ("http://[::1/update.xml", "is not a URL", None),
])
def test_unparsable_urls_name_the_problem_and_what_the_server_answers(url, words, status):
    with pytest.raises(UnparsableRequest) as caught:
        explain(state_of([rule(1)]), url)
    assert caught.value.field == "url" and words in caught.value.message
    assert (caught.value.answer.status if caught.value.answer else None) == status


# --- preview -------------------------------------------------------------------------------------------
BETA_URL = update_url(version="50.0", channel="beta")


def test_preview_an_edit():
    state = state_of([rule(1, channel="release"), rule(2, 10, channel="beta", mapping="Firefox-59.0")])
    result = preview(state, {"action": "update", "rule_id": 1, "rule": {"mapping": "Firefox-61.0"}}, [URL, BETA_URL])
    assert result.summary == {"urls": 2, "changed": 1, "unchanged": 1, "rule_changed": 0}
    edited, untouched = result.results
    assert edited.changed and not edited.rule_changed
    assert (edited.before.outcomes[0].release, edited.after.outcomes[0].release) == ("Firefox-60.0", "Firefox-61.0")
    assert edited.after.outcomes[0].headers["Rule-Data-Version"] == "2"
    assert not untouched.changed and untouched.before.key() == untouched.after.key()
    # Nothing was written.
    assert state.rules[0]["mapping"] == "Firefox-60.0"
    assert explain(state, URL).answer.outcomes[0].release == "Firefox-60.0"


def test_preview_a_new_rule_that_wins_and_maps_to_a_release_no_rule_served_yet():
    releases = RELEASES + [release("Firefox-62.0", "62.0", "20180701000000")]
    state = state_of([rule(1)], releases)
    assert "Firefox-62.0" not in state.snapshot.releases
    change = {"action": "create", "rule": {"priority": 200, "backgroundRate": 50, "update_type": "minor",
                                           "product": "Firefox", "mapping": "Firefox-62.0",
                                           "fallbackMapping": "Firefox-60.0"}}
    result = preview(state, change, [URL])
    only = result.results[0]
    assert only.changed and only.rule_changed and only.after.rule_id == 2
    assert [(o.share, o.release) for o in only.after.outcomes] == [(50, "Firefox-62.0"), (50, "Firefox-60.0")]
    assert result.to_json()["change"] == change


def test_preview_a_deletion_falls_through_to_the_next_rule():
    state = state_of([rule(1, 100), rule(2, 10, mapping="Firefox-61.0")])
    only = preview(state, {"action": "delete", "rule_id": 1}, [URL]).results[0]
    assert (only.before.rule_id, only.after.rule_id) == (1, 2) and only.changed
    assert preview(state, {"action": "delete", "rule_id": 2}, [URL]).summary["changed"] == 0


def test_preview_counts_a_changed_deciding_rule_with_the_same_answer():
    state = state_of([rule(1, 100), rule(2, 10)])
    only = preview(state, {"action": "update", "rule_id": 2, "rule": {"priority": 200}}, [URL]).results[0]
    assert only.rule_changed and not only.changed


@pytest.mark.parametrize("change,field", [
    ([], "change"),
    ({"action": "upsert"}, "change.action"),
    ({"action": "delete"}, "change.rule_id"),
    ({"action": "delete", "rule_id": True}, "change.rule_id"),
    ({"action": "delete", "rule_id": 1, "rule": {}}, "change.rule"),
    ({"action": "create", "rule_id": 3, "rule": {}}, "change.rule_id"),
    ({"action": "update", "rule_id": 1}, "change.rule"),
    ({"action": "update", "rule_id": 1, "rule": {}}, "change.rule"),
    ({"action": "update", "rule_id": 1, "rule": {"chanel": "beta"}}, "change.rule.chanel"),
    ({"action": "update", "rule_id": 1, "rule": {"data_version": 3}}, "change.rule.data_version"),
    ({"action": "update", "rule_id": 1, "rule": {"priority": "high"}}, "change.rule.priority"),
    ({"action": "update", "rule_id": 1, "rule": {"backgroundRate": 101}}, "change.rule.backgroundRate"),
    ({"action": "update", "rule_id": 1, "rule": {"update_type": "huge"}}, "change.rule.update_type"),
    ({"action": "update", "rule_id": 1, "rule": {"jaws": "yes"}}, "change.rule.jaws"),
    ({"action": "update", "rule_id": 1, "rule": {"locale": ["de"]}}, "change.rule.locale"),
    ({"action": "create", "rule": {"priority": 1, "backgroundRate": 100}}, "change.rule.update_type"),
])
def test_bad_changes_name_the_field(change, field):
    with pytest.raises(ChangeError) as caught:
        parse_change(change)
    assert caught.value.field == field


def test_preview_refuses_unknown_rules_bad_urls_and_too_many_urls():
    state = state_of([rule(1)])
    with pytest.raises(ChangeError) as caught:
        preview(state, {"action": "delete", "rule_id": 7}, [URL])
    assert caught.value.field == "change.rule_id" and "no rule 7" in caught.value.message
    with pytest.raises(UnparsableRequest) as caught:
        preview(state, {"action": "delete", "rule_id": 1}, [URL, "/update/6/x/update.xml"])
    assert caught.value.field == "urls[1]"
    for urls in ([], [URL] * (MAX_PREVIEW_URLS + 1), URL):
        with pytest.raises(ExplainInputError) as caught:
            preview(state, {"action": "delete", "rule_id": 1}, urls)
        assert caught.value.field == "urls"


# --- lint: true positives ------------------------------------------------------------------------------
def shadowed(a_columns: dict, b_columns: dict, a_priority: int = 100, b_priority: int = 50) -> list:
    return [(f.rule_id, f.shadowed_by) for f in lint(state_of([rule(1, a_priority, **a_columns),
                                                                rule(2, b_priority, **b_columns)]))]


PROVABLE = {
    "duplicate": ({"channel": "release", "version": "<56.0"}, {"channel": "release", "version": "<56.0"}),
    "no conditions": ({"product": None}, {"channel": "beta", "locale": "de"}),
    "unset columns": ({"channel": "release"}, {"channel": "release", "locale": "de", "osVersion": "Windows"}),
    "channel glob": ({"channel": "release*"}, {"channel": "release-cck-partner"}),
    "channel glob in glob": ({"channel": "rel*"}, {"channel": "release*"}),
    "cck partner": ({"channel": "release"}, {"channel": "release-cck-partner"}),
    "version range": ({"version": ">=60.0"}, {"version": ">61.0"}),
    "version below": ({"version": "<61.0"}, {"version": "<=60.0"}),
    "version point": ({"version": "<61.0"}, {"version": "60.0,60.0.1"}),
    "version point in glob": ({"version": "60.*"}, {"version": "60.0.2"}),
    "version glob in glob": ({"version": "60.*"}, {"version": "60.1.*"}),
    "buildID": ({"buildID": ">=20190101000000"}, {"buildID": ">20200101000000"}),
    "buildID point": ({"buildID": "<20200101000000"}, {"buildID": "20190101000000"}),
    "memory": ({"memory": "<=8000"}, {"memory": "<4000"}),
    "memory point": ({"memory": ">2000"}, {"memory": "4096"}),
    "osVersion": ({"osVersion": "Windows_NT"}, {"osVersion": "Windows_NT 6.1,Windows_NT 6.2 && x64"}),
    "locale list": ({"locale": "de,fr,en-US"}, {"locale": "fr,de"}),
    "instructionSet": ({"instructionSet": "SSE,SSE2"}, {"instructionSet": "SSE"}),
    "distribution": ({"distribution": "default,partner"}, {"distribution": "partner"}),
    "booleans": ({"mig64": True, "jaws": False}, {"mig64": True, "jaws": False, "locale": "de"}),
    "database columns": ({"buildTarget": "WINNT_x86-msvc", "headerArchitecture": "Intel", "distVersion": "1"},
                         {"buildTarget": "WINNT_x86-msvc", "headerArchitecture": "Intel", "distVersion": "1"}),
    "loose versions, same text": ({"product": "Guardian", "version": "<2.0"}, {"product": "Guardian",
                                                                               "version": "<2.0"}),
}


@pytest.mark.parametrize("a,b", PROVABLE.values(), ids=PROVABLE.keys())
def test_lint_reports_provable_shadowing(a, b):
    assert shadowed(a, b) == [(2, 1)]


def test_lint_names_the_first_shadowing_rule_and_its_proof():
    state = state_of([rule(1, 100, channel="release*"), rule(2, 90, channel="release"),
                      rule(3, 80, channel="release", locale="de")])
    findings = lint(state)
    assert [(f.rule_id, f.shadowed_by) for f in findings] == [(2, 1), (3, 1)]
    reasons = findings[1].reasons
    assert reasons[0] == "rule 1 is evaluated first (priority 100 > 80)"
    assert "channel: 'release*' takes every channel 'release' takes" in reasons
    assert "rule 1 does not restrict locale" in reasons
    assert findings[1].text().startswith("rule 3 can never match: rule 1 comes first")


def test_equal_priorities_shadow_by_rule_id():
    assert shadowed({"channel": "release"}, {"channel": "release"}, 100, 100) == [(2, 1)]
    finding = lint(state_of([rule(1, 100), rule(2, 100)]))[0]
    assert finding.reasons[0] == "rule 1 is evaluated first (same priority 100, lower rule_id)"


# --- lint: no false positives ------------------------------------------------------------------------
PARTIAL = {
    "lower rule is broader": ({"channel": "release", "locale": "de"}, {"channel": "release"}),
    "locale lists overlap": ({"locale": "en-US,de"}, {"locale": "de,fr"}),
    "exact channel vs glob": ({"channel": "release"}, {"channel": "release*"}),
    "glob vs shorter glob": ({"channel": "release*"}, {"channel": "rel*"}),
    "partner of another channel": ({"channel": "beta"}, {"channel": "release-cck-beta"}),
    "fallback is not a partner": ({"channel": "release-cck-x"}, {"channel": "release"}),
    "short glob never matches": ({"channel": "r*"}, {"channel": "r*"}),
    "versions opposite rays": ({"version": ">=60.0"}, {"version": "<70.0"}),
    "version ray narrower": ({"version": ">=61.0"}, {"version": ">=60.0"}),
    "version open vs closed": ({"version": ">60.0"}, {"version": ">=60.0"}),
    "version point outside": ({"version": "<60.0"}, {"version": "60.0"}),
    "version glob vs range": ({"version": ">=60.0"}, {"version": "60.*"}),
    "tagged versions escape a numeric glob": ({"version": "60.0.*"}, {"version": "60.*"}),
    "invalid version operand": ({"version": "60.0b3"}, {"version": "60.0b3"}),
    "loose against Mozilla": ({"product": None, "version": "<2.0"}, {"product": "Guardian", "version": "<2.0"}),
    "loose, different text": ({"product": "Guardian", "version": "<3.0"}, {"product": "Guardian",
                                                                           "version": "<2.0"}),
    "buildID opposite": ({"buildID": ">20190101000000"}, {"buildID": "<20200101000000"}),
    "buildID glob is literal": ({"buildID": "2019*"}, {"buildID": "20190101000000"}),
    "memory wider": ({"memory": "<=4000"}, {"memory": "<=8000"}),
    "memory not an integer": ({"memory": "lots"}, {"memory": "lots"}),
    "osVersion broader": ({"osVersion": "Windows_NT 6"}, {"osVersion": "Windows_NT"}),
    "osVersion alternatives": ({"osVersion": "Windows"}, {"osVersion": "Windows,Darwin"}),
    "osVersion conjunction": ({"osVersion": "Windows && x64"}, {"osVersion": "Windows"}),
    "osVersion empty alternative": ({"osVersion": "Windows"}, {"osVersion": "Darwin,"}),
    "instructionSet": ({"instructionSet": "SSE2"}, {"instructionSet": "SSE2,SSE3"}),
    "mig64 differs": ({"mig64": True}, {"mig64": False}),
    "other product": ({"product": "Thunderbird"}, {}),
    "other build target": ({"buildTarget": "Linux_x86_64-gcc3"}, {"buildTarget": "WINNT_x86-msvc"}),
    "unset in the lower rule": ({"distVersion": "1"}, {}),
}


@pytest.mark.parametrize("a,b", PARTIAL.values(), ids=PARTIAL.keys())
def test_lint_does_not_report_partial_overlaps(a, b):
    assert shadowed(a, b) == []


def test_lint_only_looks_upwards():
    assert shadowed({"channel": "release", "locale": "de"}, {"channel": "release"}, 50, 100) == [(1, 2)]
    assert shadowed({"channel": "release"}, {"channel": "release", "locale": "de"}, 50, 100) == []


# The soundness check: for every pair of values a column can take in these pools (and every pair of
# product + version, which picks the version family), whenever the lint says rule A covers rule B,
# the server's own rule index lets B decide no request in which that column takes any of the
# request values below. The lint reasons column by column, so this covers its every step.
COLUMN_VALUES = {
    "product": ["Firefox", "Guardian"],
    "buildTarget": ["WINNT_x86_64-msvc", "Darwin_x86_64-gcc3"],
    "headerArchitecture": ["Intel", "PPC"],
    "distVersion": ["default", "other"],
    "channel": ["release", "release*", "rel*", "beta", "release-cck-x", "r*", "releasetest"],
    "version": ["60.0", ">=60.0", ">60.0", "<61.0", "<=60.1", "<60.0", "60.*", "60.1.*", "60.0,61.0", "60.0b3",
                "=60", "1.0a", "<2.0", ">=1.0a"],
    "buildID": ["20200101000000", ">=20190101000000", ">20200101000000", "<20210101000000", "<=20200101000000",
                "2020*", "=2020"],
    "memory": ["<=8000", "<8000", ">=4000", ">4000", "8000", "abc", "<=4000"],
    "osVersion": ["Windows", "Windows_NT 10", "Windows,Darwin", "Windows && x64", "Darwin 6,", "Win", "x64"],
    "instructionSet": ["SSE2", "SSE2,SSE3", "SSE3", "SSE2,"],
    "distribution": ["default", "default,partner", "partner"],
    "locale": ["en-US", "en-US,de", "de", "fr,de"],
    "mig64": [True, False],
    "jaws": [True, False],
}
QUERY_VALUES = {
    "product": ["Firefox", "Guardian"],
    "buildTarget": ["WINNT_x86_64-msvc", "Darwin_x86_64-gcc3"],
    "headerArchitecture": ["Intel", "PPC", None],
    "distVersion": ["default", "other", None],
    "channel": ["release", "release-cck-x", "releasetest", "releasetest-cck-y", "beta", "beta-cck-release", "rel",
                "r", "release-cck-"],
    "version": ["60.0", "60.0.1", "60.1.2", "60.1", "59.0", "61.0", "60.0a1", "60.1.0a1", "1.0a", "1.0b", "2.0",
                "1.5"],
    "buildID": ["20200101000000", "20190101000000", "20210101000000", "2020", "2020*", "", None],
    "memory": [None, 4000, 4001, 8000, 9000],
    "osVersion": ["Windows_NT 10.0 (x64)", "Windows_NT 6.1", "Darwin 6.1", "Windows", "", "Linux x64"],
    "instructionSet": ["SSE2", "SSE3", "", None],
    "distribution": ["default", "partner", "", None],
    "locale": ["en-US", "de", "fr", None],
    "mig64": [None, True, False],
    "jaws": [None, True, False],
}
DEFAULT_QUERY = dict(product="Firefox", version="60.0", buildTarget="WINNT_x86_64-msvc", channel="release",
                     buildID="20200101000000", locale="en-US", osVersion="Windows_NT 10.0 (x64)",
                     distribution="default", distVersion="default", instructionSet="SSE2", memory=8000,
                     headerArchitecture="Intel", queryVersion=6)


def decides(rows, query) -> int | None:
    try:
        chosen = RuleIndex(rows).select(query)
    except RuleError:
        return None
    return None if chosen is None else chosen.rule_id


def value_pairs(columns):
    """Every (A columns, B columns) over ``columns``: A may leave any of them unset, B sets at least one."""
    import itertools

    choices = [[None, *COLUMN_VALUES[c]] for c in columns]
    combos = [dict(zip(columns, values)) for values in itertools.product(*choices)]
    return [(a, b) for a in combos for b in combos if any(v is not None for v in b.values())]


def requests_over(columns):
    import itertools

    for values in itertools.product(*(QUERY_VALUES[c] for c in columns)):
        yield UpdateQuery(**{**DEFAULT_QUERY, **dict(zip(columns, values))})


@pytest.mark.parametrize("columns", [(c,) for c in COLUMN_VALUES if c not in ("product", "version")] +
                         [("product", "version")], ids="-".join)
def test_a_reported_rule_never_decides(columns):
    base = {"mapping": "m", "backgroundRate": 100, "update_type": "minor"}
    proven = 0
    for a_columns, b_columns in value_pairs(columns):
        a = normalise_rule({**base, **a_columns, "rule_id": 1, "priority": 20})
        b = normalise_rule({**base, **b_columns, "rule_id": 2, "priority": 10})
        reasons = covers(a, b)
        if reasons is None:
            continue
        proven += 1
        for query in requests_over(columns):
            assert decides([a, b], query) != 2, (a_columns, b_columns, reasons, query)
    assert proven  # the check is not vacuous: every column has provable pairs


# --- explanations agree with the public server --------------------------------------------------------
SCENARIOS = {path.stem: path for path in scenario_files()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_what_is_served_is_what_the_public_server_answers(name):
    scenario = json.loads(SCENARIOS[name].read_text())
    engine = Engine.from_dataset({k: v for k, v in scenario.items() if k != "requests"}, REGISTRY, roll=lambda: 0)
    app = create_app(engine, metrics=False)
    state = ServerState.from_storage(engine.storage, engine.registry)
    try:
        for request in scenario["requests"]:
            path, headers = request["path"], request.get("headers") or {}
            if not path.startswith(("/update", "/json/")):
                continue  # other endpoints of the public app: nothing to explain
            got = call_wsgi(app, path, headers)
            try:
                explanation = explain(state, path, headers.get("User-Agent", ""))
            except UnparsableRequest as refused:
                said = refused.answer
                assert (said.status, said.content_type, said.body) == (got.status, got.header("Content-Type"),
                                                                       got.body), path
                continue
            # The public app above rolls 0: the branch the explanation shows first.
            said = explanation.answer.outcomes[0]
            assert said.roll in (None, 0)
            assert (said.status, said.content_type, said.body.encode()) == \
                (got.status, got.header("Content-Type"), got.body), path
            for header, value in said.headers.items():
                assert got.header(header) == value, (path, header)
            rule_id = got.header("Rule-ID")
            if rule_id not in (None, "unknown"):
                assert explanation.matched_rule == int(rule_id), path
    finally:
        engine.close()


def test_bench_urls_explain_as_served():
    """The bench dataset's long rules table: every 5th of its 1,000 URLs."""
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1].parent / "shared" / "bench"
    if not (bench / "dataset.json").is_file():
        pytest.skip("shared bench data not available")
    engine = Engine.from_dataset(json.loads((bench / "dataset.json").read_text()), REGISTRY, roll=lambda: 0)
    state = ServerState.from_storage(engine.storage, engine.registry)
    findings = {f.rule_id: f.shadowed_by for f in lint(state)}
    for url in (bench / "urls.txt").read_text().split()[::5]:
        explanation = explain(state, url)
        got = engine.get(url)
        said = explanation.answer.outcomes[0]
        assert (said.status, said.body) == (got.status, got.text)
        statuses = {v.rule_id: v.status for v in explanation.rules}
        for shadowed_rule, by in findings.items():  # a shadowed rule never matches alone
            if statuses[shadowed_rule] in ("matched", "selected"):
                assert statuses[by] in ("matched", "selected")
    engine.close()
