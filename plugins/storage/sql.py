"""SQLAlchemy storage backend: SQLite, PostgreSQL and MySQL/MariaDB through the same code,
and ``memory://`` (a private in-memory SQLite database per storage object).

The schema is in :mod:`.sql_schema` (tables named as in the reference database, and which
of them are versioned); the alembic migrations in :mod:`balrog_plugins.storage.sql_migrations`
build it, one reviewed revision at a time, and :meth:`SQLStorage.upgrade` (run on first use,
and by ``balrog db upgrade``) applies the ones a database lacks. Writes go through
:class:`.sql_session.SQLSession`; dumps through :mod:`.sql_dump`.

The servers behave exactly like SQLite here (the contract suite runs on all three in CI):

- URLs: plain ``postgresql://`` uses psycopg 3 and ``mysql://`` / ``mariadb://`` use PyMySQL
  (the ``postgresql`` / ``mysql`` extras); an explicit ``+driver`` is kept.
- Keys compare byte for byte: key columns (release names, products, channels, pin versions,
  aliases, setting keys) get a binary, NO PAD collation on MySQL/MariaDB (whose default
  collations ignore case, accents and trailing spaces) and ``COLLATE "C"`` on PostgreSQL, so
  listings come back in code point order whatever the database's locale.
- Text is utf8mb4 on MySQL, and JSON text (blobs, settings) is LONGTEXT there.
- Values longer than a column (or integers out of its range) are refused before writing,
  on every dialect: SQLite would store them, the servers would fail.
- Writers queue up: a write transaction starts by locking the change counter row (SQLite:
  ``BEGIN IMMEDIATE``), so parallel writes never interleave. Reads are READ COMMITTED on the
  servers, and schema migration is serialised between processes.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    insert,
    inspect as sa_inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool


def _alembic_chatter(record: logging.LogRecord) -> bool:
    """Keep alembic's "Running upgrade …" lines, drop what it says on every connection it inspects."""
    return not record.getMessage().startswith(("Context impl ", "Will assume "))


# Every storage checks the revision on first use, and importing alembic registers its plugins:
# without this, each start would log alembic's set-up. (Before the import, which logs.)
logging.getLogger("alembic.runtime.migration").addFilter(_alembic_chatter)
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

from balrog_engine import hookimpl  # noqa: E402

from balrog_engine.storage import (  # noqa: E402
    RULE_COLUMNS,
    Dataset,
    DatasetRejected,
    LOAD_USER,
    Storage,
    StoredRelease,
    booleans_as_bool,
    dump_json,
    normalise_rules,
    pin_row,
    release_row,
    shutoff_row,
    stored_release,
)

from . import sql_dump, sql_schema  # noqa: E402
from .sql_schema import (  # noqa: E402
    MYSQL_FAMILY, SERVICE_TABLES, change_counter, dockerflow, emergency_shutoffs, metadata, pinnable_releases,
    release_assets, releases, releases_json, rules, rules_history, settings, value_problem,
)
from .sql_session import SQLSession  # noqa: E402


#: Names per ``IN (...)`` query. Stays well below SQLite's historical 999 bound-parameter
#: limit and keeps statements small on every backend.
NAME_CHUNK = 500

#: The DBAPI behind a URL without ``+driver``: what the ``postgresql`` / ``mysql`` extras install.
DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}

#: Execution option that makes a SQLite transaction ``BEGIN IMMEDIATE`` (see :func:`_configure_sqlite`).
WRITE = "balrog_write"

#: ``pg_advisory_xact_lock`` key serialising schema migration (any constant: "balrog" in ASCII).
PG_SCHEMA_LOCK = 0x62616C726F67

#: The alembic script directory (a package, so it ships in the wheel).
MIGRATIONS = Path(__file__).with_name("sql_migrations")

#: The revision a database made by ``metadata.create_all`` (not by the migrations) is stamped
#: at: ``0007`` if it has the ``scheduled_change_enactments`` table, ``0006`` if its
#: scheduled-change conditions have the ``conditions`` column, ``0005`` if it
#: has the ``dockerflow`` table, ``0004`` if it has the v2 release tables, ``0003`` if it has the
#: versioned tables, else ``0002`` if ``releases`` has its ``position`` column, else ``0001``.
CREATE_ALL_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007")

#: The table whose ``conditions`` column tells a ``create_all`` database of revision 0006.
_CONDITIONS_TABLE = "rules_scheduled_changes_conditions"



#: Tables emptied by :meth:`SQLStorage.replace_all` (and dumped): everything but the service tables.
DATA_TABLES = tuple(table for table in metadata.sorted_tables if table not in SERVICE_TABLES)


