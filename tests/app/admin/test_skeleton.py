"""What every admin response shares (admin-api.md §0): framework answers for unknown routes and
methods, HEAD and OPTIONS, the security headers, authentication failures, body limits, no 500
for a storage refusal; and the required-signoff arithmetic."""
from __future__ import annotations

import http.client
import json

import pytest
from falcon import testing

from balrog_app.admin import signoffs
from balrog_app.admin.app import AdminContext, Resource, create_admin_app, send_json
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.problems import Problem
from balrog_app.admin.requests import check_query, json_object
from balrog_app.admin.testing import seed, serve
from balrog_engine import NotFound, load_plugins

REGISTRY = load_plugins()


class Echo(Resource):
    def on_get(self, req, resp):
        check_query(req, ("product",))
        send_json(resp, {"ok": True})

    def on_post(self, req, resp):
        body = json_object(req)
        user = self.ctx.user(req)
        send_json(resp, {"user": user, "body": body})

    def on_delete(self, req, resp):
        raise NotFound("nothing here")  # a storage refusal nobody turned into endpoint text


@pytest.fixture
def ctx():
    storage = REGISTRY.storage_for("memory://")
    seed(storage, permissions=[{"username": "alice@example.com", "permission": "admin", "options": None}])
    yield AdminContext(storage, REGISTRY, StaticTokens({"t-alice": "alice@example.com", "t-bob": "bob@example.com",
                                                       "t-agent": "balrogagent"}),
                       cors_origins=("https://ui.example.com",), max_body_bytes=1000)
    storage.close()


@pytest.fixture
def client(ctx):
    return testing.TestClient(create_admin_app(ctx, [lambda c: [("/echo", Echo(c))]]))


def test_unknown_routes_and_methods_are_the_frameworks_problems(client):
    missing = client.simulate_get("/nowhere")
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    assert missing.json["title"] == "Not Found" and missing.json["type"] == "about:blank"
    patched = client.simulate_request("PATCH", "/echo")
    assert (patched.status_code, patched.headers["content-type"]) == (405, "application/problem+json")
    assert patched.json["title"] == "Method Not Allowed"


def test_head_and_options(client):
    head = client.simulate_head("/echo")
    assert head.status_code == 200 and head.text == "" and head.headers["content-type"] == "application/json"
    options = client.simulate_options("/echo")
    assert options.status_code == 200 and options.headers["content-type"] == "text/html; charset=utf-8"


def test_security_and_cors_headers(client):
    response = client.simulate_get("/echo", headers={"Origin": "https://ui.example.com"})
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert response.headers["access-control-allow-origin"] == "https://ui.example.com"
    other = client.simulate_get("/echo", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_strict_query_parameters(client):
    assert client.simulate_get("/echo", query_string="product=Firefox").status_code == 200
    refused = client.simulate_get("/echo", query_string="product=Firefox&bogus=1")
    assert refused.status_code == 400 and refused.json["title"] is None
    assert refused.json["detail"] == "Extra query parameter(s) bogus not in spec"


def test_authentication_outcomes(client):
    assert client.simulate_post("/echo", json={}, headers={"Authorization": "Bearer t-alice"}).json["user"] == \
        "alice@example.com"
    assert client.simulate_post("/echo", json={}, headers={"Authorization": "Bearer t-agent"}).json["user"] == \
        "balrogagent"  # a machine identity needs no permission row to authenticate
    anonymous = client.simulate_post("/echo", json={})
    assert anonymous.status_code == 401 and anonymous.json["detail"] == "PermissionDeniedError"
    stranger = client.simulate_post("/echo", json={}, headers={"Authorization": "Bearer t-bob"})
    assert stranger.status_code == 403 and stranger.json["detail"] == "Authorization Required"


def test_bad_bodies_are_4xx(client):
    malformed = client.simulate_post("/echo", body="{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json["detail"] == "Request body is not valid JSON"
    not_object = client.simulate_post("/echo", body="[1]", headers={"Content-Type": "application/json"})
    assert not_object.status_code == 400
    huge = client.simulate_post("/echo", body="[" + "1," * 1000 + "1]", headers={"Content-Type": "application/json"})
    assert huge.status_code == 413


def test_storage_refusals_are_never_500(client):
    refused = client.simulate_delete("/echo")
    assert refused.status_code == 404 and refused.json["detail"] == "NotFound"


def test_problems_render_both_families():
    own = Problem(400, "Bad Request", "OutdatedDataError", "text")
    assert own.body == {"type": "about:blank", "title": "Bad Request", "detail": "OutdatedDataError",
                        "status": 400, "exception": "text"}
    assert "exception" not in Problem(400, "Bad Request", "x").body


def test_served_over_real_http(ctx):
    with serve(create_admin_app(ctx, [lambda c: [("/echo", Echo(c))]])) as base:
        host, port = base[len("http://"):].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", "/echo", body=json.dumps({"a": 1}),
                     headers={"Authorization": "Bearer t-alice", "Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"user": "alice@example.com",
                                                                           "body": {"a": 1}}


# --- required signoffs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rule_channel,required,matches", [
    (None, "release", True), ("", "beta", True), ("release", "release", True), ("release", "beta", False),
    ("release*", "release-cck-x", True), ("rel*", "release", True), ("r*", "release", False),
    ("beta*", "release", False),
])
def test_channel_globs(rule_channel, required, matches):
    assert signoffs.channel_matches(rule_channel, required) is matches


def test_requirements_take_the_maximum_per_role_over_old_and_new(ctx):
    with ctx.storage.session("setup") as s:
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                          "signoffs_required": 1})
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "beta", "role": "relman",
                                          "signoffs_required": 2})
        s.insert("product_req_signoffs", {"product": "Thunderbird", "channel": "release", "role": "qa",
                                          "signoffs_required": 1})
    with ctx.storage.session() as s:
        assert signoffs.for_rules(s, [{"product": "Firefox", "channel": "release"},
                                      {"product": "Firefox", "channel": "beta"}]) == {"relman": 2}
        assert signoffs.for_rules(s, [{"product": None, "channel": "release"}]) == {"relman": 1, "qa": 1}
        assert signoffs.for_rules(s, [{"product": "Firefox", "channel": "aurora"}]) == {}


def test_verify_signoffs():
    signoffs.verify({}, {})
    with pytest.raises(Problem, match="Signoff Required") as none:
        signoffs.verify({"relman": 1}, {})
    assert none.value.exception == "No Signoffs given"
    with pytest.raises(Problem) as short:
        signoffs.verify({"relman": 2}, {"a": "relman", "b": "qa"})
    assert short.value.exception == "Not enough signoffs for role 'relman'"
    signoffs.verify({"relman": 2}, {"a": "relman", "b": "relman"})
