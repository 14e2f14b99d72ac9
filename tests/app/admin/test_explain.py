"""The explain family (app/admin/explain.py) through HTTP: ``GET /explain``, ``POST /explain/preview``,
``GET /explain/lint``. Any known user may call them; bad input is a precise 400 naming the field,
never a 500; what they say is served is what the public server answers from the same storage."""
from __future__ import annotations

import http.client
import json
from urllib.parse import urlencode, urlsplit

import pytest
from falcon import testing

from balrog_app.admin import explain, rules
from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed, serve
from balrog_app.public import create_app
from balrog_engine import Engine
from balrog_engine.dataset import parse_dataset
from balrog_engine.testing import update_url
from tests.conformance.harness import call_wsgi

from .conftest import ADMIN, ALICE, BACKENDS, CAROL, DAVE, REGISTRY

HOST = "http://download.example.com"


def release(name: str, version: str, build_id: str) -> dict:
    return {"name": name, "product": "Firefox", "data": {
        "name": name, "schema_version": 1, "appv": version, "extv": version, "hashFunction": "sha512",
        "platforms": {"WINNT_x86_64-msvc": {"buildID": build_id, "locales": {
            locale: {"complete": {"filesize": "5", "from": "*", "hashValue": "5", "fileUrl": f"{HOST}/{name}.mar"}}
            for locale in ("en-US", "de")}}}}}


def rule(rule_id: int, priority: int, mapping: str, **columns) -> dict:
    return {"rule_id": rule_id, "priority": priority, "mapping": mapping, "backgroundRate": 100,
            "update_type": "minor", "product": "Firefox", "data_version": 1, **columns}


DATASET = {
    "config": {"allowlisted_domains": {"download.example.com": ["Firefox"]}},
    "rules": [
        rule(1, 100, "Firefox-60.0", channel="release"),
        rule(2, 90, "Firefox-61.0", channel="release", locale="de"),  # rule 1 always wins: lint finds it
        rule(3, 50, "Firefox-59.0", channel="beta", backgroundRate=25, fallbackMapping="Firefox-60.0"),
    ],
    "releases": [release("Firefox-59.0", "59.0", "20171201000000"), release("Firefox-60.0", "60.0", "20180101000000"),
                 release("Firefox-61.0", "61.0", "20180601000000"), release("Firefox-62.0", "62.0", "20180701000000")],
}
RELEASE_URL = update_url(version="50.0")
GERMAN_URL = update_url(version="50.0", locale="de")
BETA_URL = update_url(version="50.0", channel="beta")


class Admin:
    """The admin app with the explain and rules families over a storage holding :data:`DATASET`."""

    def __init__(self, url: str):
        self.storage = REGISTRY.storage_for(url)
        self.storage.replace_all(parse_dataset(DATASET, REGISTRY))
        seed(self.storage, permissions=[{"username": ADMIN, "permission": "admin", "options": None},
                                        {"username": ALICE, "permission": "release", "options": None},
                                        {"username": CAROL, "permission": "permission",
                                         "options": {"actions": ["view"]}}])
        names = [ADMIN, ALICE, CAROL, DAVE]
        self.ctx = AdminContext(self.storage, REGISTRY, StaticTokens({f"t-{n}": n for n in names}))
        self.app = create_admin_app(self.ctx, [explain.routes, rules.routes])
        self.client = testing.TestClient(self.app)

    def call(self, method: str, path: str, user: str | None = ALICE, query: dict | None = None, body=None,
             raw: str | None = None) -> testing.Result:
        headers = {"Authorization": f"Bearer t-{user}"} if user else {}
        if raw is not None:
            headers["Content-Type"] = "application/json"
            return self.client.simulate_request(method, path, headers=headers, body=raw)
        return self.client.simulate_request(method, path, headers=headers, json=body,
                                            query_string=urlencode(query) if query else None)

    def explain(self, url: str, user: str | None = ALICE, **query) -> testing.Result:
        return self.call("GET", "/explain", user, {"url": url, **query})

    def preview(self, body, user: str | None = ALICE) -> testing.Result:
        return self.call("POST", "/explain/preview", user, body=body)

    def public(self, url: str, roll: int = 0) -> tuple[int, str, bytes, str | None]:
        """What the public server answers from this storage (the dice fixed at ``roll``)."""
        engine = Engine(self.storage, REGISTRY, roll=lambda: roll)
        answer = call_wsgi(create_app(engine, metrics=False), url)
        return answer.status, answer.header("Content-Type"), answer.body, answer.header("Rule-ID")


