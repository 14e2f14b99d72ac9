"""Replay every admin-API transcript (shared ones and ``BALROG_ADMIN_TRANSCRIPT_DIRS``) against
our admin app over real HTTP, each on a fresh database, on every backend: memory, SQLite and
(when ``BALROG_TEST_POSTGRESQL_URL`` / ``BALROG_TEST_MYSQL_URL`` are set) PostgreSQL and
MariaDB/MySQL, and print
``admin conformance: <matched>/<total> steps match``.

Every step must match, or be listed with its reason in ``divergences.json`` (where we behave
better than the reference on purpose); on failure the report shows each mismatching step with
its request and a diff.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed, serve
from balrog_engine import load_plugins
from tests.admin_conformance import harness
from tests.storage.databases import empty

REGISTRY = load_plugins()


def backends():
    params = [pytest.param("memory", id="memory"), pytest.param("sqlite", id="sqlite")]
    for server in ("postgresql", "mysql"):
        if os.environ.get(f"BALROG_TEST_{server.upper()}_URL"):
            params.append(pytest.param(server, id=server))
    return params


def fresh_storage(backend: str, tmp_path: Path, name: str):
    if backend == "memory":
        return REGISTRY.storage_for("memory://")
    if backend == "sqlite":
        return REGISTRY.storage_for(f"sqlite:///{tmp_path}/{name}.db")
    storage = REGISTRY.storage_for(os.environ[f"BALROG_TEST_{backend.upper()}_URL"])
    empty(storage)  # every id sequence restarts at 1, as on the reference's fresh database
    return storage


def replay_all(backend: str, tmp_path: Path) -> tuple[list, dict]:
    divergences = harness.load_divergences()
    results = []
    for transcript in harness.load_transcripts():
        storage = fresh_storage(backend, tmp_path, transcript.name)
        try:
            seed(storage, transcript.bootstrap.get("permissions", ()), transcript.bootstrap.get("roles", ()))
            tokens = harness.make_tokens(transcript.users)
            ctx = AdminContext(
                storage, REGISTRY, StaticTokens({token: user for user, token in tokens.items()}),
                system_accounts=frozenset(transcript.config.get("system_accounts", ())),
                allowlisted_domains=transcript.config.get("allowlisted_domains", {}),
                # The recordings let the agent enact changes due in 2100; ours refuses by default.
                enact_due_only_for_system_accounts=False)
            with serve(create_admin_app(ctx)) as base_url:
                results.append(harness.replay(transcript, base_url, tokens, divergences=divergences))
        finally:
            storage.close()
    return results, divergences


@pytest.mark.parametrize("backend", backends())
def test_admin_transcripts(backend, tmp_path, capsys):
    results, divergences = replay_all(backend, tmp_path)
    report = harness.format_report(results, divergences)
    with capsys.disabled():
        print(f"\n[{backend}] " + report.splitlines()[-1])
    assert harness.check_divergences(divergences, [r.transcript for r in results]) == []
    assert all(result.passed for result in results), report
