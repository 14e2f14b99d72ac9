"""Versioned writes on every SQL backend: in-statement version checks, history in the same
transaction, exact reads of any version, merges of stale non-overlapping writes."""
from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from balrog_engine.versioned import NotFound, StaleVersion, VersionedTable, history_table_for
from balrog_plugins.storage.sql import _write_transaction, make_engine
from balrog_plugins.storage.sql_schema import BLOB_TEXT

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "dataset.json"

metadata = MetaData()
documents = Table("vt_documents", metadata, Column("name", String(100), primary_key=True),
                  Column("data", BLOB_TEXT, nullable=False), Column("data_version", Integer, nullable=False))
DOCS = VersionedTable(documents, history_table_for(documents, metadata, compact=True), json_columns=("data",))


def put(conn, key, document, user):
    DOCS.insert(conn, {**key, "data": document}, user)
    return 1


def change(conn, key, document, old_version, user):
    return DOCS.update(conn, key, {"data": document}, old_version, user)


def read(conn, key, version):
    found = DOCS.read(conn, key, version)
    return None if found is None else found["data"]


def urls():
    params = [pytest.param("sqlite:///{tmp}/versioned.db", id="sqlite")]
    for backend in ("postgresql", "mysql"):
        if os.environ.get(f"BALROG_TEST_{backend.upper()}_URL"):
            params.append(pytest.param(os.environ[f"BALROG_TEST_{backend.upper()}_URL"], id=backend))
    return params


@pytest.fixture(params=urls())
def engine(request, tmp_path):
    engine = make_engine(request.param.format(tmp=tmp_path))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def write(engine, fn, *args):
    with _write_transaction(engine) as conn:
        return fn(conn, *args)


def current(engine, name="r"):
    with engine.connect() as conn:
        row = conn.execute(select(documents).where(documents.c.name == name)).mappings().first()
    return None if row is None else (json.loads(row["data"]), row["data_version"])


def history_rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(DOCS.history)).all()


def blob_with_locales(count: int) -> dict:
    doc = json.loads(BENCH.read_text())
    data = max((r["data"] for r in doc["releases"]), key=lambda d: len(json.dumps(d)))
    platform = next(p for p in data["platforms"].values() if isinstance(p, dict) and p.get("locales"))
    template = next(iter(platform["locales"].values()))
    for i in range(count):
        platform["locales"].setdefault(f"x{i:02d}", copy.deepcopy(template))
    return data


def locale_path(data: dict) -> tuple[str, dict]:
    name, platform = next((n, p) for n, p in data["platforms"].items() if isinstance(p, dict) and p.get("locales"))
    return name, platform["locales"]


def test_insert_update_and_exact_history(engine):
    versions = [{"a": 1, "b": {"c": [1, 2]}}, {"a": 2, "b": {"c": [1, 2, 3]}}, {"b": {"c": []}, "a": 2.0}]
    assert write(engine, put, {"name": "r"}, versions[0], "alice") == 1
    assert write(engine, change, {"name": "r"}, versions[1], 1, "bob") == 2
    assert write(engine, change, {"name": "r"}, versions[2], 2, "carol") == 3
    assert current(engine) == (versions[2], 3)
    with engine.connect() as conn:
        for number, expected in enumerate(versions, 1):
            assert json.dumps(read(conn, {"name": "r"}, number)) == json.dumps(expected)
        assert [c.changed_by for c in DOCS.changes(conn, {"name": "r"})] == ["carol", "bob", "alice"]


def test_stale_write_without_overlap_is_merged(engine):
    write(engine, put, {"name": "r"}, {"de": "1", "fr": "1"}, "a")
    write(engine, change, {"name": "r"}, {"de": "2", "fr": "1"}, 1, "a")
    assert write(engine, change, {"name": "r"}, {"de": "1", "fr": "2"}, 1, "b") == 3
    assert current(engine) == ({"de": "2", "fr": "2"}, 3)


