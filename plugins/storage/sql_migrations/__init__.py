"""Alembic migrations of the SQL storage backend's schema (:data:`balrog_plugins.storage.sql.metadata`).

An alembic script directory that is also a package, so it ships in the wheel. It is
configured in code (:func:`balrog_plugins.storage.sql.alembic_config`): no ``alembic.ini``
is needed to run it. ``SQLStorage`` upgrades to ``head`` on first use and ``balrog db upgrade``
does it on demand.

To write the next revision (numbered ``0003``, ``0004``, … so the files sort)::

    from alembic import command
    from balrog_plugins.storage import sql
    command.revision(sql.alembic_config(), message="what changes", rev_id="0004")

then fill in ``upgrade()`` by hand. Reuse the column types of ``sql_schema.py``
(``Key``, ``BLOB_TEXT``, ``TABLE_OPTIONS``: ``context.config.attributes["sql"]`` is that
module, handed over by the storage since plugin files import no plugin package, see
``env.py``) rather than redefining them, and spell the
columns out: a revision describes the schema at its point in history, so it must not
follow later edits of the table definitions.
"""
