"""Alembic environment of the SQL storage backend.

:func:`balrog_plugins.storage.sql.alembic_config` hands over, in ``config.attributes``, the
connection to migrate (``"connection"``, already in the storage's locked transaction: the
schema lock, the migration and, where DDL is transactional, the commit are the storage's)
and the storage module itself (``"sql"``: its ``metadata`` and column types). Plugins import
nothing of each other, not even of their own package (docs/architecture.md), so the
migrations get these from the storage instead of importing it. Run them with
``balrog db upgrade`` (or :meth:`SQLStorage.upgrade`), not with the ``alembic`` command.
"""
from __future__ import annotations

from alembic import context


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("the SQL storage migrations run against a database, not as --sql scripts")
    attributes = context.config.attributes
    if "connection" not in attributes or "sql" not in attributes:
        raise RuntimeError("run the SQL storage migrations with `balrog db upgrade`")
    context.configure(connection=attributes["connection"], target_metadata=attributes["sql"].metadata)
    with context.begin_transaction():
        context.run_migrations()


main()
