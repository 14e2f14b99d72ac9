"""The databases the storage suites run on: memory and SQLite always, PostgreSQL and
MySQL/MariaDB when ``BALROG_TEST_POSTGRESQL_URL`` / ``BALROG_TEST_MYSQL_URL`` name databases the
tests may wipe (``.ci/databases.sh`` starts both and prints the variables)."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from balrog_plugins.storage import sql

#: Database servers the suites run on when ``BALROG_TEST_<NAME>_URL`` is set.
SERVER_BACKENDS = ("postgresql", "mysql")


def backend_urls(memory: bool = True, sqlite: str = "sqlite:///{tmp}/balrog.db") -> list:
    """``pytest.param`` URLs, one per backend; ``{tmp}`` in the SQLite URL is for the test's tmp_path."""
    params = [pytest.param("memory://", id="memory")] if memory else []
    params.append(pytest.param(sqlite, id="sqlite"))
    for backend in SERVER_BACKENDS:
        url = os.environ.get(f"BALROG_TEST_{backend.upper()}_URL")
        if url:
            params.append(pytest.param(url, id=backend))
    return params


def wipe(url: str) -> None:
    """Drop our tables and alembic's version table: the database starts from nothing."""
    engine = sql.make_engine(url)
    try:
        sql.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


def empty(storage) -> None:
    """Empty a shared server database, at the current schema, as if new: every table emptied and
    every id sequence restarted (``rule_id``, ``change_id``, ``sc_id`` count from 1 again). Much
    faster than dropping and migrating 60 tables before every test."""
    storage.upgrade()
    engine = storage.engine
    names = [table.name for table in sql.DATA_TABLES + (sql.dockerflow,)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{name}"' for name in names) + " RESTART IDENTITY"))
        else:  # MySQL/MariaDB: TRUNCATE (which also restarts AUTO_INCREMENT) only what was used
            counters = dict(conn.execute(text(
                "SELECT table_name, auto_increment FROM information_schema.tables "
                "WHERE table_schema = DATABASE()")).all())
            for name in names:
                used = (counters.get(name) or 1) > 1 or conn.execute(text(f"SELECT 1 FROM `{name}` LIMIT 1")).first()
                if used:
                    conn.execute(text(f"TRUNCATE TABLE `{name}`"))
        conn.execute(sql.change_counter.update().values(value=0))