class SQLStorage(Storage):
    """A :class:`~balrog_engine.Storage` on any SQLAlchemy database URL.

    The engine's connection pool makes one instance safe to share between threads (the
    server reads from a background refresh thread). An in-memory database has a single
    connection, so its users take turns (a lock). The schema is migrated to the current
    revision on first use rather than in the constructor, so a server can start while its
    database is down and report that through :meth:`ping`.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine("sqlite://" if url.startswith("memory:") else url)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        in_memory = self.engine.dialect.name == "sqlite" and self.engine.url.database in (None, "", ":memory:")
        self._turns = threading.RLock() if in_memory else nullcontext()
        self._reading = threading.local()  # the connection of consistent_reads(), per thread

    # --- read side -------------------------------------------------------------------------
    def rules(self) -> list[dict]:
        rows = self._fetch(select(rules).order_by(rules.c.rule_id))
        return [_rule_dict(row) for row in rows]

    def releases(self, names: Iterable[str]) -> dict[str, StoredRelease]:
        """Releases of v2 storage (``releases_json`` + ``release_assets``, assembled) are looked
        up first; the v1 ``releases`` table serves the others (admin-api.md §2)."""
        found: dict[str, StoredRelease] = {}
        with self._connect() as conn:
            for chunk in _chunks(sorted(set(names)), NAME_CHUNK):
                found.update(_v2_releases(conn, chunk))
                rest = [name for name in chunk if name not in found]
                if not rest:
                    continue
                query = select(releases).where(releases.c.name.in_(rest))
                for row in conn.execute(query).mappings():
                    found[row["name"]] = stored_release(row)
        return found

    def release_summaries(self) -> list[dict]:
        """v1 releases in creation order, then the releases only in v2 storage, by name."""
        columns = (releases.c.name, releases.c.product, releases.c.data_version, releases.c.read_only)
        v2 = releases_json
        with self._connect() as conn:
            rows = list(conn.execute(select(*columns).order_by(releases.c.position, releases.c.name)).mappings())
            v2_rows = list(conn.execute(select(v2.c.name, v2.c.product, v2.c.data_version, v2.c.read_only)
                                        .order_by(v2.c.name)).mappings())
        known = {row["name"] for row in rows}
        rows += [row for row in v2_rows if row["name"] not in known]
        return [{**row, "read_only": bool(row["read_only"])} for row in rows]

    def shutoffs(self) -> list[dict]:
        table = emergency_shutoffs
        return [dict(row) for row in self._fetch(select(table).order_by(table.c.product, table.c.channel))]

    def pins(self) -> list[dict]:
        table = pinnable_releases
        order = (table.c.product, table.c.channel, table.c.version)
        return [dict(row) for row in self._fetch(select(table).order_by(*order))]

    def rule_history(self, rule_id: int) -> list[dict]:
        query = (
            select(rules_history)
            .where(rules_history.c.rule_id == rule_id)
            .order_by(rules_history.c.change_id.desc())
        )
        return [
            {**_rule_dict(row), "change_id": row["change_id"], "changed_by": row["changed_by"],
             "timestamp": row["timestamp"]}
            for row in self._fetch(query)
        ]

    def settings(self) -> dict:
        return {row["key"]: json.loads(row["value"]) for row in self._fetch(select(settings))}

    def change_counter(self) -> int:
        with self._connect() as conn:
            value = conn.execute(select(change_counter.c.value).where(change_counter.c.id == 1)).scalar()
        return value or 0

    def ping(self) -> bool:
        try:
            with self._turns, self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def heartbeat(self) -> int:
        # Its own write transaction, without the change-counter bump of data writes: a heartbeat
        # every few seconds must not make every public server rebuild its snapshot.
        self._ensure_schema()
        for attempt in (1, 2):
            try:
                with self._turns, _write_transaction(self.engine) as conn:
                    bumped = conn.execute(update(dockerflow).values(watchdog=dockerflow.c.watchdog + 1))
                    if bumped.rowcount == 0:
                        conn.execute(insert(dockerflow).values(watchdog=1))
                    return conn.execute(select(dockerflow.c.watchdog)).scalar_one()
            except IntegrityError:
                if attempt == 2:  # two first heartbeats raced to insert the row; the retry updates it
                    raise
        raise AssertionError("unreachable")

    # --- write side ------------------------------------------------------------------------
    @contextmanager
    def session(self, changed_by: str | None = None) -> Iterator[SQLSession]:
        if changed_by is None:
            with self._own_connection() as conn, conn.begin():
                yield SQLSession(conn, None)
        else:
            with self._write() as conn:
                yield SQLSession(conn, changed_by)

    def dump(self) -> dict:
        with self._own_connection() as conn, conn.begin():
            return sql_dump.dump(conn)

    def restore(self, dump: Mapping[str, Any]) -> None:
        tables = sql_dump.parse(dump)  # refuses bad input before anything is written
        try:
            with self._write() as conn:
                sql_dump.restore(conn, tables)
        except (IntegrityError, DataError) as exc:
            raise DatasetRejected(f"dump rejected by the database: {exc.orig}") from exc

    def replace_all(self, dataset: Dataset) -> None:
        """Swap the whole database for ``dataset`` in one transaction.

        A dataset that breaks a uniqueness rule (two releases with one name, two rules with
        one id or alias, …) raises :class:`DatasetRejected` and leaves the old contents in place.
        """
        self._ensure_schema()
        rows = _dataset_rows(dataset)
        for table, table_rows in rows:
            _check_values(table, table_rows)
        try:
            with self._write() as conn:
                for table in DATA_TABLES:
                    conn.execute(table.delete())
                for table, table_rows in rows:
                    _insert_many(conn, table, table_rows)
                _sync_rule_ids(conn)
        except (IntegrityError, DataError) as exc:
            raise DatasetRejected(f"dataset rejected by the database: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # --- plumbing --------------------------------------------------------------------------
    @contextmanager
    def consistent_reads(self) -> Iterator[None]:
        """One read transaction for the reads of this thread until the block ends: REPEATABLE
        READ on the servers (READ COMMITTED, their default here, would let each statement see
        newer commits), and on SQLite a transaction is a snapshot already."""
        if getattr(self._reading, "conn", None) is not None:
            yield  # nested: the outer block's transaction serves
            return
        self._ensure_schema()
        with self._turns, self.engine.connect() as conn:
            if self.engine.dialect.name != "sqlite":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                self._reading.conn = conn
                try:
                    yield
                finally:
                    self._reading.conn = None

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection for the read methods: the one of :meth:`consistent_reads` when inside it."""
        reading = getattr(self._reading, "conn", None)
        if reading is not None:
            yield reading
            return
        with self._own_connection() as conn:
            yield conn

    @contextmanager
    def _own_connection(self) -> Iterator[Connection]:
        self._ensure_schema()
        with self._turns, self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction. It starts by bumping the change counter: that locks the counter
        row (SQLite: ``BEGIN IMMEDIATE`` takes the write lock) until commit, so writers queue up
        instead of interleaving — on PostgreSQL a second load's DELETE would otherwise miss the
        rows the first one is inserting, and fail on its own INSERTs. The bump only becomes
        visible with the commit, so readers never see the counter move before the data."""
        self._ensure_schema()
        with self._turns, _write_transaction(self.engine) as conn:
            _bump_counter(conn)
            yield conn

    def _fetch(self, query) -> list[Mapping[str, Any]]:
        with self._connect() as conn:
            return list(conn.execute(query).mappings())

    # --- schema ----------------------------------------------------------------------------
    def upgrade(self) -> str | None:
        """Bring the database to the current schema revision and return that revision.

        Empty databases get every migration; databases made by ``create_all`` before the
        migrations existed are stamped at the revision they match first. Idempotent (an
        up-to-date database is not written to), and serialised between processes, so every
        process may do it at start-up."""
        with self._schema_lock, self._turns:
            revision = _upgrade_schema(self.engine)
            self._schema_ready = True
        return revision

    def schema_revision(self) -> str | None:
        """The database's alembic revision: ``None`` for an empty database, and for one made by
        ``create_all`` before the migrations existed (not stamped yet)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision of the migrations: the schema of :data:`metadata`."""
        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def _ensure_schema(self) -> None:
        """Migrate to the current revision and create the counter row, once per instance."""
        if self._schema_ready:
            return
        with self._schema_lock, self._turns:
            if self._schema_ready:
                return
            _upgrade_schema(self.engine)
            self._schema_ready = True


# --- engine ------------------------------------------------------------------------------------
def resolve_url(url: str | URL) -> URL:
    """``url`` with the default driver for plain ``postgresql://``, ``mysql://`` and ``mariadb://``,
    and utf8mb4 as the MySQL connection character set unless the URL names one."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if "+" not in parsed.drivername and backend in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{DEFAULT_DRIVERS[backend]}")
    if backend in MYSQL_FAMILY and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def make_engine(url: str) -> Engine:
    """``create_engine`` with the driver defaults of :func:`resolve_url`, plus the SQLite specifics.

    The servers run at READ COMMITTED (PostgreSQL's default; MySQL's REPEATABLE READ would add
    gap locks to the whole-table deletes of a load, and nothing here needs it)."""
    parsed = resolve_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, isolation_level="READ COMMITTED")
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        # One shared connection, otherwise every pooled connection sees its own empty database.
        options["poolclass"] = StaticPool
    engine = create_engine(parsed, **options)
    _configure_sqlite(engine, wal=not in_memory)
    return engine


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``, but ``BEGIN IMMEDIATE`` on SQLite: a deferred transaction that reads
    before it writes can fail at once with "database is locked" when another connection
    committed meanwhile; an immediate one waits for the write lock (busy timeout) instead."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


