"""Whole-database dumps of the SQL storage, and their exact restore.

A dump is one JSON-ready document::

    {"format": "balrog-dump/1",
     "schema_revision": "0003",
     "tables": {"rules": [{"rule_id": 1, "alias": null, ...}, ...], "rules_history": [...], ...}}

- ``tables`` has every table of :data:`.sql_schema.metadata` but the service tables, in
  ``metadata.sorted_tables`` order; rows are ordered by primary key, their keys in the
  table's column order. Ids (``rule_id``, ``change_id``, ``sc_id``) are kept as they are.
- Values are the stored ones, except: JSON text columns (the versioned tables' JSON columns,
  the same columns of their row-layout history tables, ``settings.value``) are parsed JSON;
  binary columns (``releases_history.payload``) are base64 text; booleans are booleans.

:func:`parse` checks a whole document before anything is written (format, schema revision,
tables, columns, types, lengths, integer ranges, duplicate keys) and refuses it with
:class:`~balrog_engine.DatasetRejected` naming the table, row, key and column, e.g.
``dump rejected: releases[3] (name='Firefox-60.0-build1'): data_version: expected an integer, got '2'``.
Blob contents are not checked here (storage has no plugin registry): callers validate
``releases.data`` and ``releases_scheduled_changes.base_data`` against their blob types.
:func:`restore` then replaces every table with the parsed rows.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Mapping, Sequence

from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger, Boolean, Column, Connection, Integer, LargeBinary, String, Table, TypeDecorator, UniqueConstraint,
    func, insert, select, text,
)

from balrog_engine.storage import DatasetRejected

from .sql_schema import INT32, INT64, SERVICE_TABLES, VERSIONED, metadata, settings

FORMAT = "balrog-dump/1"

#: The tables a dump holds and a restore replaces: everything but the change counter.
DUMPED_TABLES: tuple[Table, ...] = tuple(table for table in metadata.sorted_tables if table not in SERVICE_TABLES)



def _json_columns() -> dict[str, tuple[str, ...]]:
    """Table name -> its columns holding JSON text."""
    columns: dict[str, tuple[str, ...]] = {settings.name: ("value",)}
    for versioned in VERSIONED.values():
        if versioned.json_columns:
            columns[versioned.table.name] = tuple(versioned.json_columns)
            if not versioned.compact:  # row-layout history keeps the columns as they are
                columns[versioned.history.name] = tuple(
                    name for name in versioned.json_columns if name in versioned.history.c)
    return columns


#: Table name -> the columns of it holding JSON text (emitted parsed).
JSON_COLUMNS: dict[str, tuple[str, ...]] = _json_columns()


# --- dump ------------------------------------------------------------------------------------------
def dump(conn: Connection) -> dict:
    """Every table as a JSON-ready document (see the module docstring). Run it in a transaction,
    so the tables are read consistently."""
    tables: dict[str, list[dict]] = {}
    for table in DUMPED_TABLES:
        converters = [(column.name, _to_json(table, column)) for column in table.columns]
        query = select(table).order_by(*table.primary_key.columns)
        tables[table.name] = [
            {name: None if row[name] is None else convert(row[name]) for name, convert in converters}
            for row in conn.execute(query).mappings()
        ]
    return {
        "format": FORMAT,
        "schema_revision": MigrationContext.configure(conn).get_current_revision(),
        "tables": tables,
    }


def _to_json(table: Table, column: Column):
    if column.name in JSON_COLUMNS.get(table.name, ()):
        return json.loads
    kind = _kind(column)
    if isinstance(kind, Boolean):
        return bool
    if isinstance(kind, LargeBinary):
        return lambda value: base64.b64encode(bytes(value)).decode("ascii")
    return lambda value: value


def _kind(column: Column):
    """The column's type as the checks see it (a :class:`TypeDecorator`'s implementation)."""
    return column.type.impl if isinstance(column.type, TypeDecorator) else column.type


# --- parse -----------------------------------------------------------------------------------------
def parse(document: Any, head_revision: str | None = None) -> list[tuple[Table, list[dict]]]:
    """Check a whole dump and return ``[(table, rows)]`` for every dumped table, in insertion
    order, the rows as they are stored (JSON columns as compact JSON text, binary as bytes,
    every column present). Raise :class:`DatasetRejected` at the first problem.

    ``head_revision``: the schema revision the dump must have; default, the migrations' head."""
    if not isinstance(document, Mapping):
        _refuse(f"the dump must be a JSON object, not {_type_name(document)}")
    unknown = sorted(set(document) - {"format", "schema_revision", "tables"})
    if unknown:
        _refuse(f"unknown top-level key(s): {', '.join(map(str, unknown))}")
    if document.get("format") != FORMAT:
        found = repr(document["format"]) if "format" in document else "missing"
        _refuse(f"format: expected {FORMAT!r}, got {found}")
    if head_revision is None:
        from .sql import SQLStorage  # here: sql imports this module
        head_revision = SQLStorage.head_revision()
    if document.get("schema_revision") != head_revision:
        _refuse(f"schema_revision: the dump is of schema revision {document.get('schema_revision')!r}, "
                f"this version of balrog-engine has {head_revision!r}; restore it with a matching version")
    tables = document.get("tables")
    if not isinstance(tables, Mapping):
        _refuse(f"tables: expected an object of table name -> rows, got {_type_name(tables)}")
    names = {table.name for table in DUMPED_TABLES}
    unknown = sorted(str(name) for name in tables if name not in names)
    if unknown:
        _refuse(f"tables: unknown table(s): {', '.join(unknown)}")
    missing = [table.name for table in DUMPED_TABLES if table.name not in tables]
    if missing:
        _refuse(f"tables: missing table(s): {', '.join(missing)}")
    return [(table, _parse_rows(table, tables[table.name])) for table in DUMPED_TABLES]


