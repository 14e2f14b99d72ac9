"""Shared by the admin family tests: the in-process transcript replay (:class:`Replay`, fixture
``replay``) for the users, shutoffs, required-signoffs and service families, and a small app
(fixture ``app``) with a handful of users for the rules the transcripts do not reach."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping
from urllib.parse import unquote

import pytest
from falcon import testing

from balrog_app.admin import required_signoffs, service, shutoffs, users
from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from balrog_engine import load_plugins
from tests.admin_conformance import harness

REGISTRY = load_plugins()
FAMILIES = [users.routes, shutoffs.routes, required_signoffs.routes, service.routes]
BACKENDS = [pytest.param("memory://", id="memory"), pytest.param("sqlite:///{tmp}/admin.db", id="sqlite")]


def transcript(name: str) -> harness.Transcript:
    path = harness.SHARED_TRANSCRIPTS / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"shared transcript {name} not available")
    return harness.load_transcript(path)


class Replay:
    """One transcript against a fresh storage and the admin app of these families, in process."""

    def __init__(self, name: str, url: str, tmp_path: Path, version: Mapping | None = None):
        self.transcript = transcript(name)
        self.storage = REGISTRY.storage_for(url.format(tmp=tmp_path))
        bootstrap = self.transcript.bootstrap
        seed(self.storage, bootstrap.get("permissions", ()), bootstrap.get("roles", ()))
        self.tokens = harness.make_tokens(self.transcript.users)
        self.ctx = AdminContext(self.storage, REGISTRY,
                                StaticTokens({token: user for user, token in self.tokens.items()}),
                                system_accounts=frozenset(self.transcript.config.get("system_accounts", ())),
                                version=version, enact_due_only_for_system_accounts=False)
        self.client = testing.TestClient(create_admin_app(self.ctx, FAMILIES))

    def send(self, step: harness.Step) -> testing.Result:
        method, target, headers, body = harness.request_for(step, self.tokens)
        path, _, query = target.partition("?")
        return self.client.simulate_request(method, unquote(path), query_string=query or None, headers=headers,
                                            body=body)

    def check(self, step: harness.Step) -> list[str]:
        result = self.send(step)
        assert result.status_code != 500, f"step {step.index}: 500 for {step.describe()}"
        return harness.compare(step, result.status_code, dict(result.headers), result.content)

    def run(self, indices: Iterable[int] | None = None,
            before: Mapping[int, Callable[["Replay"], None]] | None = None) -> list[int]:
        """Replay the steps ``indices`` (all by default) in order, running ``before[i]`` (storage
        set-up standing in for skipped steps) first; fail with every mismatch. Returns the steps run."""
        wanted = set(range(len(self.transcript.steps)) if indices is None else indices)
        before = before or {}
        failures, ran = [], []
        for step in self.transcript.steps:
            if step.index in before:
                before[step.index](self)
            if step.index not in wanted:
                continue
            ran.append(step.index)
            mismatches = self.check(step)
            if mismatches:
                failures.append(f"step {step.index} {step.describe()}:\n  " + "\n  ".join(mismatches))
        assert not failures, f"{self.transcript.name}: {len(failures)} of {len(ran)} steps differ\n" + \
            "\n".join(failures)
        return ran

    def close(self):
        self.storage.close()


@pytest.fixture(params=BACKENDS)
def replay(request, tmp_path):
    opened = []

    def open_(name: str, **kwargs) -> Replay:
        opened.append(Replay(name, request.param, tmp_path, **kwargs))
        return opened[-1]

    yield open_
    for r in opened:
        r.close()


class FullReplay(Replay):
    """:class:`Replay` with every family (and the transcript's allowlisted domains)."""

    def __init__(self, name, url, tmp_path):
        super().__init__(name, url, tmp_path)
        self.ctx.allowlisted_domains = self.transcript.config.get("allowlisted_domains", {})
        self.client = testing.TestClient(create_admin_app(self.ctx))


@pytest.fixture(params=BACKENDS)
def full(request, tmp_path):
    """``full(transcript name)``: a :class:`FullReplay` on a fresh database."""
    opened = []

    def open_(name):
        opened.append(FullReplay(name, request.param, tmp_path))
        return opened[-1]

    yield open_
    for r in opened:
        r.close()


# --- a small app for the rules the transcripts do not reach ----------------------------------------------
ADMIN, ALICE, BOB, CAROL, DAVE = "admin@example.com", "alice@example.com", "bob@example.com", "carol@example.com", \
    "dave@example.com"


@pytest.fixture(params=BACKENDS)
def app(request, tmp_path):
    storage = REGISTRY.storage_for(request.param.format(tmp=tmp_path))
    seed(storage, permissions=[
        {"username": ADMIN, "permission": "admin", "options": None},
        {"username": ALICE, "permission": "permission", "options": None},
        {"username": BOB, "permission": "rule", "options": {"products": ["Firefox"]}},
        {"username": CAROL, "permission": "permission", "options": {"actions": ["view"]}},
        {"username": "restricted@example.com", "permission": "admin", "options": {"products": ["Firefox"]}},
    ], roles=[{"username": BOB, "role": "relman"}, {"username": ADMIN, "role": "relman"}])
    names = [ADMIN, ALICE, BOB, CAROL, DAVE, "restricted@example.com"]
    ctx = AdminContext(storage, REGISTRY, StaticTokens({f"t-{n}": n for n in names}))
    client = testing.TestClient(create_admin_app(ctx, FAMILIES))

    def call(method, path, user=None, json=None, query=None):
        headers = {"Authorization": f"Bearer t-{user}"} if user else {}
        if isinstance(json, str) and json.startswith("{"):  # a raw body (escapes falcon's json= cannot send)
            headers["Content-Type"] = "application/json"
            return client.simulate_request(method, path, headers=headers, body=json, query_string=query)
        return client.simulate_request(method, path, headers=headers, json=json, query_string=query)

    call.storage = storage
    yield call
    storage.close()


