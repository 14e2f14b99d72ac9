"""The storage contract (:class:`balrog_engine.Storage`), run against every backend.

Backends are built through the plugin registry from a URL, exactly as the servers do.
Adding a backend to the suite means adding a URL to :func:`backend_urls`; set
``BALROG_TEST_POSTGRESQL_URL`` (e.g. ``postgresql+psycopg://u:p@host/db``) and
``BALROG_TEST_MYSQL_URL`` (e.g. ``mysql+pymysql://u:p@host/db``, MySQL or MariaDB) to
databases the tests may wipe to include PostgreSQL and MySQL/MariaDB.
``.ci/databases.sh`` starts both locally and prints the two variables; CI always sets them.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from balrog_engine import RULE_COLUMNS, Dataset, DatasetRejected, StoredRelease
from balrog_engine.storage import normalise_rule
from balrog_plugins.storage import sql
from tests.storage.databases import backend_urls, empty

SHARED = Path("/work/shared")
BENCH_DATASET = SHARED / "bench" / "dataset.json"
SCENARIO = SHARED / "conformance" / "api-v1-shutoffs-and-pins.json"  # has pins, shutoffs and settings


# --- helpers ------------------------------------------------------------------------------------
def dataset_from_document(doc: dict) -> Dataset:
    """A conformance-scenario / bench document as a :class:`Dataset`."""
    return Dataset(
        rules=doc.get("rules", []),
        releases=[
            StoredRelease(name=r["name"], product=r.get("product"), data=r["data"]) for r in doc.get("releases", [])
        ],
        pins=doc.get("pins", []),
        emergency_shutoffs=doc.get("emergency_shutoffs", []),
        config=doc.get("config", {}),
    )


def load_document(path: Path) -> dict:
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return json.loads(path.read_text())


def small_dataset(**overrides) -> Dataset:
    """A hand-made dataset touching every table, with a non-default release version and flag."""
    values = dict(
        rules=[
            {"rule_id": 1, "alias": "firefox-release", "priority": 100, "mapping": "Firefox-2.0",
             "backgroundRate": 100, "update_type": "minor", "product": "Firefox", "channel": "release",
             "jaws": True, "mig64": False, "data_version": 4},
            {"rule_id": 7, "priority": 50, "mapping": None, "backgroundRate": 0, "update_type": "major",
             "product": "Firefox", "channel": "beta*", "comment": "no mapping: serves nothing"},
        ],
        releases=[
            StoredRelease("Firefox-2.0", "Firefox", {"name": "Firefox-2.0", "schema_version": 1,
                                                      "platforms": {"p": {"locales": {"en-US": {"buildID": "2"}}}}}),
            StoredRelease("Firefox-1.0", "Firefox", {"name": "Firefox-1.0", "schema_version": 1},
                          data_version=3, read_only=True),
        ],
        pins=[{"product": "Firefox", "channel": "release", "version": "2.", "mapping": "Firefox-2.0"}],
        emergency_shutoffs=[{"product": "Firefox", "channel": "nightly", "comment": "broken build"}],
        config={"allowlisted_domains": {"download.example.com": ["Firefox"]}, "special_force_hosts": []},
    )
    values.update(overrides)
    return Dataset(**values)


def expected_rules(dataset: Dataset) -> list[dict]:
    return sorted((normalise_rule(rule) for rule in dataset.rules), key=lambda rule: rule["rule_id"])


def expected_rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Pins / shutoffs as storage returns them: every column, ``data_version`` defaulting to 1."""
    full = [{**{key: row.get(key) for key in keys}, "data_version": row.get("data_version") or 1} for row in rows]
    return sorted(full, key=lambda row: tuple(row[key] or "" for key in keys))


def read_everything(storage) -> None:
    storage.rules()
    storage.releases(["Firefox-2.0", "nope"])
    storage.release_summaries()
    storage.shutoffs()
    storage.pins()
    storage.rule_history(1)
    storage.settings()
    storage.change_counter()
    storage.ping()


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(params=[p for p in backend_urls() if p.id != "memory"])
def sql_storage(request, registry, tmp_path):
    """The SQL backends only, for what only they do (sequences, column sizes)."""
    storage = registry.storage_for(request.param.format(tmp=tmp_path))
    if storage.engine.dialect.name != "sqlite":
        empty(storage)
    yield storage
    storage.close()