def _configure_sqlite(engine: Engine, wal: bool) -> None:
    """WAL lets the server's readers run while a write is in progress; the busy timeout makes
    writers wait for each other instead of failing. pysqlite's own transaction handling
    is switched off and replaced by an explicit BEGIN (SQLAlchemy's documented recipe) so
    SQLite transactions behave like PostgreSQL's: every statement, DDL included, runs in
    the transaction that ``engine.begin()`` opened."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        if wal:
            _enable_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def _enable_wal(cursor, attempts: int = 300) -> None:
    """Switch a SQLite file to WAL. The switch needs the database to itself and, unlike other
    statements, does not wait for the busy timeout: processes opening a new database at the
    same moment retry (an already-WAL database answers at once)."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


# --- schema ----------------------------------------------------------------------------------------
def alembic_config(connection: Connection | None = None) -> Config:
    """The alembic configuration of the migrations, made in code (no ``alembic.ini``). With a
    ``connection``, ``env.py`` runs the migrations on it, inside its transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # The migrations' building blocks (metadata, column types): they cannot import the plugin.
    config.attributes["sql"] = sql_schema
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade_schema(engine: Engine) -> str | None:
    """Migrate to ``head`` and create the counter row; returns the revision. Several processes
    may start at once, so this is serialised: two migrators would both see an empty database
    and one would fail with "already exists". PostgreSQL and SQLite run the migrations in one
    transaction (after an advisory lock / ``BEGIN IMMEDIATE``), so a failed migration leaves
    nothing behind; MySQL commits DDL implicitly, so a named lock held by the connection
    guards it there."""
    if engine.dialect.name in MYSQL_FAMILY:
        with engine.connect() as conn:
            lock = func.concat("balrog-schema-", func.database())
            if conn.execute(select(func.get_lock(lock, 60))).scalar() != 1:
                raise RuntimeError("timed out waiting for another process to migrate the schema")
            try:
                revision = _migrate(conn)
                conn.commit()
            finally:
                conn.rollback()  # a failed migration's open transaction, before the lock is released
                conn.execute(select(func.release_lock(lock)))
                conn.commit()
        return revision
    with _write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(PG_SCHEMA_LOCK)))
        return _migrate(conn)


#: alembic keeps the running migration in module globals (``alembic.context``): two storages
#: of one process must not migrate at the same time, even on different databases.
_ALEMBIC = threading.Lock()


def _migrate(conn: Connection) -> str | None:
    """Under the schema lock, in ``conn``'s transaction: recognise what is there, upgrade to ``head``."""
    with _ALEMBIC:
        return _migrate_now(conn)