def test_true_conflict_is_refused_and_nothing_is_written(engine):
    write(engine, put, {"name": "r"}, {"de": "1"}, "a")
    write(engine, change, {"name": "r"}, {"de": "2"}, 1, "a")
    before = (current(engine), len(history_rows(engine)))
    with pytest.raises(StaleVersion) as refused:
        write(engine, change, {"name": "r"}, {"de": "3"}, 1, "b")
    assert refused.value.conflicts == ["data.de"] and refused.value.current == 2
    assert (current(engine), len(history_rows(engine))) == before


def test_unknown_versions_and_deletes(engine):
    write(engine, put, {"name": "r"}, {"x": 1}, "a")
    with pytest.raises(StaleVersion):
        write(engine, change, {"name": "r"}, {"x": 2}, 7, "a")  # a version that never existed
    with pytest.raises(StaleVersion):
        write(engine, DOCS.delete, {"name": "r"}, 2, "a")
    write(engine, DOCS.delete, {"name": "r"}, 1, "a")
    assert current(engine) is None
    with pytest.raises(NotFound):
        write(engine, DOCS.delete, {"name": "r"}, 1, "a")
    with pytest.raises(NotFound):
        write(engine, change, {"name": "r"}, {"x": 3}, 1, "a")
    # Re-created: a new life, its own versions; the old ones stay in the change log.
    write(engine, put, {"name": "r"}, {"y": 1}, "b")
    with engine.connect() as conn:
        assert read(conn, {"name": "r"}, 1) == {"y": 1}
        assert [c.kind for c in DOCS.changes(conn, {"name": "r"})] == ["insert", "delete", "insert"]


def test_failure_inside_the_history_insert_leaves_nothing_partial(engine, monkeypatch):
    write(engine, put, {"name": "r"}, {"x": 1}, "a")
    before = (current(engine), len(history_rows(engine)))

    def crash(*args, **kwargs):
        raise RuntimeError("killed between the row and its history record")

    monkeypatch.setattr(VersionedTable, "_record", crash)
    with pytest.raises(RuntimeError, match="killed"):
        write(engine, change, {"name": "r"}, {"x": 2}, 1, "a")
    assert (current(engine), len(history_rows(engine))) == before


def run_concurrently(engine, writers):
    barrier = threading.Barrier(len(writers))
    outcomes = [None] * len(writers)

    def run(i, document):
        barrier.wait()
        try:
            outcomes[i] = write(engine, change, {"name": "r"}, document, 1, f"writer{i}")
        except StaleVersion as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, doc)) for i, doc in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def test_fifty_concurrent_locale_writers_all_succeed_first_time(engine):
    base = blob_with_locales(50)
    write(engine, put, {"name": "r"}, base, "release-automation")
    platform, locales = locale_path(base)
    names = sorted(locales)[:50]
    writers = []
    for i, locale in enumerate(names):
        doc = copy.deepcopy(base)
        doc["platforms"][platform]["locales"][locale]["buildID"] = f"2030{i:010d}"
        writers.append(doc)
    outcomes = run_concurrently(engine, writers)
    assert sorted(outcomes) == list(range(2, 52)), outcomes
    final, version = current(engine)
    assert version == 51
    for i, locale in enumerate(names):
        assert final["platforms"][platform]["locales"][locale]["buildID"] == f"2030{i:010d}"


def test_two_writers_on_the_same_locale_exactly_one_is_refused(engine):
    base = blob_with_locales(0)
    write(engine, put, {"name": "r"}, base, "a")
    platform, locales = locale_path(base)
    locale = sorted(locales)[0]
    writers = []
    for build in ("20300000000001", "20300000000002"):
        doc = copy.deepcopy(base)
        doc["platforms"][platform]["locales"][locale]["buildID"] = build
        writers.append(doc)
    outcomes = run_concurrently(engine, writers)
    refused = [o for o in outcomes if isinstance(o, StaleVersion)]
    assert len(refused) == 1 and 2 in outcomes
    assert refused[0].conflicts == [f"data.platforms.{platform}.locales.{locale}.buildID"]
