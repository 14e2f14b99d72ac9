"""The admin API's OpenAPI document (``GET /openapi.json``, app/admin/openapi.py): a valid
OpenAPI 3.1 document that lists exactly the operations the app serves, and whose response schemas
hold for what the server really answers (every step of every recorded transcript, replayed)."""
from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest
from falcon import inspect, routing, testing
from jsonschema import Draft202012Validator
from marshmallow import fields
from openapi_spec_validator import validate as validate_openapi

from balrog_app.admin import openapi, schemas
from balrog_app.admin.app import AdminContext, Resource, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.problems import Problem
from balrog_app.admin.schemas import NewRuleSchema, load
from balrog_app.admin.testing import seed
from balrog_engine import load_plugins
from tests.admin_conformance import harness

REGISTRY = load_plugins()
PROBED = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


@pytest.fixture
def storage():
    storage = REGISTRY.storage_for("memory://")
    yield storage
    storage.close()


@pytest.fixture
def client(storage):
    return testing.TestClient(create_admin_app(AdminContext(storage, REGISTRY, StaticTokens({}))))


@pytest.fixture
def document(client):
    answer = client.simulate_get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    return answer.json


def test_the_document_is_valid_openapi_and_needs_no_login(client, document):
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                                                       "bearerFormat": "JWT"}
    # Extra query parameters are refused there as everywhere (admin-api.md §0.2).
    assert client.simulate_get("/openapi.json", query_string="x=1").status_code == 400


def _documented(document) -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): op for path, item in document["paths"].items() for method, op in item.items()}


def _served(client, app) -> set[tuple[str, str]]:
    """Every (method, path template) the app answers with something else than 405, found by
    asking it: each route of its table, each method, path parameters set to ``1``, no login (so
    nothing is written)."""
    served = set()
    for route in inspect.inspect_routes(app):
        concrete = re.sub(r"{\w+}", "1", route.path)
        methods = {m.method for m in route.methods if not m.internal}
        for method in PROBED:
            if method in methods and client.simulate_request(method, concrete).status_code != 405:
                served.add((method, route.path))
    return served


def test_every_served_operation_is_documented_and_every_documented_one_is_served(storage, document):
    app = create_admin_app(AdminContext(storage, REGISTRY, StaticTokens({})))
    served = _served(testing.TestClient(app), app)
    documented = _documented(document)
    undocumented = sorted(key for key in served if key not in documented or documented[key].get("x-undocumented"))
    assert not undocumented, f"served but not described in app/admin/openapi.py: {undocumented}"
    assert sorted(set(documented) - served) == [], "documented but not served"
    assert ("HEAD", "/rules/{id_or_alias}") in served and ("OPTIONS", "/rules") not in documented


def test_operations_declare_parameters_security_and_statuses(document):
    operations = _documented(document)
    delete = operations[("DELETE", "/rules/{id_or_alias}")]
    assert delete["security"] == [{"bearerAuth": []}]
    assert [(p["name"], p["in"], p["required"]) for p in delete["parameters"]] == [
        ("id_or_alias", "path", True), ("data_version", "query", True)]
    assert {"200", "400", "401", "403", "404"} <= set(delete["responses"])
    history = operations[("GET", "/rules/history")]
    assert history["security"] == [] and {"page", "limit", "timestamp_from", "timestamp_to"} <= {
        p["name"] for p in history["parameters"]}
    assert operations[("GET", "/users")]["security"] == [{"bearerAuth": []}]
    create = operations[("POST", "/rules")]
    assert set(create["responses"]) == {"200", "400", "401", "403", "413"}
    new_rule = document["components"]["schemas"]["NewRule"]
    # Unknown members are accepted (and ignored): release automation sends them (client-compat.md §5).
    assert new_rule["additionalProperties"] is True
    assert {"priority", "backgroundRate", "update_type", "mapping"} <= set(new_rule["required"])
    assert document["components"]["schemas"]["Rule"]["additionalProperties"] is False
    sc_paths = [path for path in document["paths"] if path.startswith("/scheduled_changes/")]
    assert "/scheduled_changes/emergency_shutoff/{sc_id}/signoffs" in sc_paths
    one = operations[("GET", "/scheduled_changes/rules/{sc_id}")]
    assert one["parameters"][0]["schema"]["type"] == "integer"


# --- the documented response schemas hold for real answers ---------------------------------------------
def _validator(document, schema) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": document["components"]})


