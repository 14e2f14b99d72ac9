"""Who enacted a scheduled change: ``scheduled_change_enactments`` and its history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

An enacted change writes its target's history as the change's ``scheduled_by`` (as the reference
does), so nothing showed who enacted it: the agent, or a user with the enact permission. One row
per enacted change, keyed by the admin API's segment and the change's id, versioned like the other
tables (row-layout history). The time is ``enacted_at``: a ``timestamp`` column would clash with
the history record's own. The shapes are spelled out as they are at this revision.
"""
from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLE = "scheduled_change_enactments"
HISTORY = f"{TABLE}_history"


def _index_name(table: str) -> str:
    return f"ix_{table[:40]}_{zlib.crc32(table.encode()):08x}_key"


def upgrade() -> None:
    sql = context.config.attributes["sql"]
    Key, options = sql.Key, sql.TABLE_OPTIONS  # noqa: N806 (sql_schema's names)
    op.create_table(
        TABLE,
        sa.Column("segment", Key(50), primary_key=True),
        sa.Column("sc_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("enacted_by", sa.String(100), nullable=False),
        sa.Column("enacted_at", sa.BigInteger, nullable=False),  # ms since the epoch
        sa.Column("data_version", sa.Integer, nullable=False),
        **options,
    )
    # The row layout: the change record, then a copy of every column (nullable but the key).
    op.create_table(
        HISTORY,
        sa.Column("change_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("segment", Key(50), nullable=False),
        sa.Column("sc_id", sa.Integer, nullable=False),
        sa.Column("enacted_by", sa.String(100), nullable=True),
        sa.Column("enacted_at", sa.BigInteger, nullable=True),
        sa.Column("data_version", sa.Integer),
        **options,
    )
    op.create_index(_index_name(HISTORY), HISTORY, ["segment", "sc_id"])


def downgrade() -> None:
    op.drop_table(HISTORY)
    op.drop_table(TABLE)