def _parse_rows(table: Table, rows: Any) -> list[dict]:
    if not isinstance(rows, list):
        _refuse(f"{table.name}: expected a list of rows, got {_type_name(rows)}")
    checks = [(column, _check_for(table, column)) for column in table.columns]
    columns = {column.name for column in table.columns}
    unique = [tuple(column.name for column in constraint.columns) for constraint in table.constraints
              if isinstance(constraint, UniqueConstraint)]
    unique.insert(0, tuple(column.name for column in table.primary_key.columns))
    seen: list[dict[tuple, int]] = [{} for _ in unique]
    parsed = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            _refuse(f"{table.name}[{index}]: expected an object (a row), got {_type_name(row)}")
        where = _where(table, index, row)
        extra = [str(name) for name in row if name not in columns]
        if extra:
            _refuse(f"{where}: unknown column(s): {', '.join(extra)}")
        values = {}
        for column, check in checks:
            if column.name not in row:
                if not column.nullable:
                    _refuse(f"{where}: {column.name}: missing (the column is not nullable)")
                values[column.name] = None
                continue
            try:
                values[column.name] = check(row[column.name])
            except ValueError as exc:
                _refuse(f"{where}: {column.name}: {exc}")
        for names, found in zip(unique, seen):
            key = tuple(values[name] for name in names)
            if None in key:
                continue
            if key in found:
                shown = ", ".join(names)
                _refuse(f"{where}: {shown}: duplicate of {table.name}[{found[key]}]")
            found[key] = index
        parsed.append(values)
    return parsed


def _check_for(table: Table, column: Column):
    """A function checking one value of ``column`` and returning it as stored, raising
    ValueError with a message about what is wrong."""
    kind = _kind(column)
    length = kind.length if isinstance(kind, String) else None
    nullable = column.nullable

    def check_null(value):
        if value is None and not nullable:
            raise ValueError("null, but the column is not nullable")
        return value is None

    if column.name in JSON_COLUMNS.get(table.name, ()):
        def check_json(value):
            if value is None and nullable:
                return None  # NULL (non-nullable JSON columns store JSON null as the text "null")
            try:
                text = json.dumps(value, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"not JSON: {exc}") from None
            _check_length(text, length, "as JSON text")
            return text
        return check_json
    if isinstance(kind, Boolean):
        def check_bool(value):
            if check_null(value):
                return None
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {_show(value)}")
            return value
        return check_bool
    if isinstance(kind, Integer):
        low, high = INT64 if isinstance(kind, BigInteger) else INT32

        def check_int(value):
            if check_null(value):
                return None
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"expected an integer, got {_show(value)}")
            if not low <= value <= high:
                raise ValueError(f"{value} is outside the column's range [{low}, {high}]")
            return value
        return check_int
    if isinstance(kind, LargeBinary):
        def check_binary(value):
            if check_null(value):
                return None
            if not isinstance(value, str):
                raise ValueError(f"expected base64 text, got {_show(value)}")
            try:
                data = base64.b64decode(value.encode("ascii"), validate=True)
            except (UnicodeEncodeError, binascii.Error) as exc:
                raise ValueError(f"not valid base64: {exc}") from None
            if kind.length and len(data) > kind.length:
                raise ValueError(f"{len(data)} bytes, more than the {kind.length} the column holds")
            return data
        return check_binary
    if isinstance(kind, String):
        def check_string(value):
            if check_null(value):
                return None
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {_show(value)}")
            _check_length(value, length)
            return value
        return check_string
    raise TypeError(f"sql_dump cannot check column {table.name}.{column.name} of type {column.type!r}")


