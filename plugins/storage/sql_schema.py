"""The SQL schema: every table, and which of them are versioned with history.

Table and column names follow the reference Balrog database (admin-api.md, Appendix A), so
release engineers and their queries find what they expect. Ours: ``settings`` (deployment
settings that travel with a dataset), ``change_counter`` (bumped in every write transaction,
so polling for changes costs one primary-key lookup), ``releases.position`` (creation order)
and ``releases_history`` (compact blob history; the reference keeps it in a bucket).

This module is the *current* schema. The alembic migrations in ``sql_migrations`` build it
one reviewed revision at a time; a test compares the two.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, TypeDecorator, UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from balrog_engine.versioned import VersionedTable, history_table_for

#: Release blobs reach hundreds of KB; MySQL's plain TEXT stops at 64 KB.
BLOB_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

#: Dialect names of the MySQL family (``mariadb://`` URLs get SQLAlchemy's "mariadb" dialect).
MYSQL_FAMILY = ("mysql", "mariadb")

#: Product names are String(15) in the reference, but its test data (and therefore our
#: conformance scenarios) use longer ones; the reference only got away with that on SQLite.
PRODUCT = 100


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

#: On SQLite, an ``INTEGER PRIMARY KEY`` without AUTOINCREMENT takes the highest id in use plus
#: one: deleting the newest row frees its id, and the next row would get it along with the old
#: row's history (and, for scheduled changes, its conditions and signoffs history). AUTOINCREMENT
#: never hands an id out twice. The servers' sequences and AUTO_INCREMENT never reuse ids anyway.
NEVER_REUSED_IDS = {"sqlite_autoincrement": True}

metadata = MetaData()

#: The ranges of Integer and BigInteger columns, the same on every dialect.
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def value_problem(column: Column, value: Any) -> str | None:
    """Why ``value`` does not fit ``column`` — a string longer than the column, an integer
    outside its range — or None. Checked before writing, the same way on every dialect: SQLite
    would store such values, PostgreSQL and strict MySQL would fail, lax MySQL would truncate."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(value, str) and isinstance(kind, String) and kind.length and len(value) > kind.length:
        return f"{len(value)} characters long, more than the {kind.length} the column holds: {value[:60]!r}"
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(kind, Integer):
        low, high = INT64 if isinstance(kind, BigInteger) else INT32
        if not low <= value <= high:
            return f"{value} is outside the column's range [{low}, {high}]"
    return None


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


