"""v2 releases: ``releases_json`` (base rows) and ``release_assets`` (locale rows), each
versioned with compact history and schedulable (admin-api.md §3.1).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

The shapes are spelled out here as they are at this revision; the layout rules are
``balrog_engine.versioned``'s (see 0003).
"""
from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PRODUCT = 100
BASES = ("releases_json", "release_assets")


def _columns(Key, BLOB_TEXT):  # noqa: N803 (sql.py's names)
    """name -> [(column, type, is_key)] of the new base tables, without data_version."""
    return {
        "releases_json": [("name", Key(100), True), ("product", sa.String(PRODUCT), False),
                          ("read_only", sa.Boolean, False), ("data", BLOB_TEXT, False)],
        "release_assets": [("name", Key(100), True), ("path", Key(200), True), ("data", BLOB_TEXT, False)],
    }


def _index_name(table: str) -> str:
    return f"ix_{table[:40]}_{zlib.crc32(table.encode()):08x}_key"


def _change_record():
    return [sa.Column("change_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                      autoincrement=True),
            sa.Column("changed_by", sa.String(100), nullable=False),
            sa.Column("timestamp", sa.BigInteger, nullable=False)]


def _create(name, columns, options, key=None):
    op.create_table(name, *columns, **options)
    if key:
        op.create_index(_index_name(name), name, key)


def _row_history(name, columns, options):
    """The rows layout: the change record and a nullable copy of every column (keys NOT NULL)."""
    copies = [sa.Column(n, t, nullable=not is_key) for n, t, is_key in columns]
    _create(f"{name}_history", _change_record() + copies + [sa.Column("data_version", sa.Integer)], options,
            [n for n, _, is_key in columns if is_key])


def upgrade() -> None:
    sql = context.config.attributes["sql"]
    Key, BLOB_TEXT, options = sql.Key, sql.BLOB_TEXT, sql.TABLE_OPTIONS  # noqa: N806
    tables = _columns(Key, BLOB_TEXT)
    payload = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")

    for name in BASES:
        columns = [sa.Column(n, t, primary_key=True) if is_key else sa.Column(n, t, nullable=n != "read_only")
                   for n, t, is_key in tables[name]]
        _create(name, columns + [sa.Column("data_version", sa.Integer, nullable=False)], options)
        keys = [n for n, _, is_key in tables[name] if is_key]
        _create(f"{name}_history", _change_record() + [sa.Column(n, t, nullable=False) for n, t, is_key
                                                         in tables[name] if is_key] + [
            sa.Column("data_version", sa.Integer), sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("payload", payload),
        ], options, keys)

    for base in BASES:
        name = f"{base}_scheduled_changes"
        desired = [(f"base_{n}", t, False) for n, t, _ in tables[base]] + [("base_data_version", sa.Integer, False)]
        changes = [("sc_id", sa.Integer, True), ("scheduled_by", sa.String(100), False),
                   ("complete", sa.Boolean, False), ("change_type", sa.String(50), False)] + desired
        required = {"scheduled_by", "complete", "change_type"}
        conditions = [("sc_id", sa.Integer, True), ("when", sa.BigInteger, False)]
        signoffs = [("sc_id", sa.Integer, True), ("username", Key(100), True), ("role", sa.String(50), False)]
        for table, columns in ((name, changes), (f"{name}_conditions", conditions), (f"{name}_signoffs", signoffs)):
            made = [sa.Column(n, t, primary_key=True, autoincrement=(n == "sc_id" and table == name))
                    if is_key else sa.Column(n, t, nullable=n not in required and n != "role")
                    for n, t, is_key in columns]
            _create(table, made + [sa.Column("data_version", sa.Integer, nullable=False)], options)
            _row_history(table, columns, options)


def downgrade() -> None:
    names = [f"{base}_scheduled_changes{part}{history}"
             for base in BASES for part in ("", "_conditions", "_signoffs") for history in ("_history", "")]
    names += [f"{base}{history}" for base in BASES for history in ("_history", "")]
    for name in names:
        op.drop_table(name)
