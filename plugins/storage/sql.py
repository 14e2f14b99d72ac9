"""SQLAlchemy storage backend: SQLite, PostgreSQL and MySQL/MariaDB through the same code.

Tables and column names follow the reference Balrog database (``rules``,
``rules_history``, ``releases``, ``emergency_shutoffs``, ``pinnable_releases``) so that
the later versioned-write work (data_version checks, history rows, alembic) extends this
schema instead of replacing it. Two tables are ours: ``settings`` (deployment settings
that travel with a dataset) and ``change_counter`` (one row, bumped in every write
transaction, so polling for changes costs one primary-key lookup).

Everything is SQLAlchemy Core. The single module-level :data:`metadata` is the current
schema; the alembic migrations in :mod:`balrog_plugins.storage.sql_migrations` build it, one
reviewed revision at a time, and :meth:`SQLStorage.upgrade` (run on first use, and by
``balrog db upgrade``) applies the ones a database lacks.

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
  ``BEGIN IMMEDIATE``), so parallel loads never interleave. Reads are READ COMMITTED on the
  servers, and schema migration is serialised between processes.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect as sa_inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql
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


#: Names per ``IN (...)`` query. Stays well below SQLite's historical 999 bound-parameter
#: limit and keeps statements small on every backend.
NAME_CHUNK = 500

#: Release blobs reach hundreds of KB; MySQL's plain TEXT stops at 64 KB.
BLOB_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

#: The DBAPI behind a URL without ``+driver``: what the ``postgresql`` / ``mysql`` extras install.
DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}

#: Dialect names of the MySQL family (``mariadb://`` URLs get SQLAlchemy's "mariadb" dialect).
MYSQL_FAMILY = ("mysql", "mariadb")

#: Execution option that makes a SQLite transaction ``BEGIN IMMEDIATE`` (see :func:`_configure_sqlite`).
WRITE = "balrog_write"

#: ``pg_advisory_xact_lock`` key serialising schema migration (any constant: "balrog" in ASCII).
PG_SCHEMA_LOCK = 0x62616C726F67

#: The alembic script directory (a package, so it ships in the wheel).
MIGRATIONS = Path(__file__).with_name("sql_migrations")

#: The revision a database made by ``metadata.create_all`` (before migrations) is stamped at:
#: the first, unless its ``releases`` table already has the ``position`` column.
CREATE_ALL_REVISIONS = ("0001", "0002")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


class Key(TypeDecorator):
    """A string key compared byte for byte: ``Firefox``, ``firefox`` and ``Firefox `` are three
    keys, and ORDER BY is code point order, on every dialect (as on SQLite)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect):
        length = self.impl.length
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String(length, collation="C"))
        if dialect.name in MYSQL_FAMILY:
            # utf8mb4_bin pads with spaces ('a' = 'a '); the NO PAD binary collations don't.
            if getattr(dialect, "is_mariadb", False):
                collation = "utf8mb4_nopad_bin"
            elif (dialect.server_version_info or (0,)) >= (8,):
                collation = "utf8mb4_0900_bin"
            else:
                collation = "utf8mb4_bin"
            return dialect.type_descriptor(mysql.VARCHAR(length, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(String(length))


#: Every table: InnoDB (transactions) and utf8mb4 (all of Unicode) on MySQL/MariaDB.
TABLE_OPTIONS = {
    f"{prefix}_{option}": value
    for prefix in MYSQL_FAMILY
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}

#: Product names are String(15) in the reference, but its test data (and therefore our
#: conformance scenarios) use longer ones; the reference only got away with that on SQLite.
PRODUCT = 100

metadata = MetaData()


def _rule_value_columns() -> list[Column]:
    """The rule columns other than ``rule_id`` and ``data_version``, shared by ``rules`` and
    ``rules_history``. Sizes are the reference's (rule-matching spec §2)."""
    return [
        Column("alias", Key(50)),
        Column("priority", Integer),
        Column("mapping", String(100)),
        Column("fallbackMapping", String(100)),
        Column("backgroundRate", Integer),
        Column("update_type", String(15)),
        Column("product", String(PRODUCT)),
        Column("version", String(75)),
        Column("channel", String(75)),
        Column("buildTarget", String(75)),
        Column("buildID", String(20)),
        Column("locale", String(200)),
        Column("osVersion", String(1000)),
        Column("memory", String(100)),
        Column("instructionSet", String(1000)),
        Column("jaws", Boolean),
        Column("mig64", Boolean),
        Column("distribution", String(2000)),
        Column("distVersion", String(100)),
        Column("headerArchitecture", String(10)),
        Column("comment", String(500)),
    ]


rules = Table(
    "rules", metadata,
    Column("rule_id", Integer, primary_key=True, autoincrement=True),
    *_rule_value_columns(),
    Column("data_version", Integer, nullable=False, default=1),
    UniqueConstraint("alias", name="rules_alias_key"),
    **TABLE_OPTIONS,
)

rules_history = Table(
    "rules_history", metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("changed_by", String(100), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("rule_id", Integer, nullable=False, index=True),
    *_rule_value_columns(),
    # NULL marks creation placeholders and deletion tombstones in the reference's history.
    Column("data_version", Integer),
    **TABLE_OPTIONS,
)

releases = Table(
    "releases", metadata,
    Column("name", Key(100), primary_key=True),
    Column("product", String(PRODUCT)),
    Column("read_only", Boolean, nullable=False, default=False),
    # Text rather than a JSON column type: compact, portable, and key order is preserved
    # (PostgreSQL's JSONB would reorder keys, and blob key order can reach the wire).
    Column("data", BLOB_TEXT, nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
    # Creation order: the reference lists releases in the order they were created.
    Column("position", Integer, nullable=False, default=0),
    **TABLE_OPTIONS,
)

emergency_shutoffs = Table(
    "emergency_shutoffs", metadata,
    Column("product", Key(PRODUCT), primary_key=True),
    Column("channel", Key(75), primary_key=True),
    Column("comment", String(500)),
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

pinnable_releases = Table(
    "pinnable_releases", metadata,
    Column("product", Key(PRODUCT), primary_key=True),
    Column("channel", Key(75), primary_key=True),
    Column("version", Key(75), primary_key=True),
    Column("mapping", String(100), nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

settings = Table(
    "settings", metadata,
    Column("key", Key(100), primary_key=True),
    Column("value", BLOB_TEXT, nullable=False),  # JSON: allowlists can outgrow MySQL's 64 KB TEXT
    **TABLE_OPTIONS,
)

change_counter = Table(
    "change_counter", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
    **TABLE_OPTIONS,
)

#: Tables emptied by :meth:`SQLStorage.replace_all` (everything but the counter).
DATA_TABLES = (rules, rules_history, releases, emergency_shutoffs, pinnable_releases, settings)


class SQLStorage(Storage):
    """A :class:`~balrog_engine.Storage` on any SQLAlchemy database URL.

    The engine's connection pool makes one instance safe to share between threads (the
    server reads from a background refresh thread). The schema is migrated to the current
    revision on first use rather than in the constructor, so a server can start while its
    database is down and report that through :meth:`ping`.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    # --- read side -------------------------------------------------------------------------
    def rules(self) -> list[dict]:
        rows = self._fetch(select(rules).order_by(rules.c.rule_id))
        return [_rule_dict(row) for row in rows]

    def releases(self, names: Iterable[str]) -> dict[str, StoredRelease]:
        found: dict[str, StoredRelease] = {}
        with self._connect() as conn:
            for chunk in _chunks(sorted(set(names)), NAME_CHUNK):
                query = select(releases).where(releases.c.name.in_(chunk))
                for row in conn.execute(query).mappings():
                    found[row["name"]] = stored_release(row)
        return found

    def release_summaries(self) -> list[dict]:
        columns = (releases.c.name, releases.c.product, releases.c.data_version, releases.c.read_only)
        rows = self._fetch(select(*columns).order_by(releases.c.position, releases.c.name))
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
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    # --- write side ------------------------------------------------------------------------
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
    def _connect(self) -> Connection:
        self._ensure_schema()
        return self.engine.connect()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction. It starts by bumping the change counter: that locks the counter
        row (SQLite: ``BEGIN IMMEDIATE`` takes the write lock) until commit, so writers queue up
        instead of interleaving — on PostgreSQL a second load's DELETE would otherwise miss the
        rows the first one is inserting, and fail on its own INSERTs. The bump only becomes
        visible with the commit, so readers never see the counter move before the data."""
        with _write_transaction(self.engine) as conn:
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
        with self._schema_lock:
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
        with self._schema_lock:
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
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


# --- schema ----------------------------------------------------------------------------------------
def alembic_config(connection: Connection | None = None) -> Config:
    """The alembic configuration of the migrations, made in code (no ``alembic.ini``). With a
    ``connection``, ``env.py`` runs the migrations on it, inside its transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # The migrations' building blocks (metadata, column types): they cannot import this module.
    config.attributes["sql"] = sys.modules[__name__]
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


def _migrate(conn: Connection) -> str | None:
    """Under the schema lock, in ``conn``'s transaction: recognise what is there, upgrade to ``head``."""
    config = alembic_config(conn)
    current = MigrationContext.configure(conn).get_current_revision()
    tables = set(sa_inspect(conn).get_table_names())
    ours = tables & set(metadata.tables)
    if current is None and releases.name in tables:
        # Made by create_all before the migrations: stamp the revision its tables match.
        columns = {column["name"] for column in sa_inspect(conn).get_columns(releases.name)}
        command.stamp(config, CREATE_ALL_REVISIONS[1] if "position" in columns else CREATE_ALL_REVISIONS[0])
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
    """Refuse strings longer than their column and integers outside its range, the same way on
    every dialect: SQLite would store them, PostgreSQL and MySQL (strict mode) would raise a
    driver error, and MySQL in non-strict mode would silently truncate."""
    limits = []
    for column in table.columns:
        kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
        if isinstance(kind, String) and kind.length:
            limits.append((column.name, "text", kind.length))
        elif isinstance(kind, Integer):
            limits.append((column.name, "int", INT64 if isinstance(kind, BigInteger) else INT32))
    for index, row in enumerate(rows):
        for name, kind, limit in limits:
            value = row.get(name)
            if value is None:
                continue
            if kind == "text" and isinstance(value, str) and len(value) > limit:
                raise DatasetRejected(
                    f"dataset rejected: {table.name}[{index}].{name} is {len(value)} characters long, "
                    f"more than the {limit} the column holds: {value[:60]!r}")
            if kind == "int" and isinstance(value, int) and not limit[0] <= value <= limit[1]:
                raise DatasetRejected(
                    f"dataset rejected: {table.name}[{index}].{name} = {value} is outside the column's range")


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
def _rule_dict(row: Mapping[str, Any]) -> dict:
    return booleans_as_bool({column: row[column] for column in RULE_COLUMNS})


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@hookimpl
def balrog_storage_backends():
    return {"sqlite": SQLStorage, "postgresql": SQLStorage, "mysql": SQLStorage, "mariadb": SQLStorage}