# --- base tables -------------------------------------------------------------------------------
rules = Table(
    "rules", metadata,
    Column("rule_id", Integer, primary_key=True, autoincrement=True),
    *_rule_value_columns(),
    Column("data_version", Integer, nullable=False, default=1),
    UniqueConstraint("alias", name="rules_alias_key"),
    **TABLE_OPTIONS, **NEVER_REUSED_IDS,
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

permissions = Table(
    "permissions", metadata,
    Column("permission", Key(50), primary_key=True),
    Column("username", Key(100), primary_key=True),
    Column("options", Text),  # JSON object or NULL
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

user_roles = Table(
    "user_roles", metadata,
    Column("username", Key(100), primary_key=True),
    Column("role", Key(50), primary_key=True),
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

product_req_signoffs = Table(
    "product_req_signoffs", metadata,
    Column("product", Key(PRODUCT), primary_key=True),
    Column("channel", Key(75), primary_key=True),
    Column("role", Key(50), primary_key=True),
    Column("signoffs_required", Integer, nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

permissions_req_signoffs = Table(
    "permissions_req_signoffs", metadata,
    Column("product", Key(PRODUCT), primary_key=True),
    Column("role", Key(50), primary_key=True),
    Column("signoffs_required", Integer, nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

# v2 releases (admin-api.md §3.1): a base row per release and one row per locale asset.
releases_json = Table(
    "releases_json", metadata,
    Column("name", Key(100), primary_key=True),
    Column("product", String(PRODUCT)),
    Column("read_only", Boolean, nullable=False, default=False),
    Column("data", BLOB_TEXT),  # JSON
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

release_assets = Table(
    "release_assets", metadata,
    Column("name", Key(100), primary_key=True),
    Column("path", Key(200), primary_key=True),
    Column("data", BLOB_TEXT),  # JSON
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

# The admin heartbeat's counter (the reference's table of the same name and shape): one row whose
# ``watchdog`` every ``/__heartbeat__`` increments, shared by every admin process. Operational
# state, not data: it is neither dumped nor replaced by a dataset load.
dockerflow = Table(
    "dockerflow", metadata,
    Column("watchdog", Integer, primary_key=True, autoincrement=False),
    **TABLE_OPTIONS,
)

# Who enacted a scheduled change, and when (revision 0007). The change's own history cannot say:
# an enacted change writes its target's history as the change's ``scheduled_by``, as the reference
# does (and its recordings, which we replay, show). One row per enacted change; ``segment`` is the
# admin API's name of the change's family (``rules``, ``emergency_shutoff``, ``releases_v2``...).
scheduled_change_enactments = Table(
    "scheduled_change_enactments", metadata,
    Column("segment", Key(50), primary_key=True),
    Column("sc_id", Integer, primary_key=True, autoincrement=False),
    Column("enacted_by", String(100), nullable=False),
    # ms since the epoch. Not "timestamp": the row-layout history copies every column next to its
    # own change record, whose "timestamp" would clash. (The admin API answers it as "timestamp".)
    Column("enacted_at", BigInteger, nullable=False),
    Column("data_version", Integer, nullable=False, default=1),
    **TABLE_OPTIONS,
)

#: Operational state of the servers, not data: never dumped, restored or replaced by a load.
SERVICE_TABLES = (change_counter, dockerflow)


# --- history ---------------------------------------------------------------------------------------
def _history(table: Table, compact: bool = False) -> Table:
    history = history_table_for(table, metadata, compact=compact)
    # The history table copies its table's options, AUTOINCREMENT included; history rows are never
    # deleted, so their ids cannot be reused and the plain rowid serves (as revision 0003 made them).
    history.dialect_options["sqlite"]["autoincrement"] = False
    return history


# rules_history predates the generic declaration (revision 0001); same layout, its own names.
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
releases_history = _history(releases, compact=True)
releases_json_history = _history(releases_json, compact=True)
release_assets_history = _history(release_assets, compact=True)


# --- scheduled changes -----------------------------------------------------------------------------
def _scheduled_change_tables(base: Table, untracked: tuple[str, ...] = (), uptake: bool = False) -> tuple[Table, ...]:
    """``<base>_scheduled_changes`` (the desired row as ``base_<column>``), its ``_conditions``
    and ``_signoffs`` tables (scheduled-changes-and-agent.md §2)."""
    name = f"{base.name}_scheduled_changes"
    desired = [Column(f"base_{c.name}", c.type, nullable=True) for c in base.columns if c.name not in untracked]
    changes = Table(
        name, metadata,
        Column("sc_id", Integer, primary_key=True, autoincrement=True),
        Column("scheduled_by", String(100), nullable=False),
        Column("complete", Boolean, nullable=False, default=False),
        Column("change_type", String(50), nullable=False),
        *desired,
        Column("data_version", Integer, nullable=False, default=1),
        **TABLE_OPTIONS, **NEVER_REUSED_IDS,
    )
    telemetry = [Column("telemetry_product", String(PRODUCT)), Column("telemetry_channel", String(75)),
                 Column("telemetry_uptake", Integer)] if uptake else []
    conditions = Table(
        f"{name}_conditions", metadata,
        Column("sc_id", Integer, primary_key=True, autoincrement=False),
        Column("when", BigInteger),
        *telemetry,
        Column("data_version", Integer, nullable=False, default=1),
        # The plugin conditions beyond ``when`` (and the rules' telemetry columns), as JSON
        # ``{"<condition name>": {params}}``, NULL when there are none. Last: revision 0006 added it.
        Column("conditions", Text),
        **TABLE_OPTIONS,
    )
    signoffs = Table(
        f"{name}_signoffs", metadata,
        Column("sc_id", Integer, primary_key=True, autoincrement=False),
        Column("username", Key(100), primary_key=True),
        Column("role", String(50), nullable=False),
        # Signoffs are granted and revoked, never edited; the version keeps them generic.
        Column("data_version", Integer, nullable=False, default=1),
        **TABLE_OPTIONS,
    )
    return changes, conditions, signoffs


#: base table name -> (changes, conditions, signoffs)
SCHEDULED: dict[str, tuple[Table, Table, Table]] = {
    "rules": _scheduled_change_tables(rules, uptake=True),
    "releases": _scheduled_change_tables(releases, untracked=("position",)),
    "permissions": _scheduled_change_tables(permissions),
    "product_req_signoffs": _scheduled_change_tables(product_req_signoffs),
    "permissions_req_signoffs": _scheduled_change_tables(permissions_req_signoffs),
    "emergency_shutoffs": _scheduled_change_tables(emergency_shutoffs),
    "pinnable_releases": _scheduled_change_tables(pinnable_releases),
    "releases_json": _scheduled_change_tables(releases_json),
    "release_assets": _scheduled_change_tables(release_assets),
}


# --- the versioned tables --------------------------------------------------------------------------
def _versioned() -> dict[str, VersionedTable]:
    declared = {
        "rules": VersionedTable(rules, rules_history),
        "releases": VersionedTable(releases, releases_history, json_columns=("data",), untracked=("position",)),
        "releases_json": VersionedTable(releases_json, releases_json_history, json_columns=("data",)),
        "release_assets": VersionedTable(release_assets, release_assets_history, json_columns=("data",)),
    }
    for table, json_columns in ((emergency_shutoffs, ()), (pinnable_releases, ()), (permissions, ("options",)),
                                (user_roles, ()), (product_req_signoffs, ()), (permissions_req_signoffs, ()),
                                (scheduled_change_enactments, ())):
        declared[table.name] = VersionedTable(table, _history(table), json_columns=json_columns)
    base_json = {"releases": ("base_data",), "permissions": ("base_options",), "releases_json": ("base_data",),
                 "release_assets": ("base_data",)}
    for base, tables in SCHEDULED.items():
        changes, conditions, _ = tables
        for table in tables:
            if table is changes:
                json_columns = base_json.get(base, ())
            elif table is conditions:
                json_columns = ("conditions",)  # the plugin conditions
            else:
                json_columns = ()
            declared[table.name] = VersionedTable(table, _history(table), json_columns=json_columns)
    return declared


#: Every versioned table by name: the tables a storage session writes.
VERSIONED: dict[str, VersionedTable] = _versioned()
