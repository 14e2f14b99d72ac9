"""The initial schema: what ``metadata.create_all`` made before releases had a position.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


#: Product columns: sql.PRODUCT at this revision (a later change of it needs its own revision).
PRODUCT = 100


def _rule_value_columns(Key) -> list[sa.Column]:  # noqa: N803 (sql.py's name)
    """The rule columns shared by ``rules`` and ``rules_history`` (sizes are the reference's)."""
    return [
        sa.Column("alias", Key(50)),
        sa.Column("priority", sa.Integer),
        sa.Column("mapping", sa.String(100)),
        sa.Column("fallbackMapping", sa.String(100)),
        sa.Column("backgroundRate", sa.Integer),
        sa.Column("update_type", sa.String(15)),
        sa.Column("product", sa.String(PRODUCT)),
        sa.Column("version", sa.String(75)),
        sa.Column("channel", sa.String(75)),
        sa.Column("buildTarget", sa.String(75)),
        sa.Column("buildID", sa.String(20)),
        sa.Column("locale", sa.String(200)),
        sa.Column("osVersion", sa.String(1000)),
        sa.Column("memory", sa.String(100)),
        sa.Column("instructionSet", sa.String(1000)),
        sa.Column("jaws", sa.Boolean),
        sa.Column("mig64", sa.Boolean),
        sa.Column("distribution", sa.String(2000)),
        sa.Column("distVersion", sa.String(100)),
        sa.Column("headerArchitecture", sa.String(10)),
        sa.Column("comment", sa.String(500)),
    ]


def upgrade() -> None:
    # The storage's column types (byte-wise keys, LONGTEXT on MySQL) and MySQL table options,
    # handed over by the storage (see env.py).
    sql = context.config.attributes["sql"]
    Key, BLOB_TEXT, TABLE_OPTIONS = sql.Key, sql.BLOB_TEXT, sql.TABLE_OPTIONS  # noqa: N806
    op.create_table(
        "rules",
        sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
        *_rule_value_columns(Key),
        sa.Column("data_version", sa.Integer, nullable=False),
        sa.UniqueConstraint("alias", name="rules_alias_key"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "rules_history",
        sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("rule_id", sa.Integer, nullable=False),
        *_rule_value_columns(Key),
        sa.Column("data_version", sa.Integer),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_rules_history_rule_id", "rules_history", ["rule_id"])
    op.create_table(
        "releases",
        sa.Column("name", Key(100), primary_key=True),
        sa.Column("product", sa.String(PRODUCT)),
        sa.Column("read_only", sa.Boolean, nullable=False),
        sa.Column("data", BLOB_TEXT, nullable=False),
        sa.Column("data_version", sa.Integer, nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "emergency_shutoffs",
        sa.Column("product", Key(PRODUCT), primary_key=True),
        sa.Column("channel", Key(75), primary_key=True),
        sa.Column("comment", sa.String(500)),
        sa.Column("data_version", sa.Integer, nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "pinnable_releases",
        sa.Column("product", Key(PRODUCT), primary_key=True),
        sa.Column("channel", Key(75), primary_key=True),
        sa.Column("version", Key(75), primary_key=True),
        sa.Column("mapping", sa.String(100), nullable=False),
        sa.Column("data_version", sa.Integer, nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "settings",
        sa.Column("key", Key(100), primary_key=True),
        sa.Column("value", BLOB_TEXT, nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    for table in ("change_counter", "settings", "pinnable_releases", "emergency_shutoffs", "releases",
                  "rules_history", "rules"):
        op.drop_table(table)