def _media_type(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip() if content_type else None


def _body(media_type: str | None, content: bytes):
    """The body as a client reads it: JSON, or for ``text/html`` JSON text when it parses (§0.4),
    else the text."""
    text = content.decode()
    if media_type == "text/html":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return json.loads(text)


def check_answer(document, router, method: str, path: str, status: int, headers, content: bytes) -> str | None:
    """Why an answer does not match the document (None when it does, or the route is unknown)."""
    found = router.find(path)
    if found is None or status == 405 or method == "OPTIONS":
        return None  # unknown routes and methods, and CORS preflights, are the framework's: not operations
    template = found[3]
    op = document["paths"].get(template, {}).get(method.lower())
    if op is None:
        return f"{method} {template} is not documented"
    response = op["responses"].get(str(status))
    if response is None:
        return f"{method} {template}: status {status} is not documented"
    media_type = _media_type(headers.get("content-type"))
    if method == "HEAD" or not content:
        return None
    documented = response.get("content", {})
    if media_type not in documented:
        return f"{method} {template} {status}: content type {media_type} not documented ({sorted(documented)})"
    errors = sorted(_validator(document, documented[media_type]["schema"]).iter_errors(_body(media_type, content)),
                    key=str)
    if errors:
        return f"{method} {template} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"
    return None


def _router(ctx) -> routing.CompiledRouter:
    router = routing.CompiledRouter()
    for path, resource in openapi.app_routes(ctx):
        router.add_route(path, resource)
    return router


def test_every_answer_of_every_transcript_matches_the_document(tmp_path):
    """Replays every recorded transcript in process (memory storage) and checks each answer of
    ours against the document: documented status, content type and body schema."""
    transcripts = harness.load_transcripts()
    assert transcripts, "no transcripts found"
    mismatches, checked, document = [], 0, None
    for transcript in transcripts:
        storage = REGISTRY.storage_for("memory://")
        try:
            bootstrap = transcript.bootstrap
            seed(storage, bootstrap.get("permissions", ()), bootstrap.get("roles", ()))
            tokens = harness.make_tokens(transcript.users)
            ctx = AdminContext(storage, REGISTRY, StaticTokens({t: u for u, t in tokens.items()}),
                               system_accounts=frozenset(transcript.config.get("system_accounts", ())),
                               allowlisted_domains=transcript.config.get("allowlisted_domains", {}))
            client = testing.TestClient(create_admin_app(ctx))
            if document is None:
                document = client.simulate_get("/openapi.json").json
            router = _router(ctx)
            for step in transcript.steps:
                method, target, headers, body = harness.request_for(step, tokens)
                path, _, query = target.partition("?")
                path = unquote(path)
                answer = client.simulate_request(method, path, query_string=query or None, headers=headers, body=body)
                why = check_answer(document, router, method, path, answer.status_code, answer.headers,
                                   answer.content)
                checked += 1
                if why:
                    mismatches.append(f"{transcript.name} step {step.index}: {why}")
        finally:
            storage.close()
    assert checked > 300
    assert not mismatches, "\n".join(mismatches)


# --- schemas.load: the helper the families can validate bodies with ------------------------------------
class _Echo(Resource):
    """A resource that validates its body with :func:`load`, as a family would."""

    def on_post(self, req, resp):
        from balrog_app.admin.app import send_json
        from balrog_app.admin.requests import json_body
        send_json(resp, load(NewRuleSchema, json_body(req)))


@pytest.fixture
def echo(storage):
    app = create_admin_app(AdminContext(storage, REGISTRY, StaticTokens({})), [lambda c: [("/echo", _Echo(c))]])
    return testing.TestClient(app)


def test_load_accepts_numeric_strings_and_ignores_unknown_members(echo):
    answer = echo.simulate_post("/echo", json={"priority": "10", "backgroundRate": 100, "update_type": "minor",
                                               "mapping": "Firefox-60.0-build1", "whatever": 1, "csrf_token": "x"})
    assert answer.status_code == 200
    assert answer.json == {"priority": 10, "backgroundRate": 100, "update_type": "minor",
                           "mapping": "Firefox-60.0-build1"}


@pytest.mark.parametrize("body, detail", [
    ({"backgroundRate": 1, "update_type": "minor", "mapping": "m"}, "'priority' is a required property"),
    ({"priority": "ten", "backgroundRate": 1, "update_type": "minor", "mapping": "m"}, "priority: Not an integer."),
    ({"priority": 1, "backgroundRate": 101, "update_type": "minor", "mapping": "m"}, "backgroundRate: Must be <= 100."),
    ({"priority": 1, "backgroundRate": 1, "update_type": "minor", "mapping": "m", "jaws": "yes"},
     "jaws: Not a valid boolean."),
    ([1, 2], "[1, 2] is not of type 'object'"),
])
def test_load_refuses_with_the_validation_layers_400_naming_the_member(echo, body, detail):
    answer = echo.simulate_post("/echo", json=body)
    assert (answer.status_code, answer.headers["content-type"]) == (400, "application/problem+json")
    assert answer.json["detail"] == detail and answer.json["status"] == 400


RULE = {"priority": 1, "backgroundRate": 1, "update_type": "minor", "mapping": "m"}


@pytest.mark.parametrize("raw, detail", [
    # longer than the column (the schema's maxLength: the column size)
    (json.dumps({**RULE, "product": "p" * 16}), "product: Longer than maximum length 15."),
    # an unpaired surrogate: valid JSON, not text a database can store
    (json.dumps({**RULE, "comment": "\ud800"}), "comment: '\\ud800' is not valid unicode"),
    # beyond the 32-bit column
    (json.dumps({**RULE, "priority": 2**31}), "priority: Must be <= 2147483647."),
])
def test_load_refuses_what_no_column_holds(echo, raw, detail):
    answer = echo.simulate_post("/echo", body=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json["detail"] == detail


def test_load_names_nested_members_by_their_path():
    nested = schemas.Request.from_dict({"items": fields.List(fields.Nested(schemas.Request.from_dict(
        {"role": schemas._str(50, required=True)})))})
    with pytest.raises(Problem) as refused:
        load(nested, {"items": [{"role": "relman"}, {"role": 5}]})
    assert refused.value.detail == "items[1].role: Not a valid string."
    with pytest.raises(Problem) as refused:
        load(nested, {"items": [{}]})
    assert refused.value.detail == "'items[0].role' is a required property"


def test_request_schemas_take_what_the_reference_takes():
    """Where the reference accepts more than a strict schema would, the schemas do too."""
    assert load(schemas.ReleaseFormSchema, {"product": "Firefox", "data": "{}", "copyTo": "", "alias": ""}) == \
        {"product": "Firefox", "data": {}, "copyTo": None, "alias": None}
    for empty in ("", "null", "[]", "{}", None):
        assert load(schemas.PermissionPutSchema, {"options": empty})["options"] is None
    assert load(schemas.ReadOnlyPutSchema, {"read_only": "", "data_version": 1})["read_only"] is False
    with pytest.raises(Problem):
        load(schemas.ReadOnlyPutSchema, {"read_only": 1, "data_version": 1})
