"""The rules family (admin-api.md §1, §9): the recorded transcripts rules-crud, rules-bad-input and
rules-history replayed in process on memory:// and SQLite, plus the pure pieces (validators,
input normalisation, ordering, the channel glob of required signoffs).

Steps served by other families are done through the storage instead and not compared:
``PUT /releases/<name>`` inserts the release row, ``POST /scheduled_changes/rules`` inserts the
scheduled change and its conditions (as the scheduled-change family writes them)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from falcon import testing

from balrog_app.admin import rules, signoffs
from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from balrog_engine import load_plugins
from tests.admin_conformance import harness

REGISTRY = load_plugins()
TRANSCRIPTS = harness.SHARED_TRANSCRIPTS
NAMES = ("rules-crud", "rules-bad-input", "rules-history")
BACKENDS = [pytest.param("memory://", id="memory"), pytest.param("sqlite:///{tmp}/rules.db", id="sqlite")]


# --- replaying the transcripts -----------------------------------------------------------------------
def _storage(url: str, tmp_path: Path):
    return REGISTRY.storage_for(url.format(tmp=tmp_path))


def _setup_step(storage, step) -> bool:
    """Do a step of another family through the storage; False if the step is ours."""
    if step.method == "PUT" and step.path.startswith("/releases/"):
        body = step.json
        with storage.session(step.user) as session:
            session.insert("releases", {"name": body["name"], "product": body["product"],
                                        "data": json.loads(body["blob"]), "read_only": False})
        return True
    if step.method == "POST" and step.path == "/scheduled_changes/rules":
        body = dict(step.json)
        change_type, when = body.pop("change_type"), body.pop("when")
        with storage.session(step.user) as session:
            values = {"scheduled_by": step.user, "complete": False, "change_type": change_type,
                      **{f"base_{column}": body.get(column) for column in rules.RULE_COLUMNS}}
            key = session.insert("rules_scheduled_changes", values)
            session.insert("rules_scheduled_changes_conditions", {"sc_id": key["sc_id"], "when": when})
        return True
    return False


def replay(name: str, url: str, tmp_path: Path) -> tuple[int, int, list[str]]:
    """(steps compared, steps matching, failure descriptions)."""
    transcript = harness.load_transcript(TRANSCRIPTS / f"{name}.json")
    storage = _storage(url, tmp_path)
    try:
        seed(storage, permissions=transcript.bootstrap.get("permissions", ()),
             roles=transcript.bootstrap.get("roles", ()))
        tokens = harness.make_tokens(transcript.users)
        ctx = AdminContext(storage, REGISTRY, StaticTokens({token: user for user, token in tokens.items()}),
                           system_accounts=frozenset(transcript.config.get("system_accounts", ())),
                           allowlisted_domains=transcript.config.get("allowlisted_domains", {}))
        client = testing.TestClient(create_admin_app(ctx, [rules.routes]))
        compared, matched, failures = 0, 0, []
        for step in transcript.steps:
            if _setup_step(storage, step):
                continue
            method, target, headers, body = harness.request_for(step, tokens)
            path, _, query = target.partition("?")
            result = client.simulate_request(method, path, query_string=query or None, headers=headers,
                                             body=body)
            problems = harness.compare(step, result.status_code, dict(result.headers), result.content)
            compared += 1
            if problems:
                failures.append(f"step {step.index} {step.describe()}: {'; '.join(problems)}")
            else:
                matched += 1
        return compared, matched, failures
    finally:
        storage.close()


@pytest.mark.parametrize("url", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_transcript(name, url, tmp_path):
    compared, matched, failures = replay(name, url, tmp_path)
    assert not failures, f"{name}: {matched}/{compared} steps match\n" + "\n".join(failures)


# --- more behaviour, on a small fixture ------------------------------------------------------------
@pytest.fixture
def client():
    storage = REGISTRY.storage_for("memory://")
    seed(storage, permissions=[
        {"username": "admin@example.com", "permission": "admin", "options": None},
        {"username": "alice@example.com", "permission": "rule", "options": {"products": ["Firefox"]}},
    ], roles=[{"username": "admin@example.com", "role": "relman"}])
    with storage.session("admin@example.com") as session:
        for name in ("Firefox-60.0-build1", "Firefox-61.0-build1"):
            session.insert("releases", {"name": name, "product": "Firefox", "data": {"name": name}, "read_only": False})
    tokens = StaticTokens({"t-admin": "admin@example.com", "t-alice": "alice@example.com"})
    ctx = AdminContext(storage, REGISTRY, tokens)
    client = testing.TestClient(create_admin_app(ctx, [rules.routes]))
    client.storage = storage
    yield client
    storage.close()


ADMIN = {"Authorization": "Bearer t-admin"}
ALICE = {"Authorization": "Bearer t-alice"}
RULE = {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
        "channel": "release", "mapping": "Firefox-60.0-build1"}


def test_permission_messages(client):
    refused = client.simulate_post("/rules", json={**RULE, "product": "Thunderbird"}, headers=ALICE)
    assert refused.status_code == 403
    assert refused.json["exception"] == "alice@example.com is not allowed to create new rules for product Thunderbird"
    assert client.simulate_post("/rules", json=RULE, headers=ALICE).json == 1
    moved = client.simulate_post("/rules/1", json={"data_version": 1, "product": "Thunderbird"}, headers=ALICE)
    assert moved.json["exception"] == "alice@example.com is not allowed to modify rules for product Thunderbird"
    assert client.simulate_post("/rules", json={**RULE, "product": "Thunderbird"}, headers=ADMIN).json == 2
    gone = client.simulate_delete("/rules/2", query_string="data_version=1", headers=ALICE)
    assert gone.json["exception"] == "alice@example.com is not allowed to delete rules for product Thunderbird"


def test_validation_comes_before_authentication(client):
    response = client.simulate_post("/rules", json={"priority": 1})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    assert client.simulate_post("/rules", json=RULE).status_code == 401


def test_signoff_required_for_protected_product_channel(client):
    with client.storage.session("admin@example.com") as session:
        session.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                                "signoffs_required": 1})
    refused = client.simulate_post("/rules", json=RULE, headers=ADMIN)
    assert refused.status_code == 400 and refused.json["detail"] == "Signoff Required"
    assert client.simulate_post("/rules", json={**RULE, "channel": "beta"}, headers=ADMIN).json == 1
    moved = client.simulate_post("/rules/1", json={"data_version": 1, "channel": "release"}, headers=ADMIN)
    assert moved.status_code == 400 and moved.json["exception"] == "No Signoffs given"


def test_alias_taken_on_update_and_unknown_fallback(client):
    assert client.simulate_post("/rules", json={**RULE, "alias": "a"}, headers=ADMIN).json == 1
    assert client.simulate_post("/rules", json={**RULE, "alias": "b"}, headers=ADMIN).json == 2
    taken = client.simulate_put("/rules/2", json={"data_version": 1, "alias": "a"}, headers=ADMIN)
    assert (taken.status_code, taken.json["detail"]) == (400, "Rule with alias exists.")
    same = client.simulate_put("/rules/a", json={"data_version": 1, "alias": "a"}, headers=ADMIN)
    assert same.json == {"new_data_version": 2}
    bad = client.simulate_put("/rules/a", json={"data_version": 2, "fallbackMapping": "nope"}, headers=ADMIN)
    assert bad.json["detail"] == "Invalid fallbackMapping value. No release name found in DB"


def test_revert_does_not_copy_jaws_and_mig64(client):
    client.simulate_post("/rules", json={**RULE, "jaws": True, "comment": "one"}, headers=ADMIN)
    client.simulate_post("/rules/1", json={"data_version": 1, "jaws": False, "comment": "two"}, headers=ADMIN)
    reverted = client.simulate_post("/rules/1/revisions", json={"change_id": 2}, headers=ADMIN)
    assert reverted.text == "Excellent!"
    rule = client.simulate_get("/rules/1").json
    assert (rule["comment"], rule["jaws"], rule["data_version"]) == ("one", False, 3)


def test_revert_errors(client):
    client.simulate_post("/rules", json=RULE, headers=ADMIN)
    client.simulate_post("/rules", json=RULE, headers=ADMIN)
    assert client.simulate_post("/rules/9/revisions", json={"change_id": 2}, headers=ADMIN).json["detail"] == \
        "bad rule_id"
    assert client.simulate_post("/rules/1/revisions", json={}, headers=ADMIN).json["detail"] == \
        "No change_id passed in the request body"
    assert client.simulate_post("/rules/1/revisions", json={"change_id": 99}, headers=ADMIN).json["detail"] == \
        "Invalid change_id : 99 passed in the request body"
    assert client.simulate_post("/rules/1/revisions", json={"change_id": 1}, headers=ADMIN).json["detail"] == \
        "Invalid change_id : 1 passed in the request body"  # a placeholder
    assert client.simulate_post("/rules/1/revisions", json={"change_id": 4}, headers=ADMIN).json["detail"] == \
        "Bad rule_id passed in the request"
    assert client.simulate_post("/rules/1/revisions", json={"change_id": [1]}, headers=ADMIN).status_code == 400
    missing = client.simulate_get("/rules/7/revisions")
    assert (missing.status_code, missing.text) == (404, "Requested rule does not exist")
    assert client.simulate_get("/rules/x/revisions").status_code == 404
    assert client.simulate_get("/rules/1/revisions", query_string="limit=0").status_code == 400


def test_point_in_time(client):
    client.simulate_post("/rules", json=RULE, headers=ADMIN)
    client.simulate_post("/rules/1", json={"data_version": 1, "backgroundRate": 5}, headers=ADMIN)
    history = client.simulate_get("/rules/1/revisions").json["rules"]
    first = history[-1]["timestamp"]
    at_first = client.simulate_get("/rules", query_string=f"timestamp={first}").json
    assert at_first["count"] == 1 and at_first["rules"][0]["backgroundRate"] == 100
    assert at_first["rules"][0]["change_id"] == 2
    assert client.simulate_get("/rules", query_string=f"timestamp={first - 1}").json == {"count": 0, "rules": []}
    both = client.simulate_get("/rules", query_string=f"timestamp={first}&product=Firefox")
    assert both.status_code == 400 and both.json["detail"] == rules.TIMESTAMP_AND_PRODUCT
    assert client.simulate_get("/rules", query_string="timestamp=abc").status_code == 400


def test_columns_on_empty_table_and_booleans(client):
    assert client.simulate_get("/rules/columns/channel").json == {"count": 0, "channel": []}
    client.simulate_post("/rules", json={**RULE, "jaws": True}, headers=ADMIN)
    assert client.simulate_get("/rules/columns/jaws").json == {"count": 1, "jaws": [True]}


def test_direct_update_merges_into_pending_scheduled_change(client):
    """scheduled-changes-and-agent.md §4.5."""
    client.simulate_post("/rules", json=RULE, headers=ADMIN)
    with client.storage.session("alice@example.com") as session:
        row = {f"base_{c}": v for c, v in {**RULE, "rule_id": 1, "data_version": 1,
                                           "mapping": "Firefox-61.0-build1"}.items()}
        session.insert("rules_scheduled_changes", {"scheduled_by": "alice@example.com", "complete": False,
                                                   "change_type": "update", **row})
        session.insert("rules_scheduled_changes_conditions", {"sc_id": 1, "when": 4102444800000})
        session.insert("rules_scheduled_changes_signoffs", {"sc_id": 1, "username": "admin@example.com",
                                                            "role": "relman"})
    merged = client.simulate_post("/rules/1", json={"data_version": 1, "comment": "x"}, headers=ADMIN)
    assert merged.json == {"new_data_version": 2}
    with client.storage.session() as session:
        sc = session.get("rules_scheduled_changes", {"sc_id": 1})
        assert (sc["base_comment"], sc["base_mapping"], sc["base_data_version"], sc["data_version"]) == \
            ("x", "Firefox-61.0-build1", 2, 2)
        assert session.get("rules_scheduled_changes_conditions", {"sc_id": 1})["data_version"] == 2
        assert session.rows("rules_scheduled_changes_signoffs") == []  # other users' signoffs are dropped
        assert session.history("rules_scheduled_changes", {"sc_id": 1}, limit=1)[0]["changed_by"] == \
            "alice@example.com"
    same = client.simulate_post("/rules/1", json={"data_version": 2, "mapping": "Firefox-61.0-build1"},
                                headers=ADMIN)
    assert same.json == {"new_data_version": 3}  # the value the scheduled change sets: mergeable
    with client.storage.session("alice@example.com") as session:
        session.update("rules_scheduled_changes", {"sc_id": 1}, {"base_backgroundRate": 1}, 3)
    clash = client.simulate_post("/rules/1", json={"data_version": 3, "backgroundRate": 2}, headers=ADMIN)
    assert (clash.status_code, clash.json["detail"]) == (400, "UpdateMergeError")
    blocked = client.simulate_delete("/rules/1", query_string="data_version=3", headers=ADMIN)
    assert (blocked.status_code, blocked.json["detail"]) == (400, "ChangeScheduledError")
    with client.storage.session("alice@example.com") as session:
        session.update("rules_scheduled_changes_conditions", {"sc_id": 1}, {"when": 1000}, 3)
    late = client.simulate_post("/rules/1", json={"data_version": 3, "comment": "y"}, headers=ADMIN)
    assert (late.status_code, late.json["exception"]) == (400, "Cannot schedule changes in the past")


def test_history_filters(client):
    client.simulate_post("/rules", json=RULE, headers=ADMIN)
    client.simulate_post("/rules", json={**RULE, "channel": None}, headers=ADMIN)  # never listed (quirk)
    everything = client.simulate_get("/rules/history").json
    assert everything["Rules"]["count"] == 1
    stamp = everything["Rules"]["revisions"][0]["timestamp"]
    assert client.simulate_get("/rules/history", query_string=f"timestamp_from={stamp + 1}").json["Rules"][
        "count"] == 0
    assert client.simulate_get("/rules/history", query_string="channel=release&data_version=1").json["Rules"][
        "count"] == 1
    assert client.simulate_get("/rules/history", query_string="change_id=x").status_code == 400


# --- pure pieces ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["60.0", "<61.0", ">=59.0", "60.0,3.6b2", "60.*", "", "  ", "1.5.0.12", " 60.0 "])
def test_valid_versions(value):
    assert rules.version_error(value) is None


@pytest.mark.parametrize("value,text", [
    ("sixty", "Invalid input for sixty . No Operator or Match found."),
    ("<60.0,61.0", "Invalid input for <60.0,61.0 .Relational Operators are not allowed with comma separated list "
                   "of versions."),
    ("=60.0", "Invalid input for =60.0 . No Operator or Match found."),
    ("60.0,", "Invalid input for 60.0, . No Operator or Match found."),
])
def test_invalid_versions(value, text):
    assert rules.version_error(value) == text


@pytest.mark.parametrize("value,ok", [("20180501120000", True), ("<=20180501120000", True), (">1", True),
                                      ("", True), (">=abc", False), ("=1", False), ("1.5", False), ("<", False)])
def test_build_id(value, ok):
    assert (rules.build_id_error(value) is None) is ok


def test_normalise():
    assert rules.normalise({"product": " Firefox ", "comment": "", "locale": "en-US, de\tfr, it",
                            "distribution": " a , b ", "priority": 5, "jaws": False, "mapping": "  "}) == \
        {"product": "Firefox", "comment": None, "locale": "en-US,defr,it", "distribution": "a,b", "priority": 5,
         "jaws": False, "mapping": None}


def test_body_schemas():
    assert rules.load_body(rules.NewRuleSchema, {"priority": "1", "backgroundRate": "0", "update_type": "major",
                                                 "x": 1}) == {"priority": 1, "backgroundRate": 0,
                                                              "update_type": "major"}
    with pytest.raises(Exception) as refused:
        rules.load_body(rules.NewRuleSchema, {"priority": 1, "backgroundRate": 1, "update_type": "minor",
                                              "jaws": "yes"})
    assert refused.value.detail == "jaws: 'yes' is not of type 'boolean'"
    with pytest.raises(Exception) as refused:
        rules.load_body(rules.RuleUpdateSchema, {"data_version": 0})
    assert "data_version" in refused.value.detail
    with pytest.raises(Exception) as refused:
        rules.load_body(rules.RuleUpdateSchema, {"data_version": 1, "update_type": "huge"})
    assert refused.value.detail == "update_type: 'huge' is not one of ['minor', 'major']"
    with pytest.raises(Exception) as refused:
        rules.load_body(rules.RuleUpdateSchema, {"data_version": 1, "product": "x" * 16})
    assert refused.value.detail.endswith("is too long")


def test_ordering_puts_nulls_first():
    rows = [{"rule_id": 1, "priority": 10, "version": "b", "mapping": "m"},
            {"rule_id": 2, "priority": 10, "version": None, "mapping": "m"},
            {"rule_id": 3, "priority": None, "version": "a", "mapping": "m"},
            {"rule_id": 4, "priority": 5, "version": "a", "mapping": "m"}]
    assert [r["rule_id"] for r in rules.ordered(rows)] == [3, 4, 2, 1]


@pytest.mark.parametrize("rule_channel,required,matches", [
    (None, "release", True), ("", "release", True), ("release", "release", True),
    ("release*", "release-cck-x", True), ("rel*", "release", True), ("r*", "release", False),
    ("beta", "release", False),
])
def test_required_signoff_channel_glob(rule_channel, required, matches):
    assert signoffs.channel_matches(rule_channel, required) is matches


def test_rules_may_map_v2_releases(client):
    """A release that exists only in the v2 tables can be a mapping or fallback; an unknown one cannot."""
    with client.storage.session("admin@example.com") as session:
        session.insert("releases_json", {"name": "Firefox-80.0-build1", "product": "Firefox", "read_only": False,
                                         "data": {"name": "Firefox-80.0-build1", "schema_version": 9}})
    created = client.simulate_post("/rules", json={**RULE, "mapping": "Firefox-80.0-build1",
                                                   "fallbackMapping": "Firefox-80.0-build1"}, headers=ADMIN)
    assert created.status_code == 200
    refused = client.simulate_post("/rules", json={**RULE, "mapping": "Firefox-81.0-build1"}, headers=ADMIN)
    assert refused.status_code == 400