# --- the contract ---------------------------------------------------------------------------------
def test_empty_storage_reads_as_empty(storage):
    assert storage.rules() == []
    assert storage.releases(["Firefox-2.0"]) == {}
    assert storage.release_summaries() == []
    assert storage.shutoffs() == []
    assert storage.pins() == []
    assert storage.rule_history(1) == []
    assert storage.settings() == {}
    assert isinstance(storage.change_counter(), int)
    assert storage.ping() is True


@pytest.mark.parametrize("path", [BENCH_DATASET, SCENARIO], ids=["bench", "scenario"])
def test_real_dataset_round_trips(storage, path):
    dataset = dataset_from_document(load_document(path))
    storage.replace_all(dataset)

    assert storage.rules() == expected_rules(dataset)
    assert storage.pins() == expected_rows(dataset.pins, ("product", "channel", "version", "mapping"))
    assert storage.shutoffs() == expected_rows(dataset.emergency_shutoffs, ("product", "channel", "comment"))
    assert storage.settings() == dataset.config

    names = [release.name for release in dataset.releases]
    found = storage.releases(names + ["no-such-release"])
    assert sorted(found) == sorted(names)
    for release in dataset.releases:
        assert found[release.name] == StoredRelease(release.name, release.product, release.data, 1, False)


def test_rules_have_every_column_and_python_types(storage):
    storage.replace_all(small_dataset())
    first, second = storage.rules()
    assert list(first) == list(RULE_COLUMNS)
    assert first["jaws"] is True and first["mig64"] is False
    assert second["jaws"] is None and second["mig64"] is None
    assert isinstance(first["priority"], int) and isinstance(first["backgroundRate"], int)
    assert (first["data_version"], second["data_version"]) == (4, 1)
    assert second["mapping"] is None


def test_rules_without_ids_are_numbered_after_the_highest(storage):
    rules = [{"rule_id": 5, "priority": 1, "backgroundRate": 100, "update_type": "minor"},
             {"priority": 2, "backgroundRate": 100, "update_type": "minor"}]
    storage.replace_all(small_dataset(rules=rules))
    assert [rule["rule_id"] for rule in storage.rules()] == [5, 6]


def test_releases_by_name_handles_thousands_of_names(storage):
    releases = [StoredRelease(f"R-{i:04d}", "P", {"name": f"R-{i:04d}", "n": i}) for i in range(1200)]
    storage.replace_all(small_dataset(releases=releases))
    wanted = [f"R-{i:04d}" for i in range(0, 1200, 2)] + [f"missing-{i}" for i in range(2500)]
    found = storage.releases(wanted + wanted[:10])  # duplicates are harmless
    assert sorted(found) == [f"R-{i:04d}" for i in range(0, 1200, 2)]
    assert found["R-0042"].data == {"name": "R-0042", "n": 42}
    assert storage.releases([]) == {}


def test_release_keeps_version_flag_and_key_order(storage):
    blob = {"schema_version": 1, "name": "Firefox-1.0", "z": 1, "a": {"y": 2, "b": 3}}
    dataset = small_dataset(releases=[StoredRelease("Firefox-1.0", "Firefox", blob, data_version=3, read_only=True)])
    storage.replace_all(dataset)
    stored = storage.releases(["Firefox-1.0"])["Firefox-1.0"]
    assert (stored.data_version, stored.read_only) == (3, True)
    assert json.dumps(stored.data) == json.dumps(blob)  # same keys in the same order


def test_release_summaries_have_no_blobs(storage):
    storage.replace_all(small_dataset())
    assert sorted(storage.release_summaries(), key=lambda r: r["name"]) == [
        {"name": "Firefox-1.0", "product": "Firefox", "data_version": 3, "read_only": True},
        {"name": "Firefox-2.0", "product": "Firefox", "data_version": 1, "read_only": False},
    ]


def test_shutoff_comment_is_optional(storage):
    shutoffs = [{"product": "B", "channel": "a"}, {"product": "A", "channel": "z", "comment": "why"}]
    storage.replace_all(small_dataset(emergency_shutoffs=shutoffs))
    assert storage.shutoffs() == [
        {"product": "A", "channel": "z", "comment": "why", "data_version": 1},
        {"product": "B", "channel": "a", "comment": None, "data_version": 1},
    ]


