"""The SQL storage's alembic migrations (``plugins/storage/sql_migrations``) and ``balrog db upgrade``.

Run on SQLite and, when ``BALROG_TEST_POSTGRESQL_URL`` / ``BALROG_TEST_MYSQL_URL`` are set, on
PostgreSQL and MySQL/MariaDB (databases the tests may wipe, as for the contract suite).
"""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, event, insert, inspect, select, text

from balrog_engine import Dataset, StoredRelease
from balrog_plugins.storage import sql, sql_schema
from tests.storage.databases import backend_urls, wipe

HEAD = "0007"


@pytest.fixture(params=backend_urls(memory=False))
def url(request, tmp_path):
    url = request.param.format(tmp=tmp_path)
    if not url.startswith("sqlite"):
        wipe(url)
    yield url
    if not url.startswith("sqlite"):
        wipe(url)  # leave the shared database as the other suites expect it: empty, unversioned


@pytest.fixture
def open_storage(url):
    opened = []

    def open_():
        storage = sql.SQLStorage(url)
        opened.append(storage)
        return storage

    yield open_
    for storage in opened:
        storage.close()


@pytest.fixture
def engine(url):
    engine = sql.make_engine(url)
    yield engine
    engine.dispose()


def upgrade_to(engine, revision: str) -> None:
    """Run the migrations up to ``revision`` only, the way the storage runs them."""
    with sql._write_transaction(engine) as conn:
        command.upgrade(sql.alembic_config(conn), revision)


def revision_of(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, sql.metadata)


#: The tables of revision 0001, whose shape has not changed since (but for releases.position).
REVISION_0001_TABLES = ("rules", "rules_history", "releases", "emergency_shutoffs", "pinnable_releases", "settings",
                        "change_counter")


def old_metadata() -> MetaData:
    """The tables as ``create_all`` made them before ``releases.position`` (revision 0001)."""
    old = MetaData()
    for name in REVISION_0001_TABLES:
        if name != "releases":
            sql.metadata.tables[name].to_metadata(old)
    Table("releases", old, *[column._copy() for column in sql.releases.columns if column.name != "position"],
          **sql_schema.TABLE_OPTIONS)
    return old


#: Inserted in this order; name (code point) order is A-rel, Z, a-rel, b-rel.
OLD_RELEASES = ("b-rel", "A-rel", "a-rel", "Z")


def insert_old_data(engine, old: MetaData) -> None:
    """A populated 0001 database: every table, releases in an order other than their names'."""
    tables = old.tables
    with engine.begin() as conn:
        conn.execute(insert(tables["rules"]), [
            {"rule_id": 3, "alias": "fx-release", "priority": 100, "mapping": "A-rel", "backgroundRate": 100,
             "update_type": "minor", "product": "Firefox", "channel": "release", "jaws": True, "mig64": False,
             "data_version": 2},
            {"rule_id": 9, "alias": None, "priority": 50, "mapping": "b-rel", "backgroundRate": 0, "update_type": "minor",
             "product": "Firefox", "channel": "beta", "jaws": None, "mig64": None, "data_version": 1},
        ])
        conn.execute(insert(tables["rules_history"]), [
            {"changed_by": "someone", "timestamp": 1700000000000, "rule_id": 3, "alias": "fx-release",
             "priority": 100, "mapping": "A-rel", "backgroundRate": 100, "update_type": "minor",
             "product": "Firefox", "channel": "release", "data_version": 2},
        ])
        conn.execute(insert(tables["releases"]), [
            {"name": name, "product": "Firefox", "read_only": name == "Z", "data_version": 1,
             "data": f'{{"name": "{name}", "schema_version": 1}}'}
            for name in OLD_RELEASES
        ])
        conn.execute(insert(tables["emergency_shutoffs"]), [
            {"product": "Firefox", "channel": "nightly", "comment": "broken", "data_version": 1}])
        conn.execute(insert(tables["pinnable_releases"]), [
            {"product": "Firefox", "channel": "release", "version": "2.", "mapping": "A-rel", "data_version": 1}])
        conn.execute(insert(tables["settings"]), [{"key": "special_force_hosts", "value": '["https://x.test"]'}])
        conn.execute(insert(tables["change_counter"]), [{"id": 1, "value": 5}])


def assert_old_data_reads_back(storage: sql.SQLStorage) -> None:
    assert [release["name"] for release in storage.release_summaries()] == sorted(OLD_RELEASES)
    assert [release["read_only"] for release in storage.release_summaries()] == [False, True, False, False]
    found = storage.releases(OLD_RELEASES)
    assert {name: release.data for name, release in found.items()} == {
        name: {"name": name, "schema_version": 1} for name in OLD_RELEASES}
    rules = storage.rules()
    assert [(rule["rule_id"], rule["alias"], rule["mapping"], rule["jaws"]) for rule in rules] == [
        (3, "fx-release", "A-rel", True), (9, None, "b-rel", None)]
    assert [row["changed_by"] for row in storage.rule_history(3)] == ["someone"]
    assert storage.pins() == [{"product": "Firefox", "channel": "release", "version": "2.", "mapping": "A-rel",
                               "data_version": 1}]
    assert storage.shutoffs() == [{"product": "Firefox", "channel": "nightly", "comment": "broken", "data_version": 1}]
    assert storage.settings() == {"special_force_hosts": ["https://x.test"]}
    assert storage.change_counter() == 5