@pytest.fixture(params=BACKENDS)
def admin(request, tmp_path):
    app = Admin(request.param.format(tmp=tmp_path))
    yield app
    app.storage.close()


def problem(result: testing.Result) -> str:
    assert result.status_code == 400, result.text
    assert result.headers["content-type"] == "application/problem+json"
    return result.json["detail"]


# --- GET /explain ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [RELEASE_URL, GERMAN_URL, BETA_URL, update_url(version="70.0"),
                                 update_url(version="60.0b3"),
                                 "/json/1/Firefox/50.0/WINNT_x86_64-msvc/release/update.json"])
def test_explain_says_what_the_public_server_answers(admin, url):
    result = admin.explain(url)
    assert result.status_code == 200 and result.headers["content-type"] == "application/json"
    body = result.json
    status, content_type, public_body, rule_id = admin.public(url)
    first = body["answer"]["outcomes"][0]
    assert (first["status"], first["content_type"], first["body"].encode()) == (status, content_type, public_body)
    assert first["headers"].get("Rule-ID") == rule_id
    assert body["url"] == url and body["query"]["product"] == "Firefox"
    assert [r["rule_id"] for r in body["rules"]] == [1, 2, 3]


def test_explain_gives_reasons_and_the_throttled_shares(admin):
    body = admin.explain(BETA_URL).json
    first, second, third = body["rules"]
    assert first["status"] == "no match" and first["reason"] == {
        "field": "channel", "rule_value": "release", "request_value": "beta",
        "text": "channel: the rule wants 'release', the request has 'beta'."}
    assert third["status"] == "selected" and body["matched_rule"] == 3
    answer = body["answer"]
    assert answer["random"] and "mapping 'Firefox-59.0' to 25% of requests, fallback 'Firefox-60.0'" in \
        answer["summary"]
    shares = [(o["share"], o["release"]) for o in answer["outcomes"]]
    assert shares == [(25, "Firefox-59.0"), (75, "Firefox-60.0")]
    assert answer["outcomes"][1]["body"].encode() == admin.public(BETA_URL, roll=99)[2]


def test_explain_reads_the_user_agent(admin):
    admin.call("PUT", "/rules/1", ADMIN, body={"headerArchitecture": "PPC", "data_version": 1})
    darwin = update_url(version="50.0", build_target="Darwin_x86_64-gcc3")
    reason = admin.explain(darwin).json["rules"][0]["reason"]
    assert (reason["field"], reason["rule_value"], reason["request_value"]) == ("headerArchitecture", "PPC", "Intel")
    ppc = admin.explain(darwin, user_agent="Mozilla/5.0 (Macintosh; PPC Mac OS X)").json
    assert ppc["user_agent"].endswith("PPC Mac OS X)") and ppc["query"]["headerArchitecture"] == "PPC"
    assert ppc["rules"][0]["status"] == "selected"


def test_explain_follows_the_live_rules(admin):
    assert admin.explain(RELEASE_URL).json["answer"]["outcomes"][0]["release"] == "Firefox-60.0"
    changed = admin.call("PUT", "/rules/1", ADMIN, body={"mapping": "Firefox-61.0", "data_version": 1})
    assert changed.status_code == 200, changed.text
    assert admin.explain(RELEASE_URL).json["answer"]["outcomes"][0]["release"] == "Firefox-61.0"


def test_any_known_user_may_explain(admin):
    assert admin.explain(RELEASE_URL, CAROL).status_code == 200
    assert admin.explain(RELEASE_URL, DAVE).status_code == 403  # no permission row: not a known user
    assert admin.explain(RELEASE_URL, None).status_code == 401
    assert admin.call("GET", "/explain/lint", None).status_code == 401


@pytest.mark.parametrize("query,detail", [
    ({}, "Missing query parameter 'url'"),
    ({"url": ""}, "url: must be a non-empty string"),
    ({"url": "update/6/x"}, "url: 'update/6/x' is not a URL path"),
    ({"url": "/update/6/Firefox/update.xml"}, "url: /update/6/ takes 10 segments"),
    ({"url": "/update/7/a/update.xml"}, "url: unknown protocol '7'"),
    ({"url": RELEASE_URL + "?force=1&foo=2"}, "url: Extra query parameter(s) foo not in spec"),
    ({"url": RELEASE_URL, "force": "1"}, "Extra query parameter(s) force not in spec"),
    ({"url": "/update/3/Firefox/50.0/1/t/%ff/c/o/d/dv/update.xml"}, "url: the percent-decoded path is not UTF-8"),
])
def test_explain_refuses_bad_input_precisely_before_authentication(admin, query, detail):
    for user in (ALICE, None):
        result = admin.call("GET", "/explain", user, query)
        assert problem(result).startswith(detail), result.json