def test_callers_cannot_change_stored_state(storage):
    dataset = small_dataset()
    storage.replace_all(dataset)
    dataset.rules[0]["priority"] = -1
    dataset.config["special_force_hosts"].append("http://evil")
    storage.rules()[0]["priority"] = -2
    storage.settings()["special_force_hosts"].append("http://evil")
    storage.releases(["Firefox-2.0"])["Firefox-2.0"].data["platforms"].clear()
    storage.pins()[0]["mapping"] = "other"

    assert storage.rules()[0]["priority"] == 100
    assert storage.settings()["special_force_hosts"] == []
    assert storage.releases(["Firefox-2.0"])["Firefox-2.0"].data["platforms"] != {}
    assert storage.pins()[0]["mapping"] == "Firefox-2.0"


def test_change_counter_moves_on_writes_only(storage):
    before = storage.change_counter()
    read_everything(storage)
    assert storage.change_counter() == before

    storage.replace_all(small_dataset())
    after_first = storage.change_counter()
    assert after_first != before
    read_everything(storage)
    assert storage.change_counter() == after_first

    storage.replace_all(small_dataset())  # same data again is still a write
    assert storage.change_counter() not in (before, after_first)


@pytest.mark.parametrize("broken", [
    {"releases": [StoredRelease("Same", "P", {}), StoredRelease("Same", "P", {"other": 1})]},
    {"rules": [{"rule_id": 3, "priority": 1}, {"rule_id": 3, "priority": 2}]},
    {"rules": [{"rule_id": 1, "alias": "a"}, {"rule_id": 2, "alias": "a"}]},
    {"pins": [{"product": "P", "channel": "c", "version": "1.", "mapping": "x"}] * 2},
    {"emergency_shutoffs": [{"product": "P", "channel": "c"}] * 2},
], ids=["release-name", "rule-id", "rule-alias", "pin", "shutoff"])
def test_failed_replace_all_keeps_the_old_data(storage, broken):
    storage.replace_all(small_dataset())
    before = (storage.rules(), storage.releases(["Firefox-1.0", "Firefox-2.0"]), storage.pins(),
              storage.shutoffs(), storage.settings(), storage.rule_history(1), storage.change_counter())

    with pytest.raises(DatasetRejected) as info:
        storage.replace_all(small_dataset(**broken))
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working

    after = (storage.rules(), storage.releases(["Firefox-1.0", "Firefox-2.0"]), storage.pins(),
             storage.shutoffs(), storage.settings(), storage.rule_history(1), storage.change_counter())
    assert after == before


def test_rule_history_after_load(storage):
    dataset = small_dataset()
    started = int(time.time() * 1000)
    storage.replace_all(dataset)

    (row,) = storage.rule_history(1)
    assert {column: row[column] for column in RULE_COLUMNS} == expected_rules(dataset)[0]
    assert row["changed_by"] == "balrog-load"
    assert started - 1000 <= row["timestamp"] <= int(time.time() * 1000) + 1000
    assert isinstance(row["change_id"], int)
    assert storage.rule_history(999) == []


def test_reload_replaces_rule_history(storage):
    storage.replace_all(small_dataset())
    changed = small_dataset(rules=[{"rule_id": 1, "priority": 5, "backgroundRate": 0, "update_type": "minor"}])
    storage.replace_all(changed)
    (row,) = storage.rule_history(1)
    assert row["priority"] == 5
    assert storage.rule_history(7) == []


def test_ping(storage):
    assert storage.ping() is True


def test_reads_from_another_thread(storage):
    """The server builds snapshots on a background thread."""
    storage.replace_all(small_dataset())
    results = []
    thread = threading.Thread(target=lambda: results.append((storage.rules(), storage.change_counter())))
    thread.start()
    thread.join()
    assert results == [(storage.rules(), storage.change_counter())]


def test_keys_are_exact_strings(storage):
    """Names, products, channels and aliases are compared byte for byte on every backend: case,
    accents and trailing spaces make different keys (MySQL's default collations would not)."""
    names = ["Firefox-1.0", "firefox-1.0", "Firefox-1.0 ", "FIREFOX-1.0", "Fírefox-1.0"]
    releases = [StoredRelease(name, "Firefox", {"name": name, "i": i}) for i, name in enumerate(names)]
    keys = [("P", "c"), ("p", "c"), ("P", "C"), ("P ", "c"), ("P", "c "), ("Ṗ", "c")]
    shutoffs = [{"product": product, "channel": channel} for product, channel in keys]
    pins = [{"product": product, "channel": channel, "version": version, "mapping": "Firefox-1.0"}
            for product, channel in keys for version in ("1.", "1. ")]
    rules = [{"rule_id": 1, "alias": "release", "priority": 1}, {"rule_id": 2, "alias": "Release", "priority": 2},
             {"rule_id": 3, "alias": "release ", "priority": 3}]
    storage.replace_all(small_dataset(releases=releases, emergency_shutoffs=shutoffs, pins=pins, rules=rules))

    found = storage.releases(names)
    assert {name: found[name].data["i"] for name in names} == {name: i for i, name in enumerate(names)}
    assert list(storage.releases(["firefox-1.0"])) == ["firefox-1.0"]
    assert storage.releases(["FireFox-1.0", "Firefox-1.0  ", "Firefox-1.0\t"]) == {}
    assert sorted((row["product"], row["channel"]) for row in storage.shutoffs()) == sorted(keys)
    assert len(storage.pins()) == len(pins)
    assert [rule["alias"] for rule in storage.rules()] == ["release", "Release", "release "]


