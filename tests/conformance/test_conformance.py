"""Every request of every recorded scenario, on every storage backend, through the real WSGI app.

PostgreSQL and MySQL/MariaDB join when ``BALROG_TEST_POSTGRESQL_URL`` / ``BALROG_TEST_MYSQL_URL``
are set (``eval "$(.ci/databases.sh)"``; CI always sets them). Each scenario gets a fresh
namespace of its own: a schema on PostgreSQL (through the connection's ``search_path``), a
database on MySQL (``<test database>_c<n>``, which the test user may create).
"""
from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from balrog_engine import Engine, load_plugins
from balrog_engine.dataset import parse_dataset
from balrog_app.public import create_app

from .conftest import record
from .harness import call_wsgi, compare, load_divergences, scenario_files

#: Database servers that join the run when ``BALROG_TEST_<NAME>_URL`` is set.
SERVER_URLS = {
    backend: os.environ[f"BALROG_TEST_{backend.upper()}_URL"]
    for backend in ("postgresql", "mysql")
    if os.environ.get(f"BALROG_TEST_{backend.upper()}_URL")
}
BACKENDS = ("memory", "sqlite", *SERVER_URLS)
REGISTRY = load_plugins()
DIVERGENCES = load_divergences()
SCENARIOS = {path.stem: json.loads(path.read_text()) for path in scenario_files()}
CASES = [
    pytest.param(backend, name, i, id=f"{backend}-{name}-{i}")
    for backend in BACKENDS
    for name, scenario in SCENARIOS.items()
    for i in range(len(scenario["requests"]))
]


class ServerNamespaces:
    """Fresh, empty per-scenario namespaces on a database server, dropped at the end."""

    def __init__(self, backend: str, url: str):
        self.backend, self.url = backend, make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def fresh(self, index: int) -> str:
        """A storage URL whose tables live in namespace ``index`` (emptied first)."""
        name = f"{self.url.database}_c{index}"
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        self.created.append(name)
        if self.backend == "postgresql":
            url = self.url.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            url = self.url.set(database=name)
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                if self.backend == "postgresql":
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.admin.dispose()


@pytest.fixture(scope="session")
def apps(tmp_path_factory):
    """One app per (backend, scenario), built lazily and kept for the session."""
    built: dict = {}
    servers = {backend: ServerNamespaces(backend, url) for backend, url in SERVER_URLS.items()}
    scenario_index = {name: i for i, name in enumerate(SCENARIOS)}

    def get(backend: str, name: str):
        key = (backend, name)
        if key not in built:
            if backend == "memory":
                url = "memory://"
            elif backend == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('db')}/{name}.db"
            else:
                url = servers[backend].fresh(scenario_index[name])
            storage = REGISTRY.storage_for(url)
            storage.replace_all(parse_dataset(SCENARIOS[name], REGISTRY, source=name))
            engine = Engine(storage, REGISTRY, roll=lambda: 0)
            built[key] = (create_app(engine), engine)
        return built[key][0]

    yield get
    for _, engine in built.values():
        engine.close()
    for server in servers.values():
        server.drop_all()


def test_backends_available():
    for backend in BACKENDS:
        assert backend in REGISTRY.storage_backends


def test_scenarios_found():
    assert SCENARIOS, "no conformance scenarios found"


@pytest.mark.parametrize("backend,name,index", CASES)
def test_request(apps, backend, name, index):
    request = SCENARIOS[name]["requests"][index]
    key = (name, index)
    record(backend, key, "pending")
    got = call_wsgi(apps(backend, name), request["path"], request.get("headers"))
    outcome = compare(request, got)
    for note in outcome.notes:
        print(note)
    if not outcome.matched and (name, request["path"]) in DIVERGENCES:
        record(backend, key, "divergent")
        print(f"intended divergence: {DIVERGENCES[(name, request['path'])]}")
        return
    if outcome.matched:
        record(backend, key, "ok")
    assert outcome.matched, f"{name} #{index} {request['path']}\n" + "\n".join(outcome.problems)
