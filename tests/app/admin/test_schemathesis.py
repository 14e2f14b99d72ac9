"""Property-based testing of the whole admin API from its own OpenAPI document: the app is served
over real HTTP on 127.0.0.1 (memory storage seeded with an admin and a few rules, releases and a
shutoff), schemathesis loads ``/openapi.json`` from it and sends every operation a bounded number
of generated requests, authenticated as the admin. Each answer must not be a 5xx, must have a
documented status, and its body must match the documented schema.

Deterministic for CI: hypothesis is derandomized (examples derive from the test itself), the
operations run in document order, one request at a time, against a fresh database.
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed, serve
from balrog_engine import load_plugins

REGISTRY = load_plugins()
ADMIN = "admin@example.com"
TOKEN = "t-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Generated requests per operation (about 180 operations, HEAD included): valid ones, invalid ones.
EXAMPLES = 8
NEGATIVE_EXAMPLES = 5
HEAD_EXAMPLES = 2
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ALLOWLIST = {"download.mozilla.org": ["Firefox"], "archive.mozilla.org": ["Firefox"]}


@schemathesis.deserializer("text/html")
def _html(ctx, response) -> Any:
    """v1 answers JSON text labelled ``text/html`` (admin-api.md §0.4): read it as JSON when it
    parses, else as the text it is (``Excellent!``, ``OK!``)."""
    text = response.content.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _v1_blob(name: str) -> str:
    locale = {"complete": {"filesize": 1000, "from": "*", "hashValue": "00" * 20,
                           "fileUrl": "http://download.mozilla.org/?product=firefox-complete&os=winnt&lang=de"}}
    return json.dumps({"name": name, "schema_version": 1, "hashFunction": "sha512", "appv": "60.0", "extv": "60.0",
                       "platforms": {"WINNT_x86-msvc": {"buildID": "20180501120000", "locales": {"de": locale}}}})


def _v2_blob(name: str) -> dict:
    locale = {"buildID": "20190901000000", "appVersion": "80.0", "displayVersion": "80.0",
              "completes": [{"from": "*", "filesize": 5, "hashValue": "0" * 64,
                             "fileUrl": "https://archive.mozilla.org/pub/firefox/80.0/de/firefox.complete.mar"}]}
    return {"name": name, "schema_version": 9, "hashFunction": "sha512", "appVersion": "80.0",
            "displayVersion": "80.0", "platforms": {"WINNT_x86_64-msvc": {"locales": {"de": locale}}}}


def _populate(base_url: str) -> None:
    """A few objects of each kind, made through the API itself."""
    day = 24 * 3600 * 1000
    calls = [
        ("PUT", "/releases/Firefox-60.0-build1", {"name": "Firefox-60.0-build1", "product": "Firefox",
                                                   "blob": _v1_blob("Firefox-60.0-build1")}),
        ("PUT", "/releases/Firefox-61.0-build1", {"name": "Firefox-61.0-build1", "product": "Firefox",
                                                   "blob": _v1_blob("Firefox-61.0-build1")}),
        ("PUT", "/v2/releases/Firefox-80.0-build1", {"product": "Firefox", "blob": _v2_blob("Firefox-80.0-build1")}),
        ("POST", "/rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                            "channel": "release", "mapping": "Firefox-60.0-build1", "alias": "firefox-release"}),
        ("POST", "/rules", {"priority": 90, "backgroundRate": 50, "update_type": "minor", "product": "Firefox",
                            "channel": "beta", "mapping": "Firefox-61.0-build1", "version": "<61.0"}),
        ("PUT", "/users/alice@example.com/permissions/rule", {"options": json.dumps({"products": ["Firefox"]})}),
        ("PUT", "/users/admin@example.com/roles/relman", None),
        ("POST", "/emergency_shutoff", {"product": "Firefox", "channel": "nightly", "comment": "stop"}),
        ("POST", "/scheduled_changes/rules", {"change_type": "update", "when": int(time.time() * 1000) + 30 * day,
                                              "rule_id": 2, "data_version": 1, "priority": 91, "backgroundRate": 50,
                                              "update_type": "minor", "product": "Firefox", "channel": "beta",
                                              "mapping": "Firefox-61.0-build1"}),
        ("PUT", "/v2/releases/Firefox-80.0-build1/pinnable", {"product": "Firefox", "channel": "release",
                                                               "version": "80."}),
    ]
    for method, path, body in calls:
        answer = requests.request(method, base_url + path, json=body, headers=AUTH, timeout=10)
        assert answer.status_code in (200, 201), (method, path, answer.status_code, answer.text)


@pytest.fixture(scope="module")
def api():
    storage = REGISTRY.storage_for("memory://")
    seed(storage, permissions=[{"username": ADMIN, "permission": "admin", "options": None}])
    ctx = AdminContext(storage, REGISTRY, StaticTokens({TOKEN: ADMIN}), system_accounts=frozenset({"balrogagent"}),
                       allowlisted_domains=ALLOWLIST)
    with serve(create_admin_app(ctx)) as base_url:
        _populate(base_url)
        yield base_url, schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    storage.close()


def _run(operation, base_url: str, session: requests.Session) -> str | None:
    """Send one operation its documented examples, then ``EXAMPLES`` generated requests; the
    first failure, reported (None when every answer is as documented)."""
    found: list[str] = []

    def send(case) -> None:
        if found:
            return
        try:
            case.call_and_validate(base_url=base_url, session=session, headers=AUTH, checks=CHECKS)
        except FailureGroup as failures:
            found.append(str(failures))

    # The documented examples (one request each), then valid requests, then invalid ones (which
    # must be refused with a documented 4xx, never a 5xx).
    # HEAD runs GET's code (without the body): a few requests suffice.
    head = operation.method.upper() == "HEAD"
    strategies = [(strategy, 1, False) for strategy in operation.get_strategies_from_examples(headers=AUTH)]
    strategies.append((operation.as_strategy(headers=AUTH), HEAD_EXAMPLES if head else EXAMPLES, False))
    if not head and (len(operation.path_parameters) or len(operation.query) or len(operation.body)):
        strategies.append((operation.as_strategy(GenerationMode.NEGATIVE, headers=AUTH), NEGATIVE_EXAMPLES, True))
    for strategy, count, negative in strategies:

        @settings(max_examples=count, derandomize=True, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def exercise(case):
            send(case)

        try:
            exercise()
        except Unsatisfiable:
            if not negative:
                raise
            # An operation without parameters or body: nothing can be made invalid.
    return found[0] if found else None


def test_every_operation_answers_as_documented(api):
    base_url, schema = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 100
    failures = {}
    with requests.Session() as session:
        for operation in operations:
            failure = _run(operation, base_url, session)
            if failure:
                failures[operation.label] = failure
    report = "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())
    assert not failures, f"{len(failures)} of {len(operations)} operations fail:\n\n{report}"