def test_listings_are_in_code_point_order(storage):
    """Shutoffs and pins are listed by their key in code point order (Python's string order)
    on every backend, whatever the database's locale."""
    products = ["b", "B", "a", "_", "-x", "é", "e", "z", "Z", "😀", "ﬀ", "10", "9"]
    shutoffs = [{"product": product, "channel": "c"} for product in products]
    pins = [{"product": "P", "channel": "c", "version": version, "mapping": "m"} for version in products]
    storage.replace_all(small_dataset(emergency_shutoffs=shutoffs, pins=pins))
    assert [row["product"] for row in storage.shutoffs()] == sorted(products)
    assert [row["version"] for row in storage.pins()] == sorted(products)


def test_text_round_trips_exactly(storage):
    """Non-BMP characters, escapes and blobs/settings far beyond 64 KB (MySQL's TEXT) come back as written."""
    big = {"name": "Big", "schema_version": 1, "emoji": "😀 ☃ ü \u0000 \"q\" \\", "nul": "\x00",
           "platforms": {f"p{i:05d}": {"locales": {"en-US": {"buildID": "2" * 40, "note": "é" * 10}}}
                         for i in range(20000)}}
    assert len(json.dumps(big)) > 2_000_000
    config = {"allowlisted_domains": {f"download{i}.example.com": ["Firefox", "Thunderbird"] for i in range(5000)},
              "special_force_hosts": ["http://ünïcode.example.com", "http://😀.example.com"]}
    assert len(json.dumps(config)) > 65536
    rules = [{"rule_id": 1, "priority": 1, "comment": "émoji 😀 and a tab\t", "product": "Fírefox 😀",
              "mapping": "Big"}]
    shutoffs = [{"product": "😀", "channel": "ß", "comment": "ünïcode"}]
    storage.replace_all(small_dataset(releases=[StoredRelease("Big", "😀", big)], config=config, rules=rules,
                                      emergency_shutoffs=shutoffs))
    stored = storage.releases(["Big"])["Big"]
    assert json.dumps(stored.data) == json.dumps(big) and stored.product == "😀"
    assert storage.settings() == config
    assert storage.rules()[0]["comment"] == "émoji 😀 and a tab\t"
    assert storage.rules()[0]["product"] == "Fírefox 😀"
    assert storage.shutoffs() == [{"product": "😀", "channel": "ß", "comment": "ünïcode", "data_version": 1}]


def test_concurrent_loads_serialise(open_storage):
    """Loads from several writers (``balrog db load`` in parallel) queue up: none fails, and the
    result is one whole dataset, never a mix."""
    storage = open_storage()
    if isinstance(storage, sql.SQLStorage) and storage.engine.dialect.name != "sqlite":
        sql.metadata.drop_all(storage.engine)
    variants = [
        small_dataset(rules=[{"rule_id": i, "priority": i, "alias": f"r{i}"} for i in range(1, 40)],
                      releases=[StoredRelease(f"A-{i}", "A", {"i": i}) for i in range(50)]),
        small_dataset(rules=[{"rule_id": i, "priority": -i, "alias": f"r{i}"} for i in range(20, 70)],
                      releases=[StoredRelease(f"A-{i}", "A", {"i": -i}) for i in range(25, 90)]),
    ]
    writers = [storage] + [open_storage() for _ in range(3)]  # other "processes" on the same database
    errors = []

    def load(writer, variant):
        try:
            for _ in range(5):
                writer.replace_all(variant)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(writer, variants[i % 2])) for i, writer in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rules = storage.rules()
    assert rules in (expected_rules(variants[0]), expected_rules(variants[1]))
    variant = variants[0] if rules == expected_rules(variants[0]) else variants[1]
    assert [r["name"] for r in storage.release_summaries()] == [r.name for r in variant.releases]
    assert len(storage.rule_history(25)) == 1