def new_dataset() -> Dataset:
    return Dataset(rules=[], releases=[StoredRelease("zz", "Firefox", {"name": "zz", "schema_version": 1}),
                                       StoredRelease("aa", "Firefox", {"name": "aa", "schema_version": 1})])


# --- tests ------------------------------------------------------------------------------------------
def test_empty_database_upgrades_to_head_matching_metadata(open_storage, engine):
    storage = open_storage()
    assert storage.schema_revision() is None
    assert storage.upgrade() == HEAD
    assert storage.schema_revision() == HEAD == storage.head_revision()
    assert schema_differences(engine) == []
    assert storage.change_counter() == 0
    assert storage.rules() == [] and storage.release_summaries() == []


def test_first_use_upgrades(open_storage, engine):
    assert open_storage().rules() == []
    assert revision_of(engine) == HEAD
    assert schema_differences(engine) == []


def test_upgrade_from_0001_keeps_the_data_in_name_order(open_storage, engine):
    upgrade_to(engine, "0001")
    assert revision_of(engine) == "0001"
    assert "position" not in {column["name"] for column in inspect(engine).get_columns("releases")}
    insert_old_data(engine, old_metadata())

    storage = open_storage()
    assert storage.schema_revision() == "0001"
    assert_old_data_reads_back(storage)  # the first read upgrades
    assert storage.schema_revision() == HEAD
    assert schema_differences(engine) == []
    with engine.connect() as conn:
        positions = dict(conn.execute(select(sql.releases.c.name, sql.releases.c.position)).all())
    assert positions == {name: i for i, name in enumerate(sorted(OLD_RELEASES))}

    storage.replace_all(new_dataset())  # and new loads keep their dataset order
    assert [release["name"] for release in storage.release_summaries()] == ["zz", "aa"]


def test_database_made_by_old_create_all_is_stamped_and_upgraded(open_storage, engine):
    old = old_metadata()
    old.create_all(engine)
    insert_old_data(engine, old)
    assert revision_of(engine) is None

    storage = open_storage()
    assert storage.schema_revision() is None
    assert storage.upgrade() == HEAD
    assert_old_data_reads_back(storage)
    assert schema_differences(engine) == []


def test_database_made_by_create_all_with_position_is_stamped_at_head(open_storage, engine):
    sql.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(sql.change_counter).values(id=1, value=2))
        conn.execute(insert(sql.releases), [
            {"name": name, "product": "Firefox", "read_only": False, "data": "{}", "data_version": 1, "position": i}
            for i, name in enumerate(["zz", "aa"])])
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    storage = open_storage()
    storage.engine = engine  # to see its statements
    assert storage.upgrade() == HEAD
    schema_changes = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "UPDATE RELEASES"))]
    assert [s for s in schema_changes if "alembic_version" not in s] == []  # stamped, not migrated
    assert [release["name"] for release in storage.release_summaries()] == ["zz", "aa"]  # positions untouched
    assert storage.change_counter() == 2


def test_database_made_by_create_all_at_0005_is_stamped_and_upgraded(open_storage, engine):
    sql.metadata.create_all(engine)
    with engine.begin() as conn:  # as create_all made it at revision 0005: no plugin conditions column yet
        quote = conn.dialect.identifier_preparer.quote
        for name in ("scheduled_change_enactments_history", "scheduled_change_enactments"):  # nor 0007's tables
            conn.execute(text(f"DROP TABLE {quote(name)}"))
        for table in sql.metadata.sorted_tables:
            if "conditions" in table.c:
                conn.execute(text(f"ALTER TABLE {quote(table.name)} DROP COLUMN conditions"))
    assert revision_of(engine) is None
    storage = open_storage()
    assert storage.upgrade() == HEAD
    assert schema_differences(engine) == []
    with storage.session("alice") as session:  # the new column works
        session.insert("rules_scheduled_changes_conditions", {"sc_id": 1, "conditions": {"uptake": {"target": 5}}})
        assert session.get("rules_scheduled_changes_conditions", {"sc_id": 1})["conditions"] == \
            {"uptake": {"target": 5}}


#: The scheduled changes a 0005 database holds in the test below.
SC, SC_CONDITIONS = "permissions_scheduled_changes", "permissions_scheduled_changes_conditions"