def _check_length(text: str, length: int | None, what: str = "") -> None:
    if length is not None and len(text) > length:
        raise ValueError(f"{len(text)} characters long{' ' + what if what else ''}, more than the {length} "
                         f"the column holds: {text[:60]!r}")


def _where(table: Table, index: int, row: Mapping[str, Any]) -> str:
    """``releases[3] (name='Firefox-60.0-build1')``: the row's index and its key (what of it there is)."""
    key = ", ".join(f"{column.name}={row[column.name]!r}" for column in table.primary_key.columns
                    if column.name in row)
    return f"{table.name}[{index}]" + (f" ({key})" if key else "")


def _show(value: Any) -> str:
    return f"{_type_name(value)} {repr(value)[:60]}"


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _refuse(message: str):
    raise DatasetRejected(f"dump rejected: {message}")


# --- restore ---------------------------------------------------------------------------------------
def restore(conn: Connection, tables: Sequence[tuple[Table, list[dict]]]) -> None:
    """In ``conn``'s (write) transaction: empty every dumped table, insert ``tables`` (from
    :func:`parse`) with their ids as given, and move the id counters of PostgreSQL and SQLite
    past them."""
    for table in reversed(DUMPED_TABLES):
        conn.execute(table.delete())
    for table, rows in tables:
        if rows:  # an INSERT with no parameter sets would insert one row of defaults
            conn.execute(insert(table), list(rows))
    if conn.dialect.name == "postgresql":
        for table in DUMPED_TABLES:
            _sync_sequence(conn, table)
    elif conn.dialect.name == "sqlite":
        for table in DUMPED_TABLES:
            _sync_sqlite_counter(conn, table)


def _highest_id(conn: Connection, table: Table) -> int | None:
    """The highest value of ``table``'s auto-increment id in the table and in the tables named
    after it that have the column (``rules_history.rule_id``, ``…_scheduled_changes_signoffs.sc_id``,
    …): ids of deleted objects live on there, and must not be handed out again. None when the
    table has no auto-increment id."""
    column = table.autoincrement_column
    if column is None:
        return None
    related = [other for other in DUMPED_TABLES
               if (other is table or other.name.startswith(f"{table.name}_")) and column.name in other.c]
    return max(conn.execute(select(func.max(other.c[column.name]))).scalar() or 0 for other in related)


def _sync_sequence(conn: Connection, table: Table) -> None:
    """Move the PostgreSQL sequence of ``table``'s auto-increment id past every id restored
    (:func:`_highest_id`), so the next generated one is new. MySQL moves its counters past
    explicit ids itself."""
    highest = _highest_id(conn, table)
    if highest is None:
        return
    sequence = func.pg_get_serial_sequence(table.name, table.autoincrement_column.name)
    conn.execute(select(func.setval(sequence, highest + 1, False)))


def _sync_sqlite_counter(conn: Connection, table: Table) -> None:
    """The same for SQLite's AUTOINCREMENT tables: their counter (``sqlite_sequence``) survives the
    emptying and only ever moves past the ids inserted, so set it to the restored highest."""
    if not table.dialect_options["sqlite"]["autoincrement"]:
        return
    highest = _highest_id(conn, table)
    if highest is None:
        return
    conn.execute(text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": table.name})
    if highest:
        conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
                     {"name": table.name, "seq": highest})