# --- backend specifics ----------------------------------------------------------------------------
def test_every_scheme_is_registered(registry):
    for scheme in ("memory", "sqlite", "postgresql", "mysql", "mariadb"):
        assert registry.storage_backends[scheme] is sql.SQLStorage


@pytest.mark.parametrize("url,expected", [
    ("postgresql://u:p@127.0.0.1:5432/db", "postgresql+psycopg://u:p@127.0.0.1:5432/db"),
    ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
    ("mysql://u:p@127.0.0.1/db", "mysql+pymysql://u:p@127.0.0.1/db?charset=utf8mb4"),
    ("mariadb://u:p@127.0.0.1/db", "mariadb+pymysql://u:p@127.0.0.1/db?charset=utf8mb4"),
    ("mysql+mysqldb://u@h/db?charset=utf8", "mysql+mysqldb://u@h/db?charset=utf8"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_plain_server_urls_get_the_extras_drivers(url, expected):
    assert sql.resolve_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url,dialect,driver", [
    ("postgresql://u:p@127.0.0.1:1/db", "postgresql", "psycopg"),
    ("mysql://u:p@127.0.0.1:1/db", "mysql", "pymysql"),
    ("mariadb://u:p@127.0.0.1:1/db", "mariadb", "pymysql"),
])
def test_plain_server_urls_open_without_a_server(registry, url, dialect, driver):
    """The drivers are installed (test extra) and a storage opens lazily: ping() is False, no exception."""
    storage = registry.storage_for(url)
    try:
        assert (storage.engine.dialect.name, storage.engine.dialect.driver) == (dialect, driver)
        assert storage.ping() is False
    finally:
        storage.close()


@pytest.mark.skipif(not os.environ.get("BALROG_TEST_MYSQL_URL"), reason="BALROG_TEST_MYSQL_URL is not set")
def test_mariadb_scheme_on_the_mysql_server(registry):
    """``mariadb://`` (SQLAlchemy's mariadb dialect, its own table options) works like ``mysql://``."""
    url = sql.make_url(os.environ["BALROG_TEST_MYSQL_URL"])
    storage = registry.storage_for(url.set(drivername="mysql+pymysql").render_as_string(hide_password=False))
    try:
        assert storage.ping() is True  # connecting tells the dialect which server it is
        if not storage.engine.dialect.is_mariadb:
            pytest.skip("the MySQL test server is not MariaDB")
    finally:
        storage.close()
    storage = registry.storage_for(url.set(drivername="mariadb").render_as_string(hide_password=False))
    try:
        assert storage.engine.dialect.name == "mariadb"
        sql.metadata.drop_all(storage.engine)
        names = ["Firefox-1.0", "firefox-1.0", "Firefox-1.0 "]
        dataset = small_dataset(releases=[StoredRelease(name, "Firefox", {"name": name}) for name in names])
        storage.replace_all(dataset)
        assert sorted(storage.releases(names)) == sorted(names)
        assert storage.rules() == expected_rules(dataset)
        with storage.engine.connect() as conn:
            ddl = conn.exec_driver_sql("SHOW CREATE TABLE releases").one()[1]
        assert "utf8mb4_nopad_bin" in ddl and "longtext" in ddl and "InnoDB" in ddl
    finally:
        sql.metadata.drop_all(storage.engine)
        storage.close()


def test_sql_rule_ids_continue_after_a_load(sql_storage):
    """Loads write explicit rule ids; a rule inserted later without one must not collide
    (PostgreSQL's sequence has to be moved past them)."""
    storage = sql_storage
    storage.replace_all(small_dataset(rules=[{"rule_id": 5, "priority": 1}, {"rule_id": 41, "priority": 2}]))
    with storage.engine.begin() as conn:
        new_id = conn.execute(sql.insert(sql.rules).values(priority=3)).inserted_primary_key[0]
    assert new_id > 41


@pytest.mark.parametrize("field,value", [
    ("rules", [{"rule_id": 1, "priority": 1, "headerArchitecture": "x" * 11}]),
    ("rules", [{"rule_id": 1, "priority": 2**31}]),
    ("releases", [StoredRelease("R" * 101, "P", {})]),
    ("emergency_shutoffs", [{"product": "P", "channel": "c" * 76}]),
    ("pins", [{"product": "P", "channel": "c", "version": "1.", "mapping": "m" * 101}]),
], ids=["rule-text", "rule-int", "release-name", "shutoff-channel", "pin-mapping"])
def test_sql_refuses_values_too_big_for_their_column(sql_storage, field, value):
    """The same on every SQL dialect (SQLite would store them, the servers would fail); the
    old contents stay. Exactly full columns are fine."""
    storage = sql_storage
    storage.replace_all(small_dataset())
    before = (storage.rules(), storage.change_counter())
    with pytest.raises(DatasetRejected, match="dataset rejected"):
        storage.replace_all(small_dataset(**{field: value}))
    assert (storage.rules(), storage.change_counter()) == before

    full = small_dataset(rules=[{"rule_id": 1, "priority": 2**31 - 1, "headerArchitecture": "x" * 10,
                                 "osVersion": "é" * 1000}],
                         releases=[StoredRelease("😀" * 100, "P", {})])
    storage.replace_all(full)
    assert storage.rules() == expected_rules(full)
    assert list(storage.releases(["😀" * 100])) == ["😀" * 100]


def test_memory_instances_are_independent(registry):
    first, second = registry.storage_for("memory://"), registry.storage_for("memory://")
    first.replace_all(small_dataset())
    assert second.rules() == [] and second.settings() == {}
    assert first.change_counter() != second.change_counter()


def test_sqlite_file_persists_across_storage_objects(registry, tmp_path):
    url = f"sqlite:///{tmp_path}/persist.db"
    writer, reader = registry.storage_for(url), registry.storage_for(url)
    try:
        before = reader.change_counter()
        dataset = small_dataset()
        writer.replace_all(dataset)
        assert reader.change_counter() != before  # a second process sees the write
        assert reader.rules() == expected_rules(dataset)
        writer.close()

        reopened = registry.storage_for(url)
        assert reopened.rules() == expected_rules(dataset)
        assert reopened.settings() == dataset.config
        assert reopened.change_counter() == writer.change_counter()
        reopened.close()
    finally:
        writer.close()
        reader.close()


def test_sqlite_file_uses_wal(registry, tmp_path):
    storage = registry.storage_for(f"sqlite:///{tmp_path}/wal.db")
    try:
        with storage.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        storage.close()


def test_sqlite_in_memory_is_shared_between_threads(registry):
    storage = registry.storage_for("sqlite://")
    try:
        storage.replace_all(small_dataset())
        results = []
        thread = threading.Thread(target=lambda: results.append(storage.rules()))
        thread.start()
        thread.join()
        assert results == [expected_rules(small_dataset())]
    finally:
        storage.close()


def test_sqlite_ping_is_false_when_unreachable(registry, tmp_path):
    storage = registry.storage_for(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    try:
        assert storage.ping() is False
    finally:
        storage.close()


def test_release_summaries_keep_creation_order(storage):
    dataset = small_dataset()
    dataset.releases.reverse()
    storage.replace_all(dataset)
    assert [r["name"] for r in storage.release_summaries()] == [r.name for r in dataset.releases]


def test_snapshot_reads_are_consistent_while_a_write_commits(sql_storage, registry):
    """A write that commits between two of a snapshot build's reads must not give a snapshot
    mixing both states (old rules, new releases): the build reads in one transaction."""
    from balrog_engine import load_plugins
    from balrog_engine.snapshot import build_snapshot

    sql_storage.replace_all(small_dataset())
    old_counter = sql_storage.change_counter()
    writer = registry.storage_for(sql_storage.url)  # another "process"
    renamed = small_dataset(
        rules=[{"rule_id": 1, "priority": 100, "mapping": "Firefox-3.0", "backgroundRate": 100,
                "update_type": "minor", "product": "Firefox", "channel": "release"}],
        releases=[StoredRelease("Firefox-3.0", "Firefox", {"name": "Firefox-3.0", "schema_version": 1})],
        pins=[])
    read_rules = sql_storage.rules

    def rules_then_a_commit():
        rules = read_rules()
        thread = threading.Thread(target=writer.replace_all, args=(renamed,))
        thread.start()
        thread.join(30)  # the write commits while the build is half way through its reads
        assert not thread.is_alive()
        return rules

    sql_storage.rules = rules_then_a_commit
    try:
        snapshot = build_snapshot(sql_storage, load_plugins())  # with the blob types
    finally:
        del sql_storage.rules
        writer.close()
    assert snapshot.change_counter == old_counter
    assert "Firefox-2.0" in snapshot.releases and "Firefox-3.0" not in snapshot.releases
    assert snapshot.load_errors == ()
    assert sql_storage.change_counter() == old_counter + 1  # and the write did land