def test_upgrade_to_0006_keeps_scheduled_changes_and_never_reuses_their_ids(open_storage, engine):
    """Three changes, the newest of them cancelled (its history remains): after the upgrade, the
    changes are intact, their conditions have no plugin conditions, and a new change gets id 4 on
    every backend (SQLite would hand out 3 again without AUTOINCREMENT)."""
    upgrade_to(engine, "0005")
    tables = sql.metadata.tables
    changes, conditions = tables[SC], tables[SC_CONDITIONS]
    with engine.begin() as conn:
        for number in (1, 2, 3):
            sc_id = conn.execute(insert(changes).values(
                scheduled_by="alice", complete=False, change_type="insert", base_permission="admin",
                base_username=f"user{number}@x", data_version=1)).inserted_primary_key[0]
            assert sc_id == number
            conn.execute(insert(conditions).values(sc_id=sc_id, when=4102444800000 + number, data_version=1))
            for table in (tables[f"{SC}_history"], tables[f"{SC_CONDITIONS}_history"]):
                conn.execute(insert(table), [  # the placeholder and version 1 of an insert
                    {"changed_by": "alice", "timestamp": 1, "sc_id": sc_id, "data_version": None},
                    {"changed_by": "alice", "timestamp": 2, "sc_id": sc_id, "data_version": 1}])
        conn.execute(conditions.delete().where(conditions.c.sc_id == 3))
        conn.execute(changes.delete().where(changes.c.sc_id == 3))

    storage = open_storage()
    assert storage.upgrade() == HEAD
    assert schema_differences(engine) == []
    with storage.session("bob") as session:
        assert [(row["sc_id"], row["base_username"]) for row in session.rows(SC)] == [(1, "user1@x"), (2, "user2@x")]
        assert [(row["when"], row["conditions"]) for row in session.rows(SC_CONDITIONS)] == [
            (4102444800001, None), (4102444800002, None)]
        assert len(session.history(SC, {"sc_id": 3})) == 1  # the cancelled change's history is still there
        created = session.insert(SC, {"scheduled_by": "bob", "complete": False, "change_type": "insert",
                                      "base_permission": "admin", "base_username": "new@x"})
        assert created == {"sc_id": 4}
        assert [change.changed_by for change in session.changes(SC, created)] == ["bob", "bob"]


def test_upgrade_twice_is_a_no_op(open_storage, engine):
    first = open_storage()
    assert first.upgrade() == HEAD
    first.replace_all(new_dataset())
    counter = first.change_counter()

    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    second = open_storage()
    second.engine = engine
    assert second.schema_revision() == HEAD
    assert second.upgrade() == HEAD
    assert second.upgrade() == HEAD
    writes = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")
    assert not [s for s in statements if s.lstrip().upper().startswith(writes)]
    assert second.change_counter() == counter
    assert [release["name"] for release in second.release_summaries()] == ["zz", "aa"]


def test_tables_dropped_behind_alembics_back_are_rebuilt(open_storage, engine):
    """``metadata.drop_all`` (as test suites do) leaves ``alembic_version`` at head with no tables."""
    assert open_storage().upgrade() == HEAD
    sql.metadata.drop_all(engine)
    assert revision_of(engine) == HEAD
    storage = open_storage()
    assert storage.rules() == [] and storage.change_counter() == 0
    assert schema_differences(engine) == []


def test_concurrent_first_uses_migrate_once(open_storage, engine):
    storages = [open_storage() for _ in range(4)]
    errors = []

    def use(storage):
        try:
            storage.rules()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(storage,)) for storage in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert revision_of(engine) == HEAD
    assert schema_differences(engine) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "balrog_app.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_db_upgrade_prints_the_revisions(url, engine):
    upgrade_to(engine, "0001")
    insert_old_data(engine, old_metadata())

    result = run_cli("db", "upgrade", "--db", url)
    assert result.returncode == 0, result.stderr
    assert "schema revision before: 0001" in result.stdout
    assert f"schema revision after: {HEAD}" in result.stdout
    assert revision_of(engine) == HEAD

    again = run_cli("db", "upgrade", "--db", url)
    assert again.returncode == 0, again.stderr
    assert f"schema revision before: {HEAD}" in again.stdout
    assert f"schema revision after: {HEAD}" in again.stdout
    assert "up to date" in again.stdout


def test_cli_db_upgrade_creates_an_empty_database(url, engine):
    result = run_cli("db", "upgrade", "--db", url)
    assert result.returncode == 0, result.stderr
    assert "schema revision before: none" in result.stdout
    assert f"schema revision after: {HEAD}" in result.stdout
    assert schema_differences(engine) == []


def test_migrations_ship_as_packages():
    """The script directory is the ``sql_migrations`` package next to ``sql.py``."""
    assert (sql.MIGRATIONS / "env.py").is_file()
    assert (sql.MIGRATIONS / "script.py.mako").is_file()
    assert (sql.MIGRATIONS / "__init__.py").is_file() and (sql.MIGRATIONS / "versions" / "__init__.py").is_file()
    assert sorted(p.name for p in (sql.MIGRATIONS / "versions").glob("0*.py")) == [
        "0001_initial_schema.py", "0002_release_position.py", "0003_versioned_tables.py",
        "0004_releases_v2.py", "0005_dockerflow.py", "0006_sc_conditions.py",
        "0007_enactments.py"]
