"""Every request of every recorded scenario, on every storage backend, through the real WSGI app."""
from __future__ import annotations

import json

import pytest

from balrog_engine import Engine, load_plugins
from balrog_engine.dataset import parse_dataset
from balrog_app.public import create_app

from .conftest import record
from .harness import call_wsgi, compare, load_divergences, scenario_files

BACKENDS = ("memory", "sqlite")
REGISTRY = load_plugins()
DIVERGENCES = load_divergences()
SCENARIOS = {path.stem: json.loads(path.read_text()) for path in scenario_files()}
CASES = [
    pytest.param(backend, name, i, id=f"{backend}-{name}-{i}")
    for backend in BACKENDS
    for name, scenario in SCENARIOS.items()
    for i in range(len(scenario["requests"]))
]


@pytest.fixture(scope="session")
def apps(tmp_path_factory):
    """One app per (backend, scenario), built lazily and kept for the session."""
    built: dict = {}

    def get(backend: str, name: str):
        key = (backend, name)
        if key not in built:
            url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path_factory.mktemp('db')}/{name}.db"
            storage = REGISTRY.storage_for(url)
            storage.replace_all(parse_dataset(SCENARIOS[name], REGISTRY, source=name))
            engine = Engine(storage, REGISTRY, roll=lambda: 0)
            built[key] = create_app(engine)
        return built[key]

    return get


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