# --- POST /explain/preview --------------------------------------------------------------------------------
def test_preview_shows_before_and_after_without_writing(admin):
    change = {"action": "update", "rule_id": 1, "rule": {"mapping": "Firefox-62.0"}}
    result = admin.preview({"change": change, "urls": [RELEASE_URL, GERMAN_URL, BETA_URL]})
    assert result.status_code == 200, result.text
    body = result.json
    assert body["change"] == change
    assert body["summary"] == {"urls": 3, "changed": 2, "unchanged": 1, "rule_changed": 0}
    changed, german, beta = body["results"]
    assert changed["changed"] and changed["url"] == RELEASE_URL
    assert changed["before"]["outcomes"][0]["release"] == "Firefox-60.0"
    assert changed["after"]["outcomes"][0]["release"] == "Firefox-62.0"
    assert german["changed"] and not beta["changed"] and beta["before"] == beta["after"]
    # Nothing was written: the rule and the public answer are as before.
    assert admin.call("GET", "/rules/1").json["mapping"] == "Firefox-60.0"
    assert b"Firefox-60.0.mar" in admin.public(RELEASE_URL)[2]


def test_preview_reads_rule_values_as_the_rules_api_does(admin):
    # Numeric strings are integers; whitespace is removed from locale lists, as a real PUT would store them.
    change = {"action": "update", "rule_id": 1, "rule": {"priority": "80", "locale": " en-US, fr "}}
    result = admin.preview({"change": change, "urls": [GERMAN_URL, RELEASE_URL]})
    assert result.status_code == 200, result.text
    german, english = result.json["results"]
    assert (german["before"]["rule_id"], german["after"]["rule_id"]) == (1, 2) and german["rule_changed"]
    assert english["after"]["rule_id"] == 1 and not english["changed"]
    assert result.json["change"]["rule"] == {"priority": 80, "locale": "en-US,fr"}


def test_preview_a_new_rule_and_a_deletion(admin):
    new = {"action": "create", "rule": {"priority": 200, "backgroundRate": 100, "update_type": "minor",
                                        "product": "Firefox", "channel": "beta", "mapping": "Firefox-62.0"}}
    only = admin.preview({"change": new, "urls": [BETA_URL]}).json["results"][0]
    assert (only["before"]["rule_id"], only["after"]["rule_id"]) == (3, 4)
    assert only["after"]["random"] is False and only["after"]["outcomes"][0]["release"] == "Firefox-62.0"
    deleted = admin.preview({"change": {"action": "delete", "rule_id": 1}, "urls": [GERMAN_URL]}).json
    assert deleted["results"][0]["after"]["outcomes"][0]["release"] == "Firefox-61.0"
    assert admin.call("GET", "/rules").json["count"] == 3


UPDATE = {"action": "update", "rule_id": 1, "rule": {"backgroundRate": 0}}


