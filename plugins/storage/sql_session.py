"""A storage :class:`~balrog_engine.Session` on one SQLAlchemy connection and transaction.

Every write goes through the table's :class:`~balrog_engine.VersionedTable` declaration
(:data:`~balrog_plugins.storage.sql_schema.VERSIONED`), so the data_version check, the
history record and the merge of stale writes are the same for every table.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlalchemy import Connection, Table, and_, func, select
from sqlalchemy.exc import IntegrityError

from balrog_engine import AlreadyExists, Change, ConflictRule, Invalid, NotFound, Session, VersionedTable

from .sql_schema import VERSIONED, releases, value_problem


class SQLSession(Session):
    def __init__(self, conn: Connection, changed_by: str | None):
        self.conn = conn
        self.changed_by = changed_by

    # --- reading --------------------------------------------------------------------------------
    def get(self, table: str, key: Mapping[str, Any]) -> dict | None:
        return _versioned(table).get(self.conn, key)

    def rows(self, table: str, where: Mapping[str, Any] | None = None, order_by: Sequence[str] = (),
             limit: int | None = None, offset: int = 0) -> list[dict]:
        versioned = _versioned(table)
        query = _filtered(select(versioned.table), versioned.table, where)
        query = query.order_by(*_ordering(versioned.table, order_by, versioned.key)).offset(offset or None)
        if limit is not None:
            query = query.limit(limit)
        return [{**{k: row[k] for k in versioned.key}, **versioned.document(row), "data_version": row["data_version"]}
                for row in self.conn.execute(query).mappings()]

    def count(self, table: str, where: Mapping[str, Any] | None = None) -> int:
        versioned = _versioned(table)
        query = _filtered(select(func.count()).select_from(versioned.table), versioned.table, where)
        return self.conn.execute(query).scalar_one()

    def version(self, table: str, key: Mapping[str, Any], data_version: int) -> dict | None:
        versioned = _versioned(table)
        document = versioned.read(self.conn, key, data_version)
        return None if document is None else {**versioned.key_of(key), **document, "data_version": data_version}

    def changes(self, table: str, key: Mapping[str, Any]) -> list[Change]:
        return _versioned(table).changes(self.conn, key)

    def history(self, table: str, where: Mapping[str, Any] | None = None, since: int | None = None,
                until: int | None = None, limit: int | None = None, offset: int = 0,
                versions_only: bool = True) -> list[dict]:
        versioned = _versioned(table)
        if versioned.compact:
            return self._compact_history(versioned, where, since, until, limit, offset, versions_only)
        history = versioned.history
        query = _history_query(select(history), history, where, since, until, versions_only)
        query = query.order_by(history.c.change_id.desc()).offset(offset or None)
        if limit is not None:
            query = query.limit(limit)
        return [_history_row(versioned, row) for row in self.conn.execute(query).mappings()]

    def history_count(self, table: str, where: Mapping[str, Any] | None = None, since: int | None = None,
                      until: int | None = None, versions_only: bool = True) -> int:
        versioned = _versioned(table)
        if versioned.compact:
            return len(self._compact_history(versioned, where, since, until, None, 0, versions_only))
        query = select(func.count()).select_from(versioned.history)
        return self.conn.execute(_history_query(query, versioned.history, where, since, until,
                                                versions_only)).scalar_one()

    def _compact_history(self, versioned: VersionedTable, where, since, until, limit, offset, versions_only):
        """Compact history is only listed per object: ``where`` must name its key."""
        key = versioned.key_of(where or {})
        rows = []
        for change in versioned.changes(self.conn, key):
            if change.data_version is None and versions_only:
                continue
            if (since is not None and change.timestamp < since) or (until is not None and change.timestamp > until):
                continue
            rows.append(change)
        rows = rows[offset:] if limit is None else rows[offset:offset + limit]
        out = []
        for change in rows:
            found = versioned.change(self.conn, key, change.change_id) if change.data_version else None
            document = found[1] if found else {name: None for name in versioned.tracked}
            out.append({**key, **document, "data_version": change.data_version, "change_id": change.change_id,
                        "changed_by": change.changed_by, "timestamp": change.timestamp})
        return out

    # --- writing --------------------------------------------------------------------------------
    def insert(self, table: str, values: Mapping[str, Any]) -> dict:
        versioned = _versioned(table)
        user = self._writer()
        _check_values(versioned.table, values)
        extra = {"position": self._next_position()} if versioned.table is releases else None
        try:
            with self.conn.begin_nested():  # a refused insert must not poison the transaction
                return versioned.insert(self.conn, values, user, extra=extra)
        except IntegrityError as exc:
            raise AlreadyExists(f"{table}: the row conflicts with an existing one ({_reason(exc)})") from exc

    def update(self, table: str, key: Mapping[str, Any], values: Mapping[str, Any], old_data_version: int, *,
               conflict: ConflictRule | None = None, merge: bool = True) -> int:
        versioned = _versioned(table)
        user = self._writer()
        _check_values(versioned.table, values)
        try:
            with self.conn.begin_nested():
                return versioned.update(self.conn, key, values, old_data_version, user, conflict=conflict,
                                        merge=merge)
        except IntegrityError as exc:
            raise AlreadyExists(f"{table}: the change conflicts with an existing row ({_reason(exc)})") from exc

    def delete(self, table: str, key: Mapping[str, Any], old_data_version: int) -> None:
        _versioned(table).delete(self.conn, key, old_data_version, self._writer())

    def revert(self, table: str, key: Mapping[str, Any], change_id: int) -> int:
        versioned = _versioned(table)
        found = versioned.change(self.conn, key, change_id)
        current = versioned.get(self.conn, key)
        if found is None or current is None:
            raise NotFound(f"change {change_id} is not a version of {table} {dict(key)}")
        return self.update(table, key, found[1], current["data_version"])

    def _writer(self) -> str:
        if not self.changed_by:
            raise RuntimeError("this session only reads: open it with storage.session(changed_by)")
        return self.changed_by

    def _next_position(self) -> int:
        return self.conn.execute(select(func.coalesce(func.max(releases.c.position), -1) + 1)).scalar_one()


# --- queries ---------------------------------------------------------------------------------------
def _versioned(table: str) -> VersionedTable:
    try:
        return VERSIONED[table]
    except KeyError:
        raise ValueError(f"no versioned table {table!r}") from None


def _column(table: Table, name: str):
    try:
        return table.c[name]
    except KeyError:
        raise Invalid(f"{table.name} has no column {name!r}") from None


def _filtered(query, table: Table, where: Mapping[str, Any] | None):
    conditions = [_column(table, name).is_(None) if value is None else _column(table, name) == value
                  for name, value in (where or {}).items()]
    return query.where(and_(*conditions)) if conditions else query


def _ordering(table: Table, order_by: Sequence[str], key: Sequence[str]) -> list:
    clauses = [_column(table, name[1:]).desc() if name.startswith("-") else _column(table, name)
               for name in order_by]
    return clauses + [table.c[name] for name in key]


def _history_query(query, history: Table, where, since, until, versions_only):
    query = _filtered(query, history, where)
    if since is not None:
        query = query.where(history.c.timestamp >= since)
    if until is not None:
        query = query.where(history.c.timestamp <= until)
    if versions_only:
        query = query.where(history.c.data_version.is_not(None))
    return query


def _history_row(versioned: VersionedTable, row: Mapping[str, Any]) -> dict:
    document = {name: row[name] for name in versioned.tracked}
    if row["data_version"] is not None:
        document = versioned.document(row)
    return {**{k: row[k] for k in versioned.key}, **document, "data_version": row["data_version"],
            "change_id": row["change_id"], "changed_by": row["changed_by"], "timestamp": row["timestamp"]}


def _check_values(table: Table, values: Mapping[str, Any]) -> None:
    """Refuse, before writing, values the columns cannot hold (:func:`.sql_schema.value_problem`)."""
    for name, value in values.items():
        problem = value_problem(_column(table, name), value)
        if problem:
            raise Invalid(f"{name}: {problem}")


def _reason(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig else str(exc)