def _migrate_now(conn: Connection) -> str | None:
    config = alembic_config(conn)
    current = MigrationContext.configure(conn).get_current_revision()
    tables = set(sa_inspect(conn).get_table_names())
    ours = tables & set(metadata.tables)
    if current is None and releases.name in tables:
        # Made by create_all before the migrations: stamp the revision its tables match.
        inspector = sa_inspect(conn)
        columns = {column["name"] for column in inspector.get_columns(releases.name)}
        conditions = {column["name"] for column in inspector.get_columns(_CONDITIONS_TABLE)} \
            if _CONDITIONS_TABLE in tables else set()
        shape = 6 if "scheduled_change_enactments" in tables else 5 if "conditions" in conditions \
            else 4 if "dockerflow" in tables else 3 if "releases_json" in tables \
            else 2 if "permissions" in tables else 1 if "position" in columns else 0
        command.stamp(config, CREATE_ALL_REVISIONS[shape])
    elif current is not None and not ours:
        # Versioned, but every table is gone (``metadata.drop_all`` leaves alembic_version behind):
        # an empty database, to be built from the start.
        command.stamp(config, "base")
    command.upgrade(config, "head")
    _seed_counter(conn)
    return MigrationContext.configure(conn).get_current_revision()


def _seed_counter(conn: Connection) -> None:
    """Insert the counter row unless it exists (under :func:`_upgrade_schema`'s lock, so the read
    cannot race; and a database user without INSERT rights can start once the row exists)."""
    if conn.execute(select(change_counter.c.id).where(change_counter.c.id == 1)).first() is None:
        conn.execute(insert(change_counter).values(id=1, value=0))