@pytest.mark.parametrize("body,detail", [
    ([], "[] is not of type 'object'"),
    ({"change": UPDATE, "urls": [RELEASE_URL], "dry_run": True}, "dry_run: unknown member"),
    ({"change": UPDATE}, "urls: required"),
    ({"change": UPDATE, "urls": RELEASE_URL}, "urls: "),
    ({"change": UPDATE, "urls": []}, "urls: must list at least one"),
    ({"change": UPDATE, "urls": [RELEASE_URL] * 1001}, "urls: at most 1000 URLs per preview (got 1001)"),
    ({"change": UPDATE, "urls": [RELEASE_URL, 5]}, "urls[1]: must be a non-empty string"),
    ({"change": UPDATE, "urls": [RELEASE_URL, "/update/6/x/update.xml"]}, "urls[1]: /update/6/ takes 10 segments"),
    ({"change": UPDATE, "urls": [RELEASE_URL], "user_agent": 5}, "user_agent: 5 is not of type 'string'"),
    ({"urls": [RELEASE_URL]}, "change: required"),
    ({"change": "delete rule 1", "urls": [RELEASE_URL]}, "change: must be an object"),
    ({"change": {"action": "drop", "rule_id": 1}, "urls": [RELEASE_URL]}, "change.action: must be one of"),
    ({"change": {"action": "delete", "rule_id": "1"}, "urls": [RELEASE_URL]}, "change.rule_id: must be an integer"),
    ({"change": {"action": "delete", "rule_id": 99}, "urls": [RELEASE_URL]}, "change.rule_id: there is no rule 99"),
    ({"change": {"action": "update", "rule_id": 99, "rule": {"priority": 1}}, "urls": [RELEASE_URL]},
     "change.rule_id: there is no rule 99"),
    ({"change": {"action": "update", "rule_id": 1, "rule": {"chanel": "beta"}}, "urls": [RELEASE_URL]},
     "change.rule.chanel: is not a rule column"),
    ({"change": {"action": "update", "rule_id": 1, "rule": {"priority": "high"}}, "urls": [RELEASE_URL]},
     "change.rule: Invalid input for priority"),
    ({"change": {"action": "update", "rule_id": 1, "rule": {"backgroundRate": 101}}, "urls": [RELEASE_URL]},
     "change.rule: backgroundRate field value should be an integer <= 100"),
    ({"change": {"action": "update", "rule_id": 1, "rule": {"version": ">=60.0,61.0"}}, "urls": [RELEASE_URL]},
     "change.rule: Invalid input for >=60.0,61.0"),
    ({"change": {"action": "update", "rule_id": 1, "rule": {"mapping": "Firefox-99.0"}}, "urls": [RELEASE_URL]},
     "change.rule.mapping: there is no release named 'Firefox-99.0'"),
    ({"change": {"action": "create", "rule": {"priority": 1, "backgroundRate": 100, "update_type": "minor"}},
      "urls": [RELEASE_URL]}, "change.rule.mapping: a new rule needs a mapping"),
    ({"change": {"action": "create", "rule": {"mapping": "Firefox-60.0"}}, "urls": [RELEASE_URL]},
     "change.rule: 'update_type' is a required property"),
])
def test_preview_refuses_bad_input_naming_the_field(admin, body, detail):
    result = admin.preview(body)
    assert problem(result).startswith(detail), result.json


def test_preview_refuses_a_body_that_is_not_json(admin):
    assert problem(admin.call("POST", "/explain/preview", raw="{nope")) == "Request body is not valid JSON"


def test_preview_needs_a_known_user(admin):
    body = {"change": UPDATE, "urls": [RELEASE_URL]}
    assert admin.preview(body, None).status_code == 401
    assert admin.preview(body, DAVE).status_code == 403
    assert admin.preview(body, CAROL).status_code == 200


# --- GET /explain/lint -----------------------------------------------------------------------------------
def test_lint_lists_shadowed_rules(admin):
    result = admin.call("GET", "/explain/lint")
    assert result.status_code == 200
    body = result.json
    assert body["count"] == 1
    finding = body["findings"][0]
    assert (finding["rule_id"], finding["shadowed_by"]) == (2, 1)
    assert finding["reasons"] == ["rule 1 is evaluated first (priority 100 > 90)", "product: both 'Firefox'",
                                  "channel: both 'release'", "rule 1 does not restrict locale"]
    assert finding["text"].startswith("rule 2 can never match: rule 1 comes first")
    assert problem(admin.call("GET", "/explain/lint", query={"all": "1"})).startswith("Extra query parameter(s) all")
    admin.call("PUT", "/rules/1", ADMIN, body={"locale": "en-US", "data_version": 1})
    assert admin.call("GET", "/explain/lint").json == {"count": 0, "findings": []}


def test_methods_not_served(admin):
    assert admin.call("GET", "/explain/preview").status_code == 405
    assert admin.call("POST", "/explain", body={}).status_code == 405
    assert admin.call("HEAD", "/explain/lint").status_code == 200


# --- over real HTTP ------------------------------------------------------------------------------------
def test_served_over_real_http(tmp_path):
    admin = Admin(f"sqlite:///{tmp_path}/explain.db")
    try:
        with serve(admin.app) as base:
            conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=10)
            auth = {"Authorization": f"Bearer t-{ALICE}"}
            conn.request("GET", "/explain?" + urlencode({"url": GERMAN_URL}), headers=auth)
            answer = conn.getresponse()
            body = json.loads(answer.read())
            assert answer.status == 200 and body["matched_rule"] == 1
            assert body["answer"]["outcomes"][0]["body"].encode() == admin.public(GERMAN_URL)[2]
            payload = json.dumps({"change": {"action": "delete", "rule_id": 1}, "urls": [GERMAN_URL]})
            conn.request("POST", "/explain/preview", body=payload, headers={**auth, "Content-Type": "application/json"})
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["summary"]["changed"] == 1
            conn.close()
    finally:
        admin.storage.close()
