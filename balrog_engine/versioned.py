"""Versioned tables with history: the two guarantees release engineers rely on, declared once.

*Collision detection*: every row carries a ``data_version``; every update or delete names
the version it read, and the check is part of the UPDATE/DELETE statement itself
(``WHERE key = … AND data_version = …``), so there is no read-then-write race.

*Full history*: every insert, update and delete writes a history record in the same
transaction, and any past version reads back exactly. Two history layouts, chosen by the
shape of the declared history table:

- **rows** (the reference's layout, for small rows: rules, permissions, signoffs, …): the
  history table has ``change_id``, ``changed_by``, ``timestamp`` and a nullable copy of every
  column. An insert writes an id-only placeholder (stamped one millisecond earlier) and then
  the row; an update writes the new row; a delete writes an id-only tombstone. Clients see
  these rows (revisions endpoints, ``change_id`` numbers), so they follow the reference exactly.
- **compact** (for release blobs of hundreds of KB): the history table has ``kind`` and
  ``payload`` columns holding :class:`~balrog_engine.jsondiff.HistoryCodec` records, a full
  copy every N versions and zlib-compressed JSON diffs in between.

And one improvement on the reference: a *stale* write (its ``data_version`` is behind)
whose changes do not overlap the changes made since that version is merged three-way at
the JSON-path level and succeeds; only a true conflict is refused.

A table opts in by declaration::

    RULES = VersionedTable(rules, rules_history)
    RELEASES = VersionedTable(releases, releases_history, json_columns=("data",), untracked=("position",))

A row's *document* is the dict of its tracked columns (everything but the key, the
``data_version`` and ``untracked`` columns), with ``json_columns`` parsed: that is what
history stores and what merges work on, so a merge of two release writes sees the blob's
JSON paths (``data.platforms.…``). All operations take an open SQLAlchemy connection inside
a transaction; if anything raises, the transaction rolls back and nothing — row or history —
remains.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from sqlalchemy import (
    BigInteger, Column, Connection, Index, Integer, LargeBinary, MetaData, String, Table, and_, delete, insert,
    select, update,
)

from sqlalchemy.dialects import mysql

from .jsondiff import HistoryCodec, merge3

#: Compact history payloads: BLOB tops out at 64 KB on MySQL, so LONGBLOB there.
PAYLOAD = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")

ConflictRule = Callable[[tuple, Any, Any, Any], "bool | None"]


class VersionError(Exception):
    """Base of the write refusals; ``status`` is the HTTP status an API should answer."""

    status = 400


class NotFound(VersionError):
    status = 404


class AlreadyExists(VersionError):
    status = 400


class Invalid(VersionError):
    """A value the table cannot hold (too long for its column, out of range, unknown column)."""

    status = 400


class StaleVersion(VersionError):
    """The named data_version is not the current one and the change cannot be merged."""

    status = 400

    def __init__(self, message: str, current: int | None, conflicts: list[str] | None = None):
        super().__init__(message)
        self.current = current
        self.conflicts = conflicts or []


@dataclass(frozen=True)
class Change:
    """A history entry as callers see it. ``kind``: ``insert`` (version 1), ``update``,
    ``delete``, or ``placeholder`` (the id-only row the rows layout writes before an insert)."""

    change_id: int
    data_version: int | None
    changed_by: str
    timestamp: int  # ms since the epoch
    kind: str


def history_table_for(table: Table, metadata: MetaData, compact: bool = False, name: str | None = None) -> Table:
    """Declare the history table of ``table`` in either layout (see the module docstring), with
    an index on the key columns."""
    name = name or f"{table.name}_history"
    change_id = BigInteger().with_variant(Integer, "sqlite")
    key = [c.name for c in table.primary_key.columns]
    record = [
        Column("change_id", change_id, primary_key=True, autoincrement=True),
        Column("changed_by", String(100), nullable=False),
        Column("timestamp", BigInteger, nullable=False),
    ]
    if compact:
        columns = [Column(c.name, c.type, nullable=False) for c in table.columns if c.name in key]
        columns += [Column("data_version", Integer), Column("kind", String(8), nullable=False),
                    Column("payload", PAYLOAD)]
    else:
        columns = [Column(c.name, c.type, nullable=c.name not in key) for c in table.columns]
    history = Table(name, metadata, *record, *columns, **table.kwargs)
    Index(history_index_name(name), *(history.c[column] for column in key))
    return history


def history_index_name(table: str) -> str:
    """The key index of a history table, named within every dialect's 63-character limit
    (scheduled-change history tables have long names)."""
    return f"ix_{table[:40]}_{zlib.crc32(table.encode()):08x}_key"


def now_ms() -> int:
    return int(time.time() * 1000)


class VersionedTable:
    """How one table is versioned: see the module docstring.

    ``json_columns`` hold JSON text; documents carry them parsed. ``untracked`` columns are
    set at insert and never versioned (e.g. a listing position). ``conflict`` refines what
    counts as a merge conflict for every write (see ``jsondiff.merge3``); a write may pass
    its own instead.
    """

    def __init__(self, table: Table, history: Table, *, json_columns: tuple[str, ...] = (),
                 untracked: tuple[str, ...] = (), conflict: ConflictRule | None = None,
                 codec: HistoryCodec | None = None):
        self.table = table
        self.history = history
        self.key = tuple(c.name for c in table.primary_key.columns)
        self.json_columns = json_columns
        self.untracked = untracked
        self.conflict = conflict
        self.compact = "payload" in history.c
        self.codec = codec or HistoryCodec(snapshot_every=50)
        skip = set(self.key) | set(untracked) | {"data_version"}
        self.tracked = tuple(c.name for c in table.columns if c.name not in skip)
        pk = list(table.primary_key.columns)
        self.generated_key = len(pk) == 1 and pk[0].autoincrement is True and isinstance(pk[0].type, Integer)

    @property
    def name(self) -> str:
        return self.table.name

    # --- rows and documents -----------------------------------------------------------------
    def document(self, row: Mapping[str, Any]) -> dict:
        """The tracked columns of a stored row, JSON columns parsed."""
        return {name: _load(row[name]) if name in self.json_columns else row[name] for name in self.tracked}

    def _values(self, document: Mapping[str, Any]) -> dict:
        unknown = set(document) - set(self.tracked)
        if unknown:
            raise ValueError(f"{self.name} has no versioned column(s) {', '.join(sorted(unknown))}")
        return {name: _dump(document.get(name)) if name in self.json_columns else document.get(name)
                for name in self.tracked}

    def key_of(self, key: Mapping[str, Any]) -> dict:
        missing = [name for name in self.key if key.get(name) is None]
        if missing:
            raise ValueError(f"{self.name}: key column(s) missing: {', '.join(missing)}")
        return {name: key[name] for name in self.key}

    def _where(self, table: Table, key: Mapping[str, Any]):
        return and_(*(table.c[name] == key[name] for name in self.key))

    def get(self, conn: Connection, key: Mapping[str, Any], lock: bool = False) -> dict | None:
        """The current row as ``{key columns, document columns, data_version}``, or None."""
        key = self.key_of(key)
        query = select(self.table).where(self._where(self.table, key))
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return {**key, **self.document(row), "data_version": row["data_version"]}

    # --- writes -------------------------------------------------------------------------------
    def insert(self, conn: Connection, values: Mapping[str, Any], changed_by: str,
               extra: Mapping[str, Any] | None = None, now: int | None = None) -> dict:
        """Insert a row at data_version 1; returns its key (generated when the table's key is
        an auto-increment id that ``values`` leaves out). ``extra`` sets untracked columns."""
        now = now or now_ms()
        document = {name: value for name, value in values.items() if name not in self.key}
        key = {name: values.get(name) for name in self.key}
        if not (self.generated_key and key[self.key[0]] is None):
            key = self.key_of(key)
            if self.get(conn, key, lock=True) is not None:
                raise AlreadyExists(f"{self.name} {_show(key)} already exists")
        row = {**self._values(document), **(extra or {}), "data_version": 1}
        given_key = {name: value for name, value in key.items() if value is not None}
        result = conn.execute(insert(self.table).values(**given_key, **row))
        if self.generated_key and not given_key:
            key = {self.key[0]: result.inserted_primary_key[0]}
        if self.compact:
            self._record(conn, key, 1, changed_by, now, *self.codec.record(0, None, self._stored(document)))
        else:
            self._record(conn, key, None, changed_by, now - 1)  # the reference's id-only placeholder
            self._record(conn, key, 1, changed_by, now, self._values(document))
        return key

    def update(self, conn: Connection, key: Mapping[str, Any], values: Mapping[str, Any], old_data_version: int,
               changed_by: str, *, conflict: ConflictRule | None = None, merge: bool = True,
               now: int | None = None) -> int:
        """Change the columns in ``values`` of the version the caller read; returns the new
        data_version. Columns not in ``values`` keep their value at ``old_data_version``.

        Current version: written as is. Stale version: merged three-way with what changed
        since (unless ``merge`` is false), or refused with :class:`StaleVersion` listing the
        conflicting paths."""
        key = self.key_of(key)
        current = self.get(conn, key, lock=True)
        if current is None:
            raise NotFound(f"{self.name} {_show(key)} does not exist")
        version = current["data_version"]
        current_doc = {name: current[name] for name in self.tracked}
        if old_data_version == version:
            target = {**current_doc, **values}
        else:
            base = self.read(conn, key, old_data_version) if merge and 0 < old_data_version < version else None
            if base is None:
                raise StaleVersion(f"data_version {old_data_version} does not match the current {version}", version)
            merged, conflicts = merge3(base, {**base, **values}, current_doc, conflict=conflict or self.conflict)
            if conflicts:
                raise StaleVersion(f"data_version {old_data_version} is stale and these changes conflict: "
                                   f"{', '.join(conflicts)}", version, conflicts)
            target = merged
        self._values(target)  # refuse unknown columns before writing anything
        result = conn.execute(
            update(self.table)
            .where(and_(self._where(self.table, key), self.table.c.data_version == version))
            .values(**self._values(target), data_version=version + 1))
        if result.rowcount != 1:  # only possible if a backend ignored the row lock
            raise StaleVersion("changed concurrently; read it again", None)
        now = now or now_ms()
        if self.compact:
            record = self.codec.record(version, self._stored(current_doc), self._stored(target))
            self._record(conn, key, version + 1, changed_by, now, *record)
        else:
            self._record(conn, key, version + 1, changed_by, now, self._values(target))
        return version + 1

    def delete(self, conn: Connection, key: Mapping[str, Any], old_data_version: int, changed_by: str,
               now: int | None = None) -> None:
        key = self.key_of(key)
        result = conn.execute(delete(self.table).where(
            and_(self._where(self.table, key), self.table.c.data_version == old_data_version)))
        if result.rowcount != 1:
            current = self.get(conn, key)
            if current is None:
                raise NotFound(f"{self.name} {_show(key)} does not exist")
            raise StaleVersion(f"data_version {old_data_version} does not match the current "
                               f"{current['data_version']}", current["data_version"])
        now = now or now_ms()
        if self.compact:
            self._record(conn, key, None, changed_by, now, "delete", None)
        else:
            self._record(conn, key, None, changed_by, now)

    def _record(self, conn: Connection, key: dict, version: int | None, changed_by: str, timestamp: int,
                *payload) -> None:
        """One history row. Compact: ``payload`` is ``(kind, bytes)``; rows: the column values
        (none for placeholders and tombstones)."""
        if self.compact:
            kind, data = payload
            values = {"kind": kind, "payload": data}
        else:
            values = payload[0] if payload else {}
        conn.execute(insert(self.history).values(
            **key, **values, data_version=version, changed_by=changed_by, timestamp=timestamp))

    def _stored(self, document: Mapping[str, Any]) -> dict:
        """The document as the compact codec keeps it (JSON columns as values, not text)."""
        return {name: document.get(name) for name in self.tracked}

    # --- history ------------------------------------------------------------------------------
    def _life(self, conn: Connection, key: dict) -> list:
        """History rows of the object's current life, oldest first (empty when it is deleted)."""
        columns = [self.history.c.change_id, self.history.c.data_version]
        columns += [self.history.c.kind, self.history.c.payload] if self.compact else \
            [self.history.c[name] for name in self.tracked]
        rows = conn.execute(select(*columns).where(self._where(self.history, key))
                            .order_by(self.history.c.change_id)).all()
        start = max((i for i, row in enumerate(rows) if row.data_version == 1), default=None)
        if start is None or any(row.data_version is None for row in rows[start:]):
            return []
        return rows[start:]

    def read(self, conn: Connection, key: Mapping[str, Any], data_version: int) -> dict | None:
        """The document as it was at ``data_version`` of the current life (None if there was
        no such version, or the object is deleted)."""
        rows = self._life(conn, self.key_of(key))
        if not 1 <= data_version <= len(rows):
            return None
        if self.compact:
            return dict(self.codec.read([(r.kind, bytes(r.payload)) for r in rows], data_version - 1))
        return self.document(rows[data_version - 1]._mapping)

    def changes(self, conn: Connection, key: Mapping[str, Any]) -> list[Change]:
        """Every recorded change of the object, across deletions, newest first."""
        key = self.key_of(key)
        h = self.history.c
        rows = conn.execute(select(h.change_id, h.data_version, h.changed_by, h.timestamp)
                            .where(self._where(self.history, key)).order_by(h.change_id.desc())).all()
        changes = []
        for i, row in enumerate(rows):
            if row.data_version is not None:
                kind = "insert" if row.data_version == 1 else "update"
            else:  # a null version right before a version 1 is an insert's placeholder
                kind = "placeholder" if i > 0 and rows[i - 1].data_version == 1 and not self.compact else "delete"
            changes.append(Change(row.change_id, row.data_version, row.changed_by, row.timestamp, kind))
        return changes

    def change(self, conn: Connection, key: Mapping[str, Any], change_id: int) -> tuple[int, dict] | None:
        """``(data_version, document)`` recorded by history entry ``change_id`` of the object's
        current life; None when the entry is not one of its versions (another object's, a
        placeholder, a tombstone, an earlier life)."""
        rows = self._life(conn, self.key_of(key))
        for number, row in enumerate(rows, 1):
            if row.change_id == change_id:
                return number, self.read(conn, key, number)
        return None

    def history_bytes(self, conn: Connection, key: Mapping[str, Any]) -> int:
        """Bytes of compact history payload stored for the object (for the size benchmark)."""
        return sum(len(row.payload or b"") for row in self._life(conn, self.key_of(key)))


def within(column: str, rule: ConflictRule) -> ConflictRule:
    """Adapt a conflict rule written for a JSON value (a blob type's ``merge_conflict``) to the
    documents of a table that keeps that value in ``column``: paths under the column are
    handed over relative to it; other paths get the default rules."""
    def rule_for_column(path: tuple, base: Any, ours: Any, theirs: Any) -> bool | None:
        return rule(path[1:], base, ours, theirs) if path[:1] == (column,) else None
    return rule_for_column


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _show(key: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in key.items())
