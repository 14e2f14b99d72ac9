"""Versioned tables with history: the two guarantees release engineers rely on, declared once.

*Collision detection*: every row carries a ``data_version``; every update or delete names
the version it read, and the check is part of the UPDATE/DELETE statement itself
(``WHERE key = … AND data_version = …``), so there is no read-then-write race.

*Full history*: every insert, update and delete writes a history record in the same
transaction. Records are compact (:class:`~balrog_engine.jsondiff.HistoryCodec`: a full
copy every N versions, zlib-compressed diffs in between) and any past version reads back
exactly.

And one improvement on the reference: a *stale* write (its ``data_version`` is behind)
whose changes do not overlap the changes made since that version is merged three-way at
the JSON-path level and succeeds; only a true conflict is refused.

A table opts in by declaration::

    RELEASES = VersionedTable(releases_table, key=("name",), history=history_table_for(releases_table, ...))

All operations take an open SQLAlchemy connection inside a transaction (``engine.begin()``);
if anything raises, the transaction rolls back and nothing — row or history — remains.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sqlalchemy import (
    BigInteger, Column, Connection, Integer, LargeBinary, MetaData, String, Table, and_, delete, insert, select,
    update,
)

from .jsondiff import HistoryCodec, merge3

ConflictRule = Callable[[tuple, Any, Any, Any], "bool | None"]


class VersionError(Exception):
    """Base of the write refusals; ``status`` is the HTTP status an API should answer."""

    status = 400


class NotFound(VersionError):
    status = 404


class AlreadyExists(VersionError):
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
    """A history entry as callers see it."""

    change_id: int
    data_version: int | None  # None for a deletion
    changed_by: str
    timestamp: int  # ms since the epoch
    kind: str


def history_table_for(table: Table, key: tuple[str, ...], metadata: MetaData, name: str | None = None) -> Table:
    """The history table for ``table``: its key columns plus the change record."""
    key_columns = [Column(c.name, c.type, nullable=False, index=True) for c in table.columns if c.name in key]
    return Table(
        name or f"{table.name}_history", metadata,
        Column("change_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        *key_columns,
        Column("data_version", Integer),
        Column("changed_by", String(100), nullable=False),
        Column("timestamp", BigInteger, nullable=False),
        Column("kind", String(8), nullable=False),  # full | diff | delete
        Column("payload", LargeBinary(2**32 - 1)),
    )


@dataclass(frozen=True)
class VersionedTable:
    """How one table is versioned.

    ``to_document(row)`` turns a stored row (without key and data_version) into the JSON
    document that history and merging work on; ``to_row(document)`` is its inverse. The
    defaults treat the remaining columns themselves as the document.
    ``conflict`` lets a blob type refine what counts as a conflict (see ``jsondiff.merge3``).
    """

    table: Table
    history: Table
    key: tuple[str, ...]
    to_document: Callable[[Mapping[str, Any]], Any] = field(default=None)  # type: ignore[assignment]
    to_row: Callable[[Any], Mapping[str, Any]] = field(default=None)  # type: ignore[assignment]
    conflict: ConflictRule | None = None
    codec: HistoryCodec = field(default_factory=lambda: HistoryCodec(snapshot_every=50))

    def __post_init__(self):
        payload = [c.name for c in self.table.columns if c.name not in self.key and c.name != "data_version"]
        if self.to_document is None:
            object.__setattr__(self, "to_document", lambda row: {name: row[name] for name in payload})
        if self.to_row is None:
            object.__setattr__(self, "to_row", lambda doc: {name: doc.get(name) for name in payload})

    # --- helpers ----------------------------------------------------------------------------
    def _where(self, table: Table, key: Mapping[str, Any]):
        return and_(*(table.c[name] == key[name] for name in self.key))

    def _key(self, key: Mapping[str, Any]) -> dict:
        missing = [name for name in self.key if name not in key]
        if missing:
            raise ValueError(f"key column(s) missing: {', '.join(missing)}")
        return {name: key[name] for name in self.key}

    def _record(self, conn: Connection, key: dict, version: int | None, kind: str, payload: bytes | None,
                changed_by: str) -> None:
        conn.execute(insert(self.history).values(
            **key, data_version=version, changed_by=changed_by, timestamp=int(time.time() * 1000), kind=kind,
            payload=payload))

    def _current(self, conn: Connection, key: dict, lock: bool = True):
        query = select(self.table).where(self._where(self.table, key))
        if lock:
            query = query.with_for_update()
        return conn.execute(query).mappings().first()

    # --- writes -------------------------------------------------------------------------------
    def insert(self, conn: Connection, key: Mapping[str, Any], document: Any, changed_by: str) -> int:
        key = self._key(key)
        if self._current(conn, key) is not None:
            raise AlreadyExists(f"{self.table.name} {key} already exists")
        conn.execute(insert(self.table).values(**key, **self.to_row(document), data_version=1))
        kind, payload = self.codec.record(0, None, document)
        self._record(conn, key, 1, kind, payload, changed_by)
        return 1

    def update(self, conn: Connection, key: Mapping[str, Any], document: Any, old_data_version: int,
               changed_by: str) -> int:
        """Write ``document`` over the version the caller read; returns the new data_version.

        Current version: written as is. Stale version: merged with what changed since,
        or refused with :class:`StaleVersion` listing the conflicting paths.
        """
        key = self._key(key)
        current = self._current(conn, key)
        if current is None:
            raise NotFound(f"{self.table.name} {key} does not exist")
        current_version = current["data_version"]
        current_doc = self.to_document(current)
        target = document
        if old_data_version != current_version:
            base = self.read(conn, key, old_data_version) if 0 < old_data_version < current_version else None
            if base is None:
                raise StaleVersion(f"data_version {old_data_version} does not match the current {current_version}",
                                   current_version)
            merged, conflicts = merge3(base, document, current_doc, conflict=self.conflict)
            if conflicts:
                raise StaleVersion(f"data_version {old_data_version} is stale and these changes conflict: "
                                   f"{', '.join(conflicts)}", current_version, conflicts)
            target = merged
        new_version = current_version + 1
        result = conn.execute(
            update(self.table)
            .where(and_(self._where(self.table, key), self.table.c.data_version == current_version))
            .values(**self.to_row(target), data_version=new_version))
        if result.rowcount != 1:  # only possible if a backend ignored the row lock
            raise StaleVersion("changed concurrently; read it again", None)
        kind, payload = self.codec.record(new_version - 1, current_doc, target)
        self._record(conn, key, new_version, kind, payload, changed_by)
        return new_version

    def delete(self, conn: Connection, key: Mapping[str, Any], old_data_version: int, changed_by: str) -> None:
        key = self._key(key)
        result = conn.execute(delete(self.table).where(
            and_(self._where(self.table, key), self.table.c.data_version == old_data_version)))
        if result.rowcount != 1:
            current = self._current(conn, key, lock=False)
            if current is None:
                raise NotFound(f"{self.table.name} {key} does not exist")
            raise StaleVersion(f"data_version {old_data_version} does not match the current "
                               f"{current['data_version']}", current["data_version"])
        self._record(conn, key, None, "delete", None, changed_by)

    # --- history ------------------------------------------------------------------------------
    def _generation(self, conn: Connection, key: dict) -> list:
        """History rows of the object's current life (after its last deletion), oldest first."""
        rows = conn.execute(
            select(self.history.c.change_id, self.history.c.data_version, self.history.c.changed_by,
                   self.history.c.timestamp, self.history.c.kind, self.history.c.payload)
            .where(self._where(self.history, key)).order_by(self.history.c.change_id)).all()
        start = 0
        for i, row in enumerate(rows):
            if row.kind == "delete":
                start = i + 1
        return rows[start:]

    def read(self, conn: Connection, key: Mapping[str, Any], data_version: int) -> Any | None:
        """The document as it was at ``data_version`` (None if there was no such version)."""
        rows = self._generation(conn, self._key(key))
        records = [(row.kind, bytes(row.payload)) for row in rows]
        if not 1 <= data_version <= len(records):
            return None
        return self.codec.read(records, data_version - 1)

    def changes(self, conn: Connection, key: Mapping[str, Any]) -> list[Change]:
        """Every recorded change of the object, across deletions, newest first."""
        key = self._key(key)
        rows = conn.execute(
            select(self.history.c.change_id, self.history.c.data_version, self.history.c.changed_by,
                   self.history.c.timestamp, self.history.c.kind)
            .where(self._where(self.history, key)).order_by(self.history.c.change_id.desc())).all()
        return [Change(r.change_id, r.data_version, r.changed_by, r.timestamp, r.kind) for r in rows]

    def history_bytes(self, conn: Connection, key: Mapping[str, Any]) -> int:
        """Bytes of history payload stored for the object (for the size benchmark)."""
        rows = self._generation(conn, self._key(key))
        return sum(len(row.payload or b"") for row in rows)


def json_column_document(column: str) -> tuple[Callable, Callable]:
    """``to_document``/``to_row`` for tables whose payload is one JSON-text column (releases)."""
    return (lambda row: json.loads(row[column])), (lambda doc: {column: json.dumps(doc, separators=(",", ":"))})
