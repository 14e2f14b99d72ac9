"""SQLAlchemy storage backend: SQLite today, PostgreSQL and MySQL through the same code.

Tables and column names follow the reference Balrog database (``rules``,
``rules_history``, ``releases``, ``emergency_shutoffs``, ``pinnable_releases``) so that
the later versioned-write work (data_version checks, history rows, alembic) extends this
schema instead of replacing it. Two tables are ours: ``settings`` (deployment settings
that travel with a dataset) and ``change_counter`` (one row, bumped in every write
transaction, so polling for changes costs one primary-key lookup).

Everything is SQLAlchemy Core. The single module-level :data:`metadata` is what alembic
will be pointed at.
"""
from __future__ import annotations

import json
import threading
import time
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
    UniqueConstraint,
    create_engine,
    event,
    exists,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from balrog_engine import hookimpl
from balrog_engine.storage import (
    RULE_COLUMNS,
    Dataset,
    DatasetRejected,
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

#: Written as ``changed_by`` in the history rows that :meth:`SQLStorage.replace_all` creates.
LOAD_USER = "balrog-load"

#: Names per ``IN (...)`` query. Stays well below SQLite's historical 999 bound-parameter
#: limit and keeps statements small on every backend.
NAME_CHUNK = 500

#: Release blobs reach hundreds of KB; MySQL's plain TEXT stops at 64 KB.
BLOB_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql")

#: Product names are String(15) in the reference, but its test data (and therefore our
#: conformance scenarios) use longer ones; the reference only got away with that on SQLite.
PRODUCT = 100

metadata = MetaData()


def _rule_value_columns() -> list[Column]:
    """The rule columns other than ``rule_id`` and ``data_version``, shared by ``rules`` and
    ``rules_history``. Sizes are the reference's (rule-matching spec §2)."""
    return [
        Column("alias", String(50)),
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
)

releases = Table(
    "releases", metadata,
    Column("name", String(100), primary_key=True),
    Column("product", String(PRODUCT)),
    Column("read_only", Boolean, nullable=False, default=False),
    # Text rather than a JSON column type: compact, portable, and key order is preserved
    # (PostgreSQL's JSONB would reorder keys, and blob key order can reach the wire).
    Column("data", BLOB_TEXT, nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
    # Creation order: the reference lists releases in the order they were created.
    Column("position", Integer, nullable=False, default=0),
)

emergency_shutoffs = Table(
    "emergency_shutoffs", metadata,
    Column("product", String(PRODUCT), primary_key=True),
    Column("channel", String(75), primary_key=True),
    Column("comment", String(500)),
    Column("data_version", Integer, nullable=False, default=1),
)

pinnable_releases = Table(
    "pinnable_releases", metadata,
    Column("product", String(PRODUCT), primary_key=True),
    Column("channel", String(75), primary_key=True),
    Column("version", String(75), primary_key=True),
    Column("mapping", String(100), nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
)

settings = Table(
    "settings", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
)

change_counter = Table(
    "change_counter", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

#: Tables emptied by :meth:`SQLStorage.replace_all` (everything but the counter).
DATA_TABLES = (rules, rules_history, releases, emergency_shutoffs, pinnable_releases, settings)


class SQLStorage(Storage):
    """A :class:`~balrog_engine.Storage` on any SQLAlchemy database URL.

    The engine's connection pool makes one instance safe to share between threads (the
    server reads from a background refresh thread). The schema is created on first use
    rather than in the constructor, so a server can start while its database is down and
    report that through :meth:`ping`.
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
        try:
            with self.engine.begin() as conn:
                for table in DATA_TABLES:
                    conn.execute(table.delete())
                _write_dataset(conn, dataset)
                _bump_counter(conn)
        except IntegrityError as exc:
            raise DatasetRejected(f"dataset rejected by the database: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # --- plumbing --------------------------------------------------------------------------
    def _connect(self) -> Connection:
        self._ensure_schema()
        return self.engine.connect()

    def _fetch(self, query) -> list[Mapping[str, Any]]:
        with self._connect() as conn:
            return list(conn.execute(query).mappings())

    def _ensure_schema(self) -> None:
        """Create missing tables and the counter row, once per instance. Idempotent, so every
        process may do it at start-up; alembic migrations will take this over."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            metadata.create_all(self.engine)
            _seed_counter(self.engine)
            self._schema_ready = True


# --- engine ------------------------------------------------------------------------------------
def make_engine(url: str) -> Engine:
    """``create_engine`` plus the SQLite specifics; other databases need nothing extra."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        # One shared connection, otherwise every pooled connection sees its own empty database.
        options["poolclass"] = StaticPool
    engine = create_engine(url, **options)
    _configure_sqlite(engine, wal=not in_memory)
    return engine


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
        conn.exec_driver_sql("BEGIN")


def _seed_counter(engine: Engine) -> None:
    """Insert the counter row unless it exists, as one statement: a read followed by a write
    could fail on SQLite when another process seeds concurrently (stale WAL snapshot)."""
    missing = ~exists(select(change_counter.c.id))
    seed = insert(change_counter).from_select(["id", "value"], select(literal(1), literal(0)).where(missing))
    try:
        with engine.begin() as conn:
            conn.execute(seed)
    except IntegrityError:
        pass  # another process seeded it first


# --- writing -------------------------------------------------------------------------------------
def _write_dataset(conn: Connection, dataset: Dataset) -> None:
    rule_rows = normalise_rules(dataset.rules)
    timestamp = int(time.time() * 1000)
    history_rows = [{**rule, "changed_by": LOAD_USER, "timestamp": timestamp} for rule in rule_rows]
    _insert_many(conn, rules, rule_rows)
    _insert_many(conn, rules_history, history_rows)
    _insert_many(conn, releases, [release_row(release) | {"position": i} for i, release in enumerate(dataset.releases)])
    _insert_many(conn, emergency_shutoffs, [shutoff_row(row) for row in dataset.emergency_shutoffs])
    _insert_many(conn, pinnable_releases, [pin_row(row) for row in dataset.pins])
    _insert_many(conn, settings, [{"key": k, "value": dump_json(v)} for k, v in dataset.config.items()])


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
    return {"sqlite": SQLStorage, "postgresql": SQLStorage, "mysql": SQLStorage}