# --- writing -------------------------------------------------------------------------------------
def _dataset_rows(dataset: Dataset) -> list[tuple[Table, list[dict]]]:
    """The rows of every table for ``dataset``, in insertion order."""
    rule_rows = normalise_rules(dataset.rules)
    timestamp = int(time.time() * 1000)
    history_rows = [{**rule, "changed_by": LOAD_USER, "timestamp": timestamp} for rule in rule_rows]
    return [
        (rules, rule_rows),
        (rules_history, history_rows),
        (releases, [release_row(release) | {"position": i} for i, release in enumerate(dataset.releases)]),
        (emergency_shutoffs, [shutoff_row(row) for row in dataset.emergency_shutoffs]),
        (pinnable_releases, [pin_row(row) for row in dataset.pins]),
        (settings, [{"key": k, "value": dump_json(v)} for k, v in dataset.config.items()]),
    ]


def _check_values(table: Table, rows: Sequence[dict]) -> None:
    """Refuse, before writing, values the columns cannot hold (:func:`.sql_schema.value_problem`)."""
    for index, row in enumerate(rows):
        for column in table.columns:
            problem = value_problem(column, row.get(column.name))
            if problem:
                raise DatasetRejected(f"dataset rejected: {table.name}[{index}].{column.name}: {problem}")


def _sync_rule_ids(conn: Connection) -> None:
    """Loads write explicit rule ids; PostgreSQL's sequence does not notice, so move it past them
    (SQLite and MySQL do this themselves) and a rule created later without an id gets a new one."""
    if conn.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(rules.name, rules.c.rule_id.name)
        next_id = func.coalesce(func.max(rules.c.rule_id), 0) + 1
        conn.execute(select(func.setval(sequence, next_id, False)))


def _insert_many(conn: Connection, table: Table, rows: Sequence[dict]) -> None:
    """executemany; skipped when empty because an INSERT with no parameter sets would
    insert one row of defaults."""
    if rows:
        conn.execute(insert(table), list(rows))


def _bump_counter(conn: Connection) -> None:
    conn.execute(update(change_counter).where(change_counter.c.id == 1).values(value=change_counter.c.value + 1))


# --- reading ---------------------------------------------------------------------------------------
def _v2_releases(conn: Connection, names: Sequence[str]) -> dict[str, StoredRelease]:
    """The named releases of v2 storage: each base blob with its assets placed at their paths."""
    found: dict[str, StoredRelease] = {}
    bases = conn.execute(select(releases_json).where(releases_json.c.name.in_(names))).mappings()
    for row in bases:
        data = json.loads(row["data"]) if row["data"] is not None else {}
        found[row["name"]] = StoredRelease(name=row["name"], product=row["product"], data=data,
                                           data_version=row["data_version"], read_only=bool(row["read_only"]))
    if found:
        assets = release_assets
        query = (select(assets.c.name, assets.c.path, assets.c.data).where(assets.c.name.in_(sorted(found)))
                 .order_by(assets.c.name, assets.c.path))
        for row in conn.execute(query).mappings():
            place_asset(found[row["name"]].data, row["path"], json.loads(row["data"]))
    return found


def place_asset(blob: dict, path: str, value: Any) -> None:
    """Put ``value`` at an asset path (``.platforms.<p>.locales.<l>``) of ``blob``, creating the
    containers on the way."""
    parts = asset_path_parts(path)
    here = blob
    for part in parts[:-1]:
        if not isinstance(here.get(part), dict):
            here[part] = {}
        here = here[part]
    here[parts[-1]] = value


def asset_path_parts(path: str) -> list[str]:
    """``.platforms.P.locales.L`` -> ``["platforms", "P", "locales", "L"]`` (platform names may
    contain dots; locale names do not)."""
    if path.startswith(".platforms.") and ".locales." in path:
        platform, _, locale = path[len(".platforms."):].rpartition(".locales.")
        return ["platforms", platform, "locales", locale]
    return [part for part in path.split(".") if part]


def _rule_dict(row: Mapping[str, Any]) -> dict:
    return booleans_as_bool({column: row[column] for column in RULE_COLUMNS})


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@hookimpl
def balrog_storage_backends():
    return {"sqlite": SQLStorage, "postgresql": SQLStorage, "mysql": SQLStorage, "mariadb": SQLStorage,
            "memory": SQLStorage}
