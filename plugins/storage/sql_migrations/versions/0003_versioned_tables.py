"""Versioned tables with history: permissions, roles, required signoffs, scheduled changes,
history for shutoffs, pins and releases (compact).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

The shapes are spelled out here as they are at this revision (a later change of
``sql_schema`` needs its own revision); the layout rules are ``balrog_engine.versioned``'s.
"""
from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PRODUCT = 100


def _columns(Key, BLOB_TEXT):  # noqa: N803 (sql.py's names)
    """name -> [(column, type, is_key)] of every versioned base table, without data_version."""
    rule_values = [
        ("alias", Key(50)), ("priority", sa.Integer), ("mapping", sa.String(100)),
        ("fallbackMapping", sa.String(100)), ("backgroundRate", sa.Integer), ("update_type", sa.String(15)),
        ("product", sa.String(PRODUCT)), ("version", sa.String(75)), ("channel", sa.String(75)),
        ("buildTarget", sa.String(75)), ("buildID", sa.String(20)), ("locale", sa.String(200)),
        ("osVersion", sa.String(1000)), ("memory", sa.String(100)), ("instructionSet", sa.String(1000)),
        ("jaws", sa.Boolean), ("mig64", sa.Boolean), ("distribution", sa.String(2000)),
        ("distVersion", sa.String(100)), ("headerArchitecture", sa.String(10)), ("comment", sa.String(500)),
    ]
    return {
        "rules": [("rule_id", sa.Integer, True)] + [(n, t, False) for n, t in rule_values],
        "releases": [("name", Key(100), True), ("product", sa.String(PRODUCT), False),
                     ("read_only", sa.Boolean, False), ("data", BLOB_TEXT, False)],
        "emergency_shutoffs": [("product", Key(PRODUCT), True), ("channel", Key(75), True),
                               ("comment", sa.String(500), False)],
        "pinnable_releases": [("product", Key(PRODUCT), True), ("channel", Key(75), True),
                              ("version", Key(75), True), ("mapping", sa.String(100), False)],
        "permissions": [("permission", Key(50), True), ("username", Key(100), True), ("options", sa.Text, False)],
        "user_roles": [("username", Key(100), True), ("role", Key(50), True)],
        "product_req_signoffs": [("product", Key(PRODUCT), True), ("channel", Key(75), True),
                                 ("role", Key(50), True), ("signoffs_required", sa.Integer, False)],
        "permissions_req_signoffs": [("product", Key(PRODUCT), True), ("role", Key(50), True),
                                     ("signoffs_required", sa.Integer, False)],
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

    for name in ("permissions", "user_roles", "product_req_signoffs", "permissions_req_signoffs"):
        columns = [sa.Column(n, t, primary_key=True) if is_key else sa.Column(n, t, nullable=n == "options")
                   for n, t, is_key in tables[name]]
        _create(name, columns + [sa.Column("data_version", sa.Integer, nullable=False)], options)

    for name in ("emergency_shutoffs", "pinnable_releases", "permissions", "user_roles", "product_req_signoffs",
                 "permissions_req_signoffs"):
        _row_history(name, tables[name], options)

    _create("releases_history", _change_record() + [
        sa.Column("name", Key(100), nullable=False), sa.Column("data_version", sa.Integer),
        sa.Column("kind", sa.String(8), nullable=False), sa.Column("payload", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")),
    ], options, ["name"])

    for base in ("rules", "releases", "permissions", "product_req_signoffs", "permissions_req_signoffs",
                 "emergency_shutoffs", "pinnable_releases"):
        name = f"{base}_scheduled_changes"
        desired = [(f"base_{n}", t, False) for n, t, _ in tables[base]] + [("base_data_version", sa.Integer, False)]
        changes = [("sc_id", sa.Integer, True), ("scheduled_by", sa.String(100), False),
                   ("complete", sa.Boolean, False), ("change_type", sa.String(50), False)] + desired
        required = {"scheduled_by", "complete", "change_type"}
        telemetry = [("telemetry_product", sa.String(PRODUCT), False), ("telemetry_channel", sa.String(75), False),
                     ("telemetry_uptake", sa.Integer, False)] if base == "rules" else []
        conditions = [("sc_id", sa.Integer, True), ("when", sa.BigInteger, False)] + telemetry
        signoffs = [("sc_id", sa.Integer, True), ("username", Key(100), True), ("role", sa.String(50), False)]
        for table, columns in ((name, changes), (f"{name}_conditions", conditions), (f"{name}_signoffs", signoffs)):
            made = [sa.Column(n, t, primary_key=True, autoincrement=(n == "sc_id" and table == name))
                    if is_key else sa.Column(n, t, nullable=n not in required and n != "role")
                    for n, t, is_key in columns]
            _create(table, made + [sa.Column("data_version", sa.Integer, nullable=False)], options)
            _row_history(table, columns, options)


def downgrade() -> None:
    names = [f"{base}_scheduled_changes{part}{history}"
             for base in ("rules", "releases", "permissions", "product_req_signoffs", "permissions_req_signoffs",
                          "emergency_shutoffs", "pinnable_releases")
             for part in ("", "_conditions", "_signoffs") for history in ("_history", "")]
    names += ["releases_history"]
    names += [f"{name}{history}" for name in ("permissions", "user_roles", "product_req_signoffs",
                                               "permissions_req_signoffs") for history in ("_history", "")]
    names += ["emergency_shutoffs_history", "pinnable_releases_history"]
    for name in names:
        op.drop_table(name)
